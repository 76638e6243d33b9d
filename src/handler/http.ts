/**
 * The HTTP transport: API Gateway HTTP API (payload 2.0) and REST (v1) events
 * in, JSON responses out. Its middy chain is the contract's order of checks
 * (CONTRACT §2), one middleware per step:
 *
 *   one request shape → header names → route (404/405) → [web console page] → token (401)
 *   → body (413/415/400) → the pipeline's room for the route
 *
 * The web console (GET/HEAD on `/__manage__/console` and its two assets) is
 * public and holds no data: it is answered after routing and before the token
 * step, by a module loaded with a dynamic import for those paths only, so API
 * requests never load its code.
 *
 * Nothing reads the body or looks at the command before the token is verified.
 * Errors are thrown as ManageErrors; create.ts turns them into responses.
 */
import middy from '@middy/core';
import type { MiddlewareObj } from '@middy/core';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import httpJsonBodyParser from '@middy/http-json-body-parser';
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2, Context } from 'aws-lambda';
import type { ManageConfig } from '../config.js';
import type { TokenActor, TokenVerifier } from '../auth/verifier.js';
import { InvalidRequest, PayloadTooLarge, Unauthorized, UnsupportedMediaType, errorBody, type ManageError } from '../errors.js';
import type { ExecutionSource } from '../stores/audit/store.js';
import type { Pipeline } from '../pipeline/index.js';
import { basePath, resolveRoute, type Route } from './http-routes.js';

export type HttpEvent = APIGatewayProxyEventV2 | APIGatewayProxyEvent;

export interface HttpResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  /** The body is base64 of binary bytes (the console's gzip-compressed assets only). */
  isBase64Encoded?: boolean;
}

/** A request as both payload versions describe it; the middlewares fill in the rest. */
interface HttpRequest {
  method: string;
  path: string;
  /** Lower-cased names (by the header normalizer). */
  headers: Record<string, string>;
  /** Every Authorization value received, to refuse more than one. */
  authorizations: string[];
  query: Record<string, string>;
  /** The raw body; after the body step, the parsed JSON (`{}` when empty). */
  body?: Buffer | unknown;
  source: ExecutionSource;
  /**
   * Whether API Gateway turns a base64 response body (`isBase64Encoded`) into
   * bytes: an HTTP API does, with either payload version (its 1.0 events say
   * `version: '1.0'`), and so does a function URL; a REST API (no `version`) only
   * when binary media types are set up on it, which the function cannot know.
   */
  binaryResponse: boolean;
  route?: Route;
  actor?: TokenActor;
}

type Step = MiddlewareObj<HttpRequest, HttpResponse, Error, Context>;

export const httpDefaults = {
  /** Time kept back from the Lambda's remaining time to write the outcome and answer. */
  responseMarginMs: 1500,
} as const;

/** True for API Gateway proxy events of either payload version. */
export function isHttpEvent(event: unknown): event is HttpEvent {
  if (typeof event !== 'object' || event === null || !('requestContext' in event)) return false;
  return 'rawPath' in event || 'httpMethod' in event;
}

export function createHttpHandler(deps: { config: ManageConfig; verifier: TokenVerifier; pipeline: Pipeline }) {
  const { config, verifier, pipeline } = deps;
  const chain = middy<HttpRequest, HttpResponse, Error, Context>({ timeoutEarlyInMillis: 0 })
    .use(headerNames())
    .use(routing())
    .use(consolePage(config))
    .use(bearerToken(verifier))
    .use(jsonBody(config.maxBodyBytes))
    .handler((request, context) => answer(request, context, config, pipeline));
  // The event becomes one request shape before the chain (middy's request.event is what its middlewares read).
  return (event: HttpEvent, context: Context): Promise<HttpResponse> => chain(normalize(event), context);
}

/** Header names lower-cased: @middy/http-header-normalizer (Authorization values were taken before, see authorizationValues). */
function headerNames(): Step {
  return httpHeaderNormalizer() as unknown as Step;
}

/** 404 / 405, before anything else looks at the request. */
function routing(): Step {
  return {
    before: (request) => {
      request.event.route = resolveRoute(request.event.method, request.event.path);
    },
  };
}

