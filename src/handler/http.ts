/**
 * The HTTP side: API Gateway HTTP API (payload 2.0) and REST (v1) events in,
 * JSON responses out. Order of checks (CONTRACT §2): route (404/405), then the
 * token (401), and only then the body and the command.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2, Context } from 'aws-lambda';
import type { ManageConfig } from '../config.js';
import type { TokenVerifier } from '../auth/verifier.js';
import type { TokenActor } from '../auth/verifier.js';
import {
  InvalidRequest,
  MethodNotAllowed,
  NotFound,
  PayloadTooLarge,
  Unauthorized,
  UnsupportedMediaType,
  errorBody,
  type ManageError,
} from '../errors.js';
import type { ExecutionSource } from '../stores/audit/store.js';
import type { Pipeline } from '../pipeline/pipeline.js';

export type HttpEvent = APIGatewayProxyEventV2 | APIGatewayProxyEvent;

export interface HttpResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/** A request as both payload versions describe it. */
interface HttpRequest {
  method: string;
  path: string;
  /** Lower-cased names. */
  headers: Record<string, string>;
  /** Every Authorization value received, to refuse more than one. */
  authorizations: string[];
  query: Record<string, string>;
  body?: Buffer;
  source: ExecutionSource;
}

type Route =
  | { kind: 'run'; command: string }
  | { kind: 'listCommands' }
  | { kind: 'listExecutions' }
  | { kind: 'getExecution'; executionId: string }
  | { kind: 'decide'; executionId: string; decision: 'approved' | 'rejected' }
  | { kind: 'verifyAudit' };

export const httpDefaults = {
  /** Time kept back from the Lambda's remaining time to write the outcome and answer. */
  responseMarginMs: 1500,
} as const;

/** True for API Gateway proxy events of either payload version. */
export function isHttpEvent(event: unknown): event is HttpEvent {
  if (typeof event !== 'object' || event === null || !('requestContext' in event)) return false;
  return 'rawPath' in event || 'httpMethod' in event;
}

export class HttpAdapter {
  constructor(
    private readonly deps: { config: ManageConfig; verifier: TokenVerifier; pipeline: Pipeline },
  ) {}

  /** Answers one request; throws a ManageError that {@link errorResponse} turns into the response. */
  async handle(event: HttpEvent, context: Context): Promise<HttpResponse> {
    const request = normalize(event);
    // --- web console (issue 14): public page and assets, no data; its code is loaded for these paths only ---
    if ((request.method === 'GET' || request.method === 'HEAD') && CONSOLE_PATH.test(request.path)) {
      return (await import('../console/serve.js')).serveConsole(request, this.deps.config);
    }
    // --- end web console ---
    const route = resolveRoute(request.method, request.path);
    const actor = await this.authenticate(request);
    const { pipeline } = this.deps;
    const remaining = context?.getRemainingTimeInMillis?.() ?? Number.POSITIVE_INFINITY;
    const maxTimeMs = Math.min(this.deps.config.httpTimeLimitMs, remaining - httpDefaults.responseMarginMs);
    switch (route.kind) {
      case 'run': {
        const body = parseRunPayload(this.readJsonBody(request));
        const idempotencyKey = idempotencyKeyOf(request.headers);
        const respondAsync = /(^|[,;\s])respond-async($|[,;\s])/i.test(request.headers['prefer'] ?? '');
        const response = await pipeline.execute({
          command: route.command,
          data: body.data,
          dryRun: body.dryRun,
          actor,
          source: request.source,
          maxTimeMs,
          ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
          ...(respondAsync ? { respondAsync } : {}),
        });
        return executionResponse(response);
      }
      case 'decide': {
        const body = this.readJsonBody(request);
        if (!isPlainObject(body) || Object.keys(body).some((key) => key !== 'planDigest') || !['string', 'undefined'].includes(typeof body.planDigest)) {
          throw new InvalidRequest('The body may only hold "planDigest", a string.');
        }
        const planDigest = body.planDigest as string | undefined;
        return executionResponse(await pipeline.decide(route.executionId, actor, route.decision, { maxTimeMs, ...(planDigest ? { planDigest } : {}) }));
      }
      case 'verifyAudit':
        return json(200, await pipeline.verifyAudit(actor, request.query));
      case 'listCommands':
        // The HTTP window tells clients (mm) when to prefer an async run.
        return json(200, { commands: await pipeline.listCommands(actor), httpTimeLimitMs: this.deps.config.httpTimeLimitMs });
      case 'listExecutions':
        return json(200, await pipeline.listExecutions(actor, request.query));
      case 'getExecution':
        return json(200, await pipeline.getExecution(route.executionId, actor));
    }
  }

