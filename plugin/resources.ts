/**
 * What the plugin adds to a service, as plain data: the `manage` function's
 * definition (Serverless' own function format, so the framework compiles it,
 * its routes, log group and async config as it would any function) and the
 * CloudFormation resources of its own: both tables, its role, the queue of
 * failed asynchronous invocations and the HTTP API access log group.
 *
 * Every logical id starts with `MiddleManagement`, every physical name with
 * `<service>-<stage>-mm-`, so nothing collides with what the service declares.
 * ARNs are built with `Fn::Sub` pseudo-parameters: packaging never needs AWS
 * credentials (no `${aws:accountId}`, no `${ssm:…}`).
 */
import { auditTableDefinition, stateTableDefinition } from '../src/stores/audit/table.js';
import type { Settings } from './settings.js';

export const ids = {
  auditTable: 'MiddleManagementAuditTable',
  stateTable: 'MiddleManagementStateTable',
  role: 'MiddleManagementRole',
  failureQueue: 'MiddleManagementFailureQueue',
  accessLogGroup: 'MiddleManagementHttpApiAccessLogGroup',
} as const;

export const ROUTES = ['/__manage__', '/__manage__/{proxy+}'] as const;

/** The Step Functions callback actions: the reference lists no resource type for them (see docs/plugin.md). */
export const TASK_TOKEN_ACTIONS = ['states:SendTaskSuccess', 'states:SendTaskFailure'] as const;

export interface Context {
  service: string;
  stage: string;
  /** The deployed function name, `<service>-<stage>-<key>` unless the service renames it. */
  functionName: string;
  /** provider.vpc is set: the function runs in the VPC and needs the ENI permissions. */
  inVpc?: boolean;
}

type Json = Record<string, unknown>;

export function tableNames(settings: Settings, context: Context) {
  const prefix = `${context.service}-${context.stage}-mm`;
  return {
    audit: settings.auditTableName ?? `${prefix}-audit`,
    state: settings.stateTableName ?? `${prefix}-state`,
  };
}

/** The MANAGE_* variables (CONTRACT §4) the block configures, and nothing else. */
export function manageEnvironment(settings: Settings, context: Context): Record<string, unknown> {
  const tables = tableNames(settings, context);
  const env: Record<string, unknown> = {};
  const set = (name: string, value: unknown) => {
    if (value !== undefined && value !== '' && !(Array.isArray(value) && value.length === 0)) env[name] = value;
  };
  set('MANAGE_ALLOW_LIST', settings.allowList.join(','));
  if (settings.cognito) {
    set('MANAGE_COGNITO_USER_POOL_ID', settings.cognito.userPoolId);
    set('MANAGE_COGNITO_CLIENT_ID', settings.cognito.clientId.join(','));
    set('MANAGE_COGNITO_TOKEN_USE', settings.cognito.tokenUse);
  }
  if (settings.jwt.length === 1 && settings.jwtSingle) {
    const [jwt] = settings.jwt as [Settings['jwt'][number]];
    set('MANAGE_JWT_ISSUER', jwt.issuer);
    set('MANAGE_JWT_AUDIENCE', jwt.audience.join(','));
    set('MANAGE_JWT_JWKS_URI', jwt.jwksUri);
    set('MANAGE_JWT_GROUPS_CLAIM', (jwt.groupsClaim ?? settings.groupsClaim).join(','));
  } else {
    if (settings.jwt.length > 0) {
      set(
        'MANAGE_JWT_ISSUERS',
        JSON.stringify(
          settings.jwt.map((jwt) => ({
            issuer: jwt.issuer,
            audience: jwt.audience.length === 1 ? jwt.audience[0] : jwt.audience,
            ...(jwt.jwksUri ? { jwksUri: jwt.jwksUri } : {}),
            ...(jwt.groupsClaim ? { groupsClaim: jwt.groupsClaim.join(',') } : {}),
            ...(jwt.tokenUse ? { tokenUse: jwt.tokenUse } : {}),
          })),
        ),
      );
    }
    set('MANAGE_JWT_GROUPS_CLAIM', settings.groupsClaim.join(','));
  }
  if (settings.commandGroups) set('MANAGE_COMMAND_GROUPS', JSON.stringify(settings.commandGroups));
  set('MANAGE_AUDITOR_GROUPS', settings.auditorGroups.join(','));
  set('MANAGE_AUDIT_TABLE', tables.audit);
  set('MANAGE_STATE_TABLE', tables.state);
  set('MANAGE_AUDIT_HMAC_KEY', settings.auditHmacKey);
  set('MANAGE_MAX_BODY_BYTES', settings.maxBodyBytes?.toString());
  set('MANAGE_HTTP_TIME_LIMIT_MS', settings.httpTimeLimitMs?.toString());
  set('MANAGE_EXCLUSIVE', settings.exclusive.join(','));
  if (settings.approval) set('MANAGE_APPROVAL', JSON.stringify(settings.approval));
  set('MANAGE_IDEMPOTENCY_TTL_SECONDS', settings.idempotencyTtlSeconds?.toString());
  set('MANAGE_APPROVAL_TTL_SECONDS', settings.approvalTtlSeconds?.toString());
  set('MANAGE_CONSOLE_CLIENT_ID', settings.console?.clientId);
  set('MANAGE_CONSOLE_REDIRECT_URI', settings.console?.redirectUri);
  set('MANAGE_CONSOLE_ISSUER', settings.console?.issuer);
  set('MANAGE_CONSOLE_SCOPES', settings.console?.scopes);
  set('MANAGE_CONSOLE_RESOURCE', settings.console?.resource);
  set('MANAGE_CONSOLE_TOKEN_USE', settings.console?.tokenUse);
  set('MANAGE_CONSOLE_AUTH_ORIGINS', settings.console?.authOrigins?.join(','));
  return env;
}

