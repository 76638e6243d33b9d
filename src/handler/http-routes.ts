/**
 * The HTTP routes of CONTRACT §2, and how a request finds one: 404 for a path
 * that is no route, 405 with `Allow` for a route asked with another method.
 * Path matching is middy's router (@middy/http-router), given a table; around
 * it, what it does not do (each said where it is done):
 * - 405: the router answers a known path with an unknown method like an
 *   unknown path. So every route is also registered for the router's other
 *   methods with a handler that refuses with 405 and the route's `Allow`, and a
 *   method the router does not know at all (TRACE, garbage, '') is routed as
 *   PATCH, a method no route allows, so that it ends the same way.
 * - the path: API Gateway may put a stage before `/__manage__`, clients send
 *   doubled slashes and percent-encoded segments; the router matches one
 *   literal path. {@link routingPath} gives it one canonical spelling.
 */
import httpRouterHandler, { type Method } from '@middy/http-router';
import { MethodNotAllowed, NotFound } from '../errors.js';

export type Route =
  | { kind: 'run'; command: string }
  | { kind: 'listCommands' }
  | { kind: 'listExecutions' }
  | { kind: 'getExecution'; executionId: string }
  | { kind: 'decide'; executionId: string; decision: 'approved' | 'rejected' }
  | { kind: 'verifyAudit' }
  /** The web console's page (`asset: ''`) or one of its two assets: public, answered before the token step. */
  | { kind: 'console'; asset: ConsoleAsset };

export type ConsoleAsset = '' | 'app.js' | 'app.css';

type Params = Record<string, string>;

interface RouteSpec {
  path: string;
  method: 'GET' | 'POST' | 'HEAD';
  route: (params: Params) => Route;
  /** Other methods on this path are another route's (see /__manage__/executions). */
  othersFallThrough?: boolean;
  /** The methods a 405 for this path names (default: `method`). */
  allow?: string[];
}

const EXECUTION_ID_SEGMENT = /^[0-9A-Za-z]{1,64}$/;

/** An execution id that cannot be one is an unknown path (404), whatever the method. */
function executionId(params: Params): string {
  const id = params.executionId!;
  if (!EXECUTION_ID_SEGMENT.test(id)) throw new NotFound('No such route.');
  return id;
}

const ROUTES: RouteSpec[] = [
  { path: '/__manage__', method: 'GET', route: () => ({ kind: 'listCommands' }) },
  // POST here runs a command named "executions" (of which there is none: 403); other methods are 405 Allow: POST.
  { path: '/__manage__/executions', method: 'GET', route: () => ({ kind: 'listExecutions' }), othersFallThrough: true },
  { path: '/__manage__/audit/verify', method: 'GET', route: () => ({ kind: 'verifyAudit' }) },
  { path: '/__manage__/executions/{executionId}', method: 'GET', route: (p) => ({ kind: 'getExecution', executionId: executionId(p) }) },
  { path: '/__manage__/executions/{executionId}/approve', method: 'POST', route: (p) => ({ kind: 'decide', executionId: executionId(p), decision: 'approved' }) },
  { path: '/__manage__/executions/{executionId}/reject', method: 'POST', route: (p) => ({ kind: 'decide', executionId: executionId(p), decision: 'rejected' }) },
  { path: '/__manage__/{command}', method: 'POST', route: (p) => ({ kind: 'run', command: p.command! }) },
  // The web console: GET and HEAD only. Its page's path is also the command "console"'s: POST runs it as
  // before, and other methods fall through to /__manage__/{command}'s 405 Allow: POST (the contract's).
  { path: '/__manage__/console', method: 'GET', route: () => ({ kind: 'console', asset: '' }), othersFallThrough: true },
  { path: '/__manage__/console', method: 'HEAD', route: () => ({ kind: 'console', asset: '' }), othersFallThrough: true },
  ...(['app.js', 'app.css'] as const).flatMap((asset): RouteSpec[] => [
    { path: `/__manage__/console/${asset}`, method: 'GET', route: () => ({ kind: 'console', asset }), allow: ['GET', 'HEAD'] },
    { path: `/__manage__/console/${asset}`, method: 'HEAD', route: () => ({ kind: 'console', asset }), othersFallThrough: true },
  ]),
];

/** The methods @middy/http-router dispatches on. */
const ROUTER_METHODS: Method[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'];

/** What the router reads: a REST (v1)-shaped event, whichever payload version came in. */
interface RoutingEvent {
  httpMethod: string;
  path: string;
  pathParameters?: Params;
}

const table = ROUTES.flatMap(({ path, method, route, othersFallThrough, allow = [method] }) => [
  { path, method, handler: (event: RoutingEvent) => route(decodeParams(event.pathParameters)) },
  ...(othersFallThrough
    ? []
    : ROUTER_METHODS.filter((other) => !allow.includes(other)).map((other) => ({
        path,
        method: other,
        handler: (event: RoutingEvent): never => {
          route(decodeParams(event.pathParameters)); // an impossible execution id is a 404 first
          throw new MethodNotAllowed(allow);
        },
      }))),
]);

// The router's types want Lambda handlers answering API Gateway results; this table's return the route.
const router = httpRouterHandler<any, any>({
  routes: table as never,
  notFoundResponse: () => {
    throw new NotFound('No such route.');
  },
});

/** The route for this method and path, or the contract's 404/405. */
export function resolveRoute(method: string, path: string): Route {
  const known = (ROUTER_METHODS as string[]).includes(method);
  const event: RoutingEvent = { httpMethod: known ? method : 'PATCH', path: routingPath(path) };
  return router(event, {} as never, undefined as never) as unknown as Route;
}

/**
 * One spelling of a path for the router: at most one segment (an API Gateway
 * stage) may stand before `/__manage__`; empty segments are dropped; each
 * segment after the base is percent-decoded, then encoded again, so that a
 * `%2F` stays inside its segment and `%65xecutions` is `executions`.
 */
export function routingPath(path: string): string {
  const segments = path.split('/').filter(Boolean);
  const base = segments.indexOf('__manage__');
  if (base < 0 || base > 1) return '/';
  return ['/__manage__', ...segments.slice(base + 1).map((segment) => encodeURIComponent(decodeSegment(segment)))].join('/');
}

/** The segment before `/__manage__` (an API Gateway stage, `/prod`), or `''` (also for one no stage could be named). */
export function basePath(path: string): string {
  const segments = path.split('/').filter(Boolean);
  return segments.indexOf('__manage__') === 1 && /^[\w$.~-]{1,128}$/.test(segments[0]!) ? `/${segments[0]}` : '';
}

function decodeParams(params: Params | undefined): Params {
  return Object.fromEntries(Object.entries(params ?? {}).map(([name, value]) => [name, decodeURIComponent(value)]));
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