  private async authenticate(request: HttpRequest): Promise<TokenActor> {
    if (request.authorizations.length !== 1) throw new Unauthorized();
    const match = /^Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+) *$/i.exec(request.authorizations[0]!);
    if (!match) throw new Unauthorized();
    return this.deps.verifier.verify(match[1]!);
  }

  /** The body as JSON; an empty body is `{}`. */
  private readJsonBody(request: HttpRequest): unknown {
    const raw = request.body;
    if (raw && raw.length > this.deps.config.maxBodyBytes) {
      throw new PayloadTooLarge(`The body is larger than ${this.deps.config.maxBodyBytes} bytes.`);
    }
    if (!raw || raw.length === 0) return {};
    const contentType = request.headers['content-type'];
    if (contentType !== undefined && !isJsonMediaType(contentType)) {
      throw new UnsupportedMediaType('The body must be JSON (Content-Type: application/json).');
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      throw new InvalidRequest('The body is not valid UTF-8.');
    }
    if (text.trim() === '') return {};
    try {
      return JSON.parse(text);
    } catch {
      throw new InvalidRequest('The body is not valid JSON.');
    }
  }
}

/** Printable ASCII, as a client would generate (a UUID, a ULID, a job id). */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,256}$/;

function idempotencyKeyOf(headers: Record<string, string>): string | undefined {
  const key = headers['idempotency-key'];
  if (key === undefined) return undefined;
  if (!IDEMPOTENCY_KEY.test(key.trim())) {
    throw new InvalidRequest('Idempotency-Key must be 1 to 256 printable ASCII characters.');
  }
  return key.trim();
}

/** `{ data?, dryRun? }` and nothing else. */
function parseRunPayload(body: unknown): { data: Record<string, unknown>; dryRun: boolean } {
  if (!isPlainObject(body)) throw new InvalidRequest('The body must be a JSON object.');
  const unknownKeys = Object.keys(body).filter((key) => key !== 'data' && key !== 'dryRun');
  if (unknownKeys.length > 0) {
    throw new InvalidRequest(`Unknown top-level key(s): ${unknownKeys.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 64))).join(', ')}; only "data" and "dryRun" are accepted.`);
  }
  const { data = {}, dryRun = false } = body;
  if (!isPlainObject(data)) throw new InvalidRequest('"data" must be a JSON object.');
  if (typeof dryRun !== 'boolean') throw new InvalidRequest('"dryRun" must be true or false.');
  return { data, dryRun };
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isJsonMediaType(contentType: string): boolean {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type);
}

/** The web console's paths (also in src/console/serve.ts, which is not loaded for API requests). */
const CONSOLE_PATH = /^(?:\/[^/]+)?\/__manage__\/console(?:\/.*)?$/;

const EXECUTION_ID_SEGMENT = /^[0-9A-Za-z]{1,64}$/;

