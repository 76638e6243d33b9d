/**
 * Builds the `manage` Lambda handler: one function for HTTP and direct
 * invocation, its dependencies made once at cold start.
 */
import middy from '@middy/core';
import type { MiddlewareObj } from '@middy/core';
import type { Context } from 'aws-lambda';
import type { Fetcher } from 'aws-jwt-verify/https';
import type { CommandLoader } from '../command.js';
import type { ManageConfig } from '../config.js';
import { toManageError } from '../errors.js';
import { createTokenVerifier, type TokenVerifier } from '../auth/verifier.js';
import type { DynamoDocumentClient } from '../stores/dynamo-client.js';
import { DynamoAuditStore } from '../stores/audit/dynamodb.js';
import { createDynamoClient } from '../stores/dynamo-client.js';
import type { AuditStore } from '../stores/audit/store.js';
import { DynamoStateStore } from '../stores/state/dynamodb.js';
import type { StateStore } from '../stores/state/store.js';
import { createHttpHandler, errorResponse, isHttpEvent } from './http.js';
import { InvokeAdapter } from './invoke.js';
import { createLogger, describeError, type Logger } from '../log.js';
import { createPipeline } from '../pipeline/index.js';
import { LambdaWorkerLauncher, StepFunctionsTaskReporter, isWorkerEvent, type TaskReporter, type WorkerLauncher } from './worker.js';

export interface ManageHandlerOptions {
  commands: Readonly<Record<string, CommandLoader>>;
  /** Default: DynamoDB at the configured table and endpoint. */
  audit?: AuditStore;
  /** Default: DynamoDB at the configured state table. */
  state?: StateStore;
  /** Default: aws-jwt-verify for the configured issuers. */
  verifier?: TokenVerifier;
  /** Default: an `Event` invocation of this function (AWS_LAMBDA_FUNCTION_NAME). */
  launcher?: WorkerLauncher;
  /** Default: Step Functions' SendTaskSuccess/SendTaskFailure. */
  reporter?: TaskReporter;
  /** How the default verifier fetches JWKS documents. */
  jwksFetcher?: Fetcher;
  logger?: Logger;
  now?: () => number;
}

export function createManageHandler(config: ManageConfig, options: ManageHandlerOptions) {
  const logger = options.logger ?? createLogger();
  const dynamo = {
    region: config.region,
    ...(config.dynamoEndpoint ? { endpoint: config.dynamoEndpoint } : {}),
    ...(options.now ? { now: options.now } : {}),
  };
  // One DynamoDB client for both tables: one set of credentials, one connection pool,
  // and its signer set up once per instance, not once per store.
  let client: DynamoDocumentClient | undefined;
  const shared = () => (client ??= createDynamoClient(dynamo));
  const audit =
    options.audit ??
    new DynamoAuditStore({ ...dynamo, tableName: config.auditTable, positionTable: config.stateTable, ...(config.auditHmacKey ? { hashKey: config.auditHmacKey } : {}) }, shared());
  const state = options.state ?? new DynamoStateStore({ ...dynamo, tableName: config.stateTable }, shared());
  const verifier =
    options.verifier ?? createTokenVerifier(config, { logger, ...(options.jwksFetcher ? { fetcher: options.jwksFetcher } : {}) });
  const launcher =
    options.launcher ??
    (config.functionName
      ? new LambdaWorkerLauncher({ functionName: config.functionName, region: config.region, ...(config.lambdaEndpoint ? { endpoint: config.lambdaEndpoint } : {}) })
      : undefined);
  const reporter = options.reporter ?? new StepFunctionsTaskReporter({ region: config.region, ...(config.sfnEndpoint ? { endpoint: config.sfnEndpoint } : {}) });
  const pipeline = createPipeline({ config, audit, state, ...(launcher ? { launcher } : {}), reporter, commands: options.commands, logger, ...(options.now ? { now: options.now } : {}) });
  const http = createHttpHandler({ config, verifier, pipeline });
  const invoke = new InvokeAdapter({ pipeline, maxEventBytes: config.maxBodyBytes });

  // The command's own time limit governs; middy's early timeout would cut runs short of it.
  return middy<unknown, unknown, Error, Context>({ timeoutEarlyInMillis: 0 })
    .use(contractErrors(logger))
    .handler((event, context) =>
      isHttpEvent(event) ? http(event, context) : isWorkerEvent(event) ? invoke.work(event, context) : invoke.handle(event, context),
    );
}

/**
 * Maps every error to the contract: an HTTP error response, or for a direct
 * invocation an error whose `name` is the contract's code. Details of a 500
 * that is ours stay in the log.
 *
 * Hand-written rather than @middy/http-error-handler, which cannot give the
 * contract's answer: its body is the error's bare message (the contract's is
 * `{ "error": { "code", "message", … } }`), it sets `Content-Type` of its own
 * (`application/json` or `text/plain`, beside ours with charset), it logs every
 * error through console.error, and it knows only HTTP responses, while the
 * same function must throw named errors to direct invokers (Step Functions).
 */
function contractErrors(logger: Logger): MiddlewareObj<unknown, unknown, Error, Context> {
  return {
    onError: (request) => {
      const error = toManageError(request.error);
      if (error.name === 'InternalError') {
        logger.log('error', 'request.internal_error', { error: describeError(error.cause ?? request.error) });
      }
      if (isHttpEvent(request.event)) {
        request.response = errorResponse(error);
        return;
      }
      // Lambda returns the stack to the invoker (Step Functions puts it in the Cause):
      // ours says nothing they need, the execution id does.
      error.stack = `${error.name}: ${error.message}${error.executionId ? `\n    at execution ${error.executionId}` : ''}`;
      request.error = error;
    },
  };
}