/** The web console's page and assets, before the token step; its module is imported for these routes only. */
function consolePage(config: ManageConfig): Step {
  return {
    before: async (request) => {
      const { route, method, path, query, headers, binaryResponse } = request.event;
      if (route?.kind !== 'console') return undefined;
      const { serveConsole } = await import('../console/serve.js');
      const consolePath = `${basePath(path)}/__manage__/console${route.asset ? `/${route.asset}` : ''}`;
      const acceptEncoding = headers['accept-encoding'];
      // The gzip-compressed assets go back as binary where API Gateway decodes it (a REST API would pass the base64 text on).
      return serveConsole({ method, path: consolePath, query, binary: binaryResponse, ...(acceptEncoding ? { acceptEncoding } : {}) }, config);
    },
  };
}

/** 401 for anything but exactly one well-formed bearer token that the verifier accepts. */
function bearerToken(verifier: TokenVerifier): Step {
  return {
    before: async (request) => {
      const { authorizations } = request.event;
      if (authorizations.length !== 1) throw new Unauthorized();
      // The verifier checks the token's shape itself, so that an opaque token is logged as such for the operator.
      const match = /^Bearer +(\S+) *$/i.exec(authorizations[0]!);
      if (!match) throw new Unauthorized();
      request.event.actor = await verifier.verify(match[1]!);
    },
  };
}

/**
 * The body as JSON, for the routes that take one; an empty body is `{}`.
 * @middy/http-json-body-parser parses; before it, by hand, what it does not do
 * as the contract says: the size limit (413), an absent Content-Type taken as
 * JSON and media types compared case-insensitively (its check refuses the one
 * and is case-sensitive: so it is disabled and ours gives the 415), invalid
 * UTF-8 refused rather than replaced; and its 415 for malformed JSON is the
 * contract's 400.
 */
function jsonBody(maxBodyBytes: number): Step {
  // `disableContentTypeCheck` is in the package's code (6.x) but not in its type declarations.
  const options = { disableContentTypeCheck: true } as Parameters<typeof httpJsonBodyParser>[0];
  const parser = httpJsonBodyParser(options) as unknown as Required<Pick<Step, 'before'>>;
  return {
    before: async (request) => {
      const { event } = request;
      if (event.route?.kind !== 'run' && event.route?.kind !== 'decide') return;
      const raw = event.body as Buffer | undefined;
      if (raw && raw.length > maxBodyBytes) throw new PayloadTooLarge(`The body is larger than ${maxBodyBytes} bytes.`);
      event.body = {};
      if (!raw || raw.length === 0) return;
      const contentType = event.headers['content-type'];
      if (contentType !== undefined && !isJsonMediaType(contentType)) {
        throw new UnsupportedMediaType('The body must be JSON (Content-Type: application/json).');
      }
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
      } catch {
        throw new InvalidRequest('The body is not valid UTF-8.');
      }
      if (text.trim() === '') return;
      event.body = text;
      try {
        await parser.before(request);
      } catch {
        throw new InvalidRequest('The body is not valid JSON.');
      }
    },
  };
}

/** The pipeline's room for the route. */
async function answer(request: HttpRequest, context: Context, config: ManageConfig, pipeline: Pipeline): Promise<HttpResponse> {
  const { running, deferring, reading } = pipeline;
  const route = request.route!;
  const actor = request.actor!;
  const remaining = context?.getRemainingTimeInMillis?.() ?? Number.POSITIVE_INFINITY;
  const maxTimeMs = Math.min(config.httpTimeLimitMs, remaining - httpDefaults.responseMarginMs);
  switch (route.kind) {
    case 'run': {
      const body = parseRunPayload(request.body);
      const idempotencyKey = idempotencyKeyOf(request.headers);
      const respondAsync = /(^|[,;\s])respond-async($|[,;\s])/i.test(request.headers['prefer'] ?? '');
      const response = await running.execute({
        command: route.command,
        data: body.data,
        dryRun: body.dryRun,
        actor,
        source: request.source,
        maxTimeMs,
        ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
        ...(respondAsync ? { respondAsync } : {}),
      });
      return executionResponse(response, consoleUrl(request, config));
    }
    case 'decide': {
      const body = request.body;
      if (!isPlainObject(body) || Object.keys(body).some((key) => key !== 'planDigest') || !['string', 'undefined'].includes(typeof body.planDigest)) {
        throw new InvalidRequest('The body may only hold "planDigest", a string.');
      }
      const planDigest = body.planDigest as string | undefined;
      return executionResponse(await deferring.decide(route.executionId, actor, route.decision, { maxTimeMs, ...(planDigest ? { planDigest } : {}) }));
    }
    case 'verifyAudit':
      return json(200, await reading.verifyAudit(actor, request.query));
    case 'listCommands':
      // The HTTP window tells clients (mm) when to prefer an async run.
      return json(200, { commands: await reading.listCommands(actor), httpTimeLimitMs: config.httpTimeLimitMs });
    case 'listExecutions':
      return json(200, await reading.listExecutions(actor, request.query));
    case 'getExecution':
      return json(200, await reading.getExecution(route.executionId, actor));
    case 'console':
      throw new Error('unreachable: the console is answered before the token step');
  }
}