/** Routes by path alone; a route that exists with another method is a 405, anything else a 404. */
function resolveRoute(method: string, path: string): Route {
  const segments = path.split('/').filter(Boolean);
  const base = segments.indexOf('__manage__');
  // At most one segment (an API Gateway stage) may stand before the base.
  if (base < 0 || base > 1) throw new NotFound('No such route.');
  const rest = segments.slice(base + 1).map(decodeSegment);
  const only = (allowed: string, route: Route): Route => {
    if (method !== allowed) throw new MethodNotAllowed([allowed]);
    return route;
  };
  if (rest.length === 0) return only('GET', { kind: 'listCommands' });
  if (rest.length === 1 && rest[0] === 'executions' && method === 'GET') return { kind: 'listExecutions' };
  if (rest.length === 1) return only('POST', { kind: 'run', command: rest[0]! });
  if (rest.length === 2 && rest[0] === 'executions' && EXECUTION_ID_SEGMENT.test(rest[1]!)) {
    return only('GET', { kind: 'getExecution', executionId: rest[1]! });
  }
  if (rest.length === 2 && rest[0] === 'audit' && rest[1] === 'verify') return only('GET', { kind: 'verifyAudit' });
  if (rest.length === 3 && rest[0] === 'executions' && EXECUTION_ID_SEGMENT.test(rest[1]!) && (rest[2] === 'approve' || rest[2] === 'reject')) {
    return only('POST', { kind: 'decide', executionId: rest[1]!, decision: rest[2] === 'approve' ? 'approved' : 'rejected' });
  }
  throw new NotFound('No such route.');
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function normalize(event: HttpEvent): HttpRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (typeof value === 'string') headers[name.toLowerCase()] = value;
  }
  const authorizations = authorizationValues(event);
  const body =
    typeof event.body === 'string' ? Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8') : undefined;
  const query: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) {
    if (typeof value === 'string') query[name] = value;
  }

  if ('rawPath' in event) {
    const http = event.requestContext?.http;
    return {
      method: (http?.method ?? 'GET').toUpperCase(),
      path: event.rawPath,
      headers,
      authorizations,
      query,
      ...(body ? { body } : {}),
      source: source(http?.sourceIp, http?.userAgent ?? headers['user-agent'], event.requestContext?.requestId),
    };
  }
  const identity = event.requestContext?.identity;
  return {
    method: (event.httpMethod ?? 'GET').toUpperCase(),
    path: event.path ?? '/',
    headers,
    authorizations,
    query,
    ...(body ? { body } : {}),
    source: source(identity?.sourceIp, identity?.userAgent ?? headers['user-agent'], event.requestContext?.requestId),
  };
}

/** v2 joins repeated headers with commas; v1 lists them. Either way more than one value is refused later. */
function authorizationValues(event: HttpEvent): string[] {
  // Every spelling of the name counts: "Authorization" and "authorization" are one header, sent twice.
  const values: string[] = [];
  if ('multiValueHeaders' in event && event.multiValueHeaders) {
    for (const [name, list] of Object.entries(event.multiValueHeaders)) {
      if (name.toLowerCase() === 'authorization' && list) values.push(...list.filter((v): v is string => typeof v === 'string'));
    }
  }
  if (values.length === 0) {
    for (const [name, value] of Object.entries(event.headers ?? {})) {
      if (name.toLowerCase() === 'authorization' && typeof value === 'string') values.push(value);
    }
  }
  return values.flatMap((value) => (value.includes(',') ? value.split(',') : [value]));
}

function source(ip: string | undefined, userAgent: string | undefined, requestId: string | undefined): ExecutionSource {
  return {
    channel: 'http',
    ...(ip ? { ip } : {}),
    ...(userAgent ? { userAgent: userAgent.slice(0, 256) } : {}),
    ...(requestId ? { requestId } : {}),
  };
}

const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResponse {
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

/** 200 for an outcome; 202 with the execution's Location while it waits (for a worker or an approver). */
function executionResponse(result: { status: string; executionId: string }): HttpResponse {
  if (result.status === 'accepted' || result.status === 'awaiting_approval') {
    return json(202, result, { location: `/__manage__/executions/${result.executionId}` });
  }
  return json(200, result);
}

export function errorResponse(error: ManageError): HttpResponse {
  return json(error.status, errorBody(error), error.headers());
}