/** The function, in serverless.yml's `functions:` format. */
export function manageFunction(settings: Settings, context: Context): Json {
  return {
    handler: settings.handler,
    name: context.functionName,
    description: 'middle-management: runs allow-listed maintenance commands (HTTP API and direct invocation)',
    // Set here, not inherited from the provider: the contract's runtime, on Graviton.
    runtime: 'nodejs22.x',
    architecture: 'arm64',
    // Lambda's CPU share scales with memory: 1024 MB keeps the cold start (JWKS
    // fetch, SDK init) short; the function is idle nearly always, so cost is small.
    memorySize: settings.memorySize,
    // Direct invocations run a command up to its own time limit (up to 15 min):
    // Lambda's maximum. HTTP runs are capped in code (MANAGE_HTTP_TIME_LIMIT_MS)
    // below API Gateway's 30 s integration limit.
    timeout: settings.timeout,
    role: ids.role,
    logRetentionInDays: settings.logRetentionInDays,
    // Worker invocations are consumed once (a conditional delete); Lambda's own
    // retries of a failed async invocation would add nothing but noise. One that
    // never ran (throttled past its age, or crashed) lands in the failure queue.
    maximumRetryAttempts: 0,
    destinations: { onFailure: { type: 'sqs', arn: { 'Fn::GetAtt': [ids.failureQueue, 'Arn'] } } },
    ...(settings.reservedConcurrency ? { reservedConcurrency: settings.reservedConcurrency } : {}),
    ...(settings.kmsKeyArn ? { kmsKeyArn: settings.kmsKeyArn } : {}),
    environment: { ...settings.environment, ...manageEnvironment(settings, context) },
    // The handler routes itself (404/405), so it gets every method.
    events: ROUTES.map((path) => ({ httpApi: { method: '*', path } })),
  };
}

const sub = (template: string) => ({ 'Fn::Sub': template });

