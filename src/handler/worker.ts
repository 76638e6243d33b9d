/**
 * Deferred runs: the worker invocation that runs an accepted execution, and
 * the Step Functions task token it reports to. Both behind interfaces so that
 * tests (and the local stack) can route them elsewhere.
 */
import { AwsCallError, regionalEndpoint, signedPost, type SignedPost } from '../aws/signed-request.js';

/** Each call's whole time, connection included: a report or a launch that hangs must not hold the run's answer. */
export const awsCallDefaults = { timeoutMs: 3000 } as const;

/** One signed call to Lambda or Step Functions; anything but a 2xx is an error, with AWS's words. */
async function awsCall(options: SignedPost): Promise<void> {
  const answer = await signedPost(options);
  if (answer.status >= 300) {
    throw new AwsCallError(`${options.service} answered ${answer.status}: ${answer.body.toString('utf8').slice(0, 300)}`, answer.status);
  }
}

/** The event the function sends itself to run an accepted execution. */
export interface WorkerEvent {
  mmWorker: { executionId: string };
}

export function isWorkerEvent(event: unknown): event is WorkerEvent {
  const worker = (event as WorkerEvent | undefined)?.mmWorker;
  return typeof worker === 'object' && worker !== null && typeof worker.executionId === 'string' && Object.keys(event as object).length === 1;
}

export interface WorkerLauncher {
  /** Starts a worker invocation and returns once it is queued (not run). */
  launch(event: WorkerEvent): Promise<void>;
}

export interface TaskReporter {
  succeed(taskToken: string, output: unknown): Promise<void>;
  fail(taskToken: string, error: string, cause: string): Promise<void>;
}

/** Invokes this same function asynchronously (`Event`): Lambda queues it and answers 202. */
export class LambdaWorkerLauncher implements WorkerLauncher {
  constructor(private readonly options: { functionName: string; region: string; endpoint?: string }) {}

  async launch(event: WorkerEvent): Promise<void> {
    await awsCall({
      service: 'lambda',
      region: this.options.region,
      endpoint: this.options.endpoint ?? regionalEndpoint('lambda', this.options.region),
      path: `/2015-03-31/functions/${encodeURIComponent(this.options.functionName)}/invocations`,
      headers: { 'content-type': 'application/json', 'x-amz-invocation-type': 'Event' },
      body: JSON.stringify(event),
      timeoutMs: awsCallDefaults.timeoutMs,
    });
  }
}

/** Step Functions limits: error 256 characters, cause 32 KiB, output 256 KiB. */
const LIMITS = { error: 256, cause: 32_768, output: 262_144 } as const;

export class StepFunctionsTaskReporter implements TaskReporter {
  constructor(private readonly options: { region: string; endpoint?: string }) {}

  async succeed(taskToken: string, output: unknown): Promise<void> {
    let json = JSON.stringify(output);
    if (Buffer.byteLength(json) > LIMITS.output) {
      json = JSON.stringify({ ...(output as object), result: { truncated: true }, output: [] });
    }
    await this.call('SendTaskSuccess', { taskToken, output: json });
  }

  async fail(taskToken: string, error: string, cause: string): Promise<void> {
    await this.call('SendTaskFailure', { taskToken, error: error.slice(0, LIMITS.error), cause: cause.slice(0, LIMITS.cause) });
  }

  private async call(action: string, body: unknown): Promise<void> {
    await awsCall({
      service: 'states',
      region: this.options.region,
      endpoint: this.options.endpoint ?? regionalEndpoint('states', this.options.region),
      path: '/',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `AWSStepFunctions.${action}` },
      body: JSON.stringify(body),
      timeoutMs: awsCallDefaults.timeoutMs,
    });
  }
}