/**
 * The console's absolute URL, for the deep link an approver is sent; undefined
 * when the console is not set up. Its configured redirect URI is the console's
 * own address when set; otherwise the address this request came to (Host,
 * X-Forwarded-Proto, and the stage segment of its path, as API Gateway gives them).
 */
export function consoleUrl(request: Pick<HttpRequest, 'headers' | 'path'>, config: ManageConfig): string | undefined {
  if (!config.console) return undefined;
  if (config.console.redirectUri) {
    const configured = new URL(config.console.redirectUri);
    return `${configured.origin}${configured.pathname}`;
  }
  const host = request.headers['host'];
  const path = `${basePath(request.path)}/__manage__/console`;
  if (!host || !/^[A-Za-z0-9.:[\]-]+$/.test(host)) return path;
  const forwarded = request.headers['x-forwarded-proto']?.split(',')[0]?.trim().toLowerCase();
  const loopback = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/i.test(host);
  const protocol = forwarded === 'http' || forwarded === 'https' ? forwarded : loopback ? 'http' : 'https';
  return `${protocol}://${host}${path}`;
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

/** Both payload versions as one request; header names are lower-cased next, by the normalizer. */
function normalize(event: HttpEvent): HttpRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (typeof value === 'string') headers[name] = value;
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
      source: source(http?.sourceIp, http?.userAgent ?? userAgentOf(headers), event.requestContext?.requestId),
      binaryResponse: true,
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
    source: source(identity?.sourceIp, identity?.userAgent ?? userAgentOf(headers), event.requestContext?.requestId),
    binaryResponse: (event as { version?: unknown }).version === '1.0',
  };
}

/** The last User-Agent in any spelling (names are not lower-cased yet). */
function userAgentOf(headers: Record<string, string>): string | undefined {
  let value: string | undefined;
  for (const [name, v] of Object.entries(headers)) if (name.toLowerCase() === 'user-agent') value = v;
  return value;
}

/**
 * Taken from the raw event, before header names are folded: "Authorization"
 * and "authorization" are one header sent twice, which the normalizer would
 * collapse into one value. v2 joins repeated headers with commas; v1 lists
 * them. Either way more than one value is refused by the token step.
 */
function authorizationValues(event: HttpEvent): string[] {
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

/**
 * 200 for an outcome; 202 with the execution's Location while it waits (for a
 * worker or an approver). A request awaiting approval also carries
 * `approveUrl`, the console's deep link to send to an approver, when the
 * console is set up (an extra field).
 */
function executionResponse(result: { status: string; executionId: string }, consoleLink?: string): HttpResponse {
  if (result.status === 'accepted' || result.status === 'awaiting_approval') {
    const approveUrl = result.status === 'awaiting_approval' && consoleLink ? `${consoleLink}#/executions/${result.executionId}` : undefined;
    return json(202, approveUrl ? { ...result, approveUrl } : result, { location: `/__manage__/executions/${result.executionId}` });
  }
  return json(200, result);
}

export function errorResponse(error: ManageError): HttpResponse {
  return json(error.status, errorBody(error), error.headers());
}
