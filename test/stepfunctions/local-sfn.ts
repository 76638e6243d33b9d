/**
 * Runs statemachines/*.asl.json locally with aws-local-stepfunctions, its
 * `arn:aws:states:::lambda:invoke` tasks routed to the real `manage` handler.
 *
 * The route emulates the Lambda service integration as Step Functions sees it:
 * the task's `Parameters` are the Invoke API's input (`FunctionName`, `Payload`);
 * the event and the result cross a JSON boundary; the result is
 * `{ ExecutedVersion, Payload, StatusCode }`; a thrown error becomes a task error
 * whose name is the Lambda runtime's `errorType` (the error's `name`) and whose
 * cause is the runtime's error payload as a JSON string.
 */
import './polyfill.js';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context } from 'aws-lambda';
import { StateMachine } from 'aws-local-stepfunctions';
import { lambdaContext } from '../support/stack.js';

export { StateMachine };

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The ASL file exactly as it is deployed (plain parsed JSON, for inspection and for `new StateMachine`). */
export function loadDefinition(name: string): any {
  return JSON.parse(readFileSync(join(root, 'example', 'statemachines', name), 'utf8'));
}

/** What the Lambda Node.js runtime sends back for a thrown error. */
export interface LambdaErrorPayload {
  errorType: string;
  errorMessage: string;
  trace: string[];
}

/** A task failure as Step Functions reports it for `lambda:invoke`: Error = errorType, Cause = the payload as JSON. */
export class TaskError extends Error {
  constructor(name: string, cause: string) {
    super(cause);
    this.name = name;
  }
}

export interface Invocation {
  functionName: unknown;
  event: any;
  /** The handler's result, when it returned. */
  result?: any;
  /** The runtime's error payload, when it threw. */
  error?: LambdaErrorPayload;
}

export interface LambdaInvokeRouteOptions {
  /** The function name the definition must pass (its deploy-time placeholder). */
  functionName?: string;
  /** The Lambda's remaining time for an invocation (its configured timeout), default 900 s. */
  remainingMs?: (event: any) => number;
  /**
   * Simulates the Lambda service failing around an invocation: return an error
   * name (e.g. `Lambda.ServiceException`) to fail the task with it. `before`
   * fails without running the handler, `after` runs it and loses its response.
   */
  serviceFault?: (event: any, attempt: number) => { when: 'before' | 'after'; name: string } | undefined;
}

export type Handler = (event: any, context: Context) => Promise<any>;

/** A `taskResourceLocalHandlers` function for `arn:aws:states:::lambda:invoke` that calls `handler`; records every invocation. */
export function lambdaInvokeRoute(handler: Handler, options: LambdaInvokeRouteOptions = {}) {
  const invocations: Invocation[] = [];
  let attempts = 0;
  const route = async (input: any) => {
    const { FunctionName: functionName, Payload } = input ?? {};
    if (options.functionName !== undefined && functionName !== options.functionName) {
      throw new TaskError('Lambda.ResourceNotFoundException', `Function not found: ${String(functionName)}`);
    }
    const event = JSON.parse(JSON.stringify(Payload ?? {}));
    attempts += 1;
    const fault = options.serviceFault?.(event, attempts);
    if (fault?.when === 'before') {
      invocations.push({ functionName, event, error: { errorType: fault.name, errorMessage: 'simulated', trace: [] } });
      throw new TaskError(fault.name, `${fault.name}: simulated service error before the invocation`);
    }
    const invocation: Invocation = { functionName, event };
    invocations.push(invocation);
    try {
      const result = await handler(event, lambdaContext(options.remainingMs?.(event) ?? 900_000));
      invocation.result = result === undefined ? null : JSON.parse(JSON.stringify(result));
    } catch (error) {
      const err = error instanceof Error ? error : new Error(String(error));
      invocation.error = { errorType: err.name, errorMessage: err.message, trace: (err.stack ?? '').split('\n') };
      throw new TaskError(err.name, JSON.stringify(invocation.error));
    }
    if (fault?.when === 'after') {
      throw new TaskError(fault.name, `${fault.name}: simulated service error after the invocation ran`);
    }
    return { ExecutedVersion: '$LATEST', Payload: invocation.result, StatusCode: 200 };
  };
  return { route, invocations };
}

/** A Context Object like a real execution's, with a fresh execution name. */
export function executionContext(stateMachineName = 'middle-management-test-maintenance') {
  const name = `run-${randomUUID()}`;
  const stateMachineArn = `arn:aws:states:us-east-1:123456789012:stateMachine:${stateMachineName}`;
  const id = `arn:aws:states:us-east-1:123456789012:execution:${stateMachineName}:${name}`;
  return {
    id,
    name,
    context: {
      Execution: { Id: id, Name: name, RoleArn: 'arn:aws:iam::123456789012:role/test' },
      StateMachine: { Id: stateMachineArn, Name: stateMachineName },
    },
  };
}

/** Drains an execution's event log (after its result settled). */
export async function collectEvents(events: AsyncGenerator<any>): Promise<any[]> {
  const all: any[] = [];
  for await (const event of events) all.push(event);
  return all;
}
