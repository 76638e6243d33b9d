/**
 * The HTTP client of the middle-management API (CONTRACT §2).
 *
 * Network failures (no answer at all) are retried a few times with back-off;
 * an HTTP answer, error or not, never is, except one retry with a new sign-in
 * after a 401 for a token the CLI picked itself. A run carries the same
 * `Idempotency-Key` on every try, so a retry cannot run a command twice.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Authenticator } from './auth/index.js';
import { CliError, Exit, exitCodeFor } from './errors.js';
import { describeNetworkError } from './auth/oauth.js';

export interface ApiResponse {
  status: number;
  headers: Headers;
  /** The body exactly as received. */
  raw: string;
  /** The body parsed, when it is JSON. */
  body: any;
  /** For a 401: what the client knows about the refused token and what to change (never the token). */
  authHint?: string;
}

export interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  headers?: Record<string, string>;
  /** Per try. */
  timeoutMs?: number;
}

/** Back-off before each retry of a request that got no answer (MM_RETRY_DELAYS_MS overrides, e.g. "100,200"). */
export function retryDelays(env: NodeJS.ProcessEnv = process.env): number[] {
  const spec = env.MM_RETRY_DELAYS_MS;
  if (spec !== undefined) {
    const delays = spec.split(',').filter((s) => s.trim() !== '').map(Number);
    if (delays.every((d) => Number.isFinite(d) && d >= 0)) return delays;
  }
  return [500, 1500, 4000];
}

export const USER_AGENT = `middle-management-cli/${typeof __MM_VERSION__ === 'string' ? __MM_VERSION__ : 'dev'} node/${process.versions.node}`;

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly auth: Authenticator,
    private readonly delays: number[] = retryDelays(),
  ) {}

  url(path: string, query?: RequestOptions['query']): string {
    const url = new URL(`${this.baseUrl}${path}`);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== '') url.searchParams.set(name, String(value));
    }
    return url.toString();
  }

  /**
   * One request: retried on network failure, once more after a 401 with a token
   * renewed without asking anyone (see Authenticator.renewAfterRejection). Never throws for an HTTP status.
   */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse> {
    let token = await this.auth.token();
    let renewed = false;
    for (;;) {
      const response = await this.send(method, path, options, token);
      if (response.status === 401) {
        if (!renewed) {
          renewed = true;
          const next = await this.auth.renewAfterRejection();
          if (next) {
            token = next;
            continue;
          }
        }
        response.authHint = this.auth.explainRejection();
      }
      return response;
    }
  }

  private async send(method: string, path: string, options: RequestOptions, token: string): Promise<ApiResponse> {
    const url = this.url(path, options.query);
    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: `Bearer ${token}`,
      'user-agent': USER_AGENT,
      ...options.headers,
    };
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    let lastError: unknown;
    for (let attempt = 0; attempt <= this.delays.length; attempt++) {
      if (attempt > 0) await sleep(this.delays[attempt - 1]! * (0.8 + Math.random() * 0.4));
      try {
        const response = await fetch(url, {
          method,
          headers,
          ...(body !== undefined ? { body } : {}),
          signal: AbortSignal.timeout(options.timeoutMs ?? 60_000),
          redirect: 'manual',
        });
        const raw = await response.text();
        return { status: response.status, headers: response.headers, raw, body: parseJson(raw) };
      } catch (error) {
        lastError = error;
      }
    }
    const tries = this.delays.length + 1;
    throw new CliError(
      Exit.Service,
      'NetworkError',
      `Cannot reach ${new URL(url).origin}: ${describeNetworkError(lastError)} (${tries} ${tries === 1 ? 'try' : 'tries'}).`,
      { cause: lastError },
    );
  }
}

function parseJson(raw: string): unknown {
  if (!raw) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

/** An error response as a {@link CliError} carrying the body: exit code by `error.code`, then by status. */
export function errorFromResponse(response: ApiResponse): CliError {
  const error = response.body?.error;
  const code: string | undefined = typeof error?.code === 'string' ? error.code : undefined;
  let message: string =
    typeof error?.message === 'string'
      ? error.message
      : typeof response.body?.message === 'string'
        ? response.body.message
        : `HTTP ${response.status}${response.raw ? `: ${response.raw.slice(0, 200)}` : ''}`;
  if (response.status === 401) message = `${message} ${response.authHint ?? 'Sign in (mm login) or check --token / MM_TOKEN.'}`;
  return new CliError(exitCodeFor(response.status, code), code ?? `Http${response.status}`, message, {
    raw: response.raw,
    body: response.body,
    status: response.status,
    ...(typeof error?.executionId === 'string' ? { executionId: error.executionId } : {}),
  });
}

/** The response if 2xx, else its error. */
export function ok(response: ApiResponse): ApiResponse {
  if (response.status >= 200 && response.status < 300) return response;
  throw errorFromResponse(response);
}