/** The function's role: what the handler calls, on its own resources only. */
export function roleStatements(settings: Settings, context: Context): Json[] {
  const logGroup = `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/${context.functionName}`;
  const statements: Json[] = [
    // Its own log group only (created by the stack, so no logs:CreateLogGroup).
    { Effect: 'Allow', Action: ['logs:CreateLogStream'], Resource: [sub(`${logGroup}:*`)] },
    { Effect: 'Allow', Action: ['logs:PutLogEvents'], Resource: [sub(`${logGroup}:log-stream:*`)] },
    // The audit trail is append-only: no UpdateItem, no DeleteItem, no batch or PartiQL writes.
    { Effect: 'Allow', Action: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:Query'], Resource: [{ 'Fn::GetAtt': [ids.auditTable, 'Arn'] }] },
    { Effect: 'Allow', Action: ['dynamodb:Query'], Resource: [sub(`\${${ids.auditTable}.Arn}/index/*`)] },
    // Idempotency keys, leases and pending approvals: created, read, released.
    {
      Effect: 'Allow',
      Action: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem'],
      Resource: [{ 'Fn::GetAtt': [ids.stateTable, 'Arn'] }],
    },
    // `Prefer: respond-async`: a worker invocation of itself, by its real name (not
    // Fn::GetAtt, which would make the role depend on the function it belongs to).
    {
      Effect: 'Allow',
      Action: ['lambda:InvokeFunction'],
      Resource: [sub(`arn:\${AWS::Partition}:lambda:\${AWS::Region}:\${AWS::AccountId}:function:${context.functionName}`)],
    },
    // Lambda delivers failed asynchronous invocations with the function's role.
    { Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: [{ 'Fn::GetAtt': [ids.failureQueue, 'Arn'] }] },
  ];
  if (settings.stepFunctions) {
    // `.waitForTaskToken` callers: the worker reports the outcome to the task token.
    // The Service Authorization Reference lists no resource type for SendTask*:
    // only "*" ever matches. The task token itself is the capability: an
    // unguessable, single-task secret that Step Functions hands to this function.
    statements.push({ Effect: 'Allow', Action: [...TASK_TOKEN_ACTIONS], Resource: '*' });
  }
  if (settings.kmsKeyArn) {
    // The customer managed key of the tables, the queue and the environment.
    statements.push({
      Effect: 'Allow',
      Action: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'],
      Resource: [settings.kmsKeyArn],
    });
  }
  return statements;
}

export function resources(settings: Settings, context: Context): { Resources: Json; Outputs: Json } {
  const tables = tableNames(settings, context);
  const sse = settings.kmsKeyArn ? { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: settings.kmsKeyArn } : { SSEEnabled: true };
  const audit = auditTableDefinition(tables.audit);
  const state = stateTableDefinition(tables.state);
  const Resources: Json = {
    // Layout: src/stores/audit/table.ts (the same function the local stack uses).
    [ids.auditTable]: {
      Type: 'AWS::DynamoDB::Table',
      // The audit trail outlives the stack: never dropped on delete or replacement.
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        ...audit,
        DeletionProtectionEnabled: true,
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: sse,
      },
    },
    // Short-lived items only (they expire through TTL): not retained with the stack.
    // Point-in-time recovery costs next to nothing on a table this small (CKV_AWS_28).
    [ids.stateTable]: {
      Type: 'AWS::DynamoDB::Table',
      Properties: {
        ...state,
        TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: sse,
      },
    },
    [ids.role]: {
      Type: 'AWS::IAM::Role',
      Properties: {
        Description: `middle-management: the ${context.functionName} function only`,
        AssumeRolePolicyDocument: {
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
        },
        ...(context.inVpc
          ? { ManagedPolicyArns: [sub('arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole')] }
          : {}),
        Policies: [
          { PolicyName: 'middle-management', PolicyDocument: { Version: '2012-10-17', Statement: roleStatements(settings, context) } },
          ...(settings.iamStatements.length > 0
            ? [{ PolicyName: 'middle-management-commands', PolicyDocument: { Version: '2012-10-17', Statement: settings.iamStatements } }]
            : []),
        ],
      },
    },
    // Asynchronous (worker) invocations that failed or never ran: kept 14 days.
    [ids.failureQueue]: {
      Type: 'AWS::SQS::Queue',
      Properties: {
        QueueName: `${context.service}-${context.stage}-mm-failed`,
        MessageRetentionPeriod: 1_209_600,
        ...(settings.kmsKeyArn ? { KmsMasterKeyId: settings.kmsKeyArn } : { SqsManagedSseEnabled: true }),
      },
    },
  };
  const Outputs: Json = {
    MiddleManagementAuditTableName: { Value: { Ref: ids.auditTable } },
    MiddleManagementStateTableName: { Value: { Ref: ids.stateTable } },
    MiddleManagementFailureQueueUrl: { Value: { Ref: ids.failureQueue } },
  };
  return { Resources, Outputs };
}

/** HTTP API access log format: who called what, and how it ended (never a header or body). */
export const ACCESS_LOG_FORMAT = JSON.stringify({
  requestId: '$context.requestId',
  requestTime: '$context.requestTime',
  sourceIp: '$context.identity.sourceIp',
  userAgent: '$context.identity.userAgent',
  httpMethod: '$context.httpMethod',
  path: '$context.path',
  routeKey: '$context.routeKey',
  status: '$context.status',
  protocol: '$context.protocol',
  responseLength: '$context.responseLength',
  integrationStatus: '$context.integrationStatus',
  integrationError: '$context.integrationErrorMessage',
  integrationLatency: '$context.integrationLatency',
});

export function accessLogGroup(settings: Settings, context: Context): Json {
  return {
    Type: 'AWS::Logs::LogGroup',
    Properties: {
      LogGroupName: `/aws/http-api/${context.service}-${context.stage}-mm-access`,
      RetentionInDays: settings.logRetentionInDays,
      ...(settings.kmsKeyArn ? { KmsKeyId: settings.kmsKeyArn } : {}),
    },
  };
}
