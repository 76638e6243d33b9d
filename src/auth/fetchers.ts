/**
 * How discovery and JWKS documents are fetched: plain http only for loopback
 * issuers, and a back-off after a failed fetch so that a broken issuer is not
 * fetched again by every request.
 */
import { request } from 'node:http';
import { SimpleFetcher, type Fetcher } from 'aws-jwt-verify/https';
import { isLoopbackHost } from '../config.js';

/** A discovery document could not be used; `reason` says how. */
export class DiscoveryError extends Error {
  override readonly name = 'DiscoveryError';
  constructor(
    readonly reason: 'discovery_failed' | 'discovery_issuer_mismatch',
    readonly url: string,
    readonly outcome: string,
  ) {
    super(`${url}: ${outcome}`);
  }
}

/**
 * aws-jwt-verify fetches over https only. A development issuer on this
 * machine serves plain http; the config allows that for loopback hosts only,
 * and so does this fetcher.
 */
export class LoopbackAwareFetcher implements Fetcher {
  private readonly https = new SimpleFetcher();

  async fetch(uri: string, requestOptions?: Record<string, unknown>, data?: ArrayBuffer): Promise<ArrayBuffer> {
    const url = new URL(uri);
    if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return loopbackGet(url, uri);
    return this.https.fetch(uri, requestOptions, data);
  }
}

export class BackingOffError extends Error {
  override readonly name = 'BackingOffError';
}

/** A discovery or JWKS fetch failed (network, status, size, timeout). */
export class FetchFailedError extends Error {
  override readonly name = 'FetchFailedError';
}

/**
 * aws-jwt-verify's penalty box only holds back a refetch after a JWKS that lacked the kid;
 * a fetch that failed would be retried by every request. This backs off after a failure too
 * (discovery and JWKS alike).
 */
export class BackoffFetcher implements Fetcher {
  private readonly failed = new Map<string, { until: number; outcome: string }>();
  constructor(
    private readonly inner: Fetcher,
    private readonly backoffMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** A fetch whose failure starts no back-off (the cold-start check: the first request may try again). */
  async fetchOnce(uri: string): Promise<ArrayBuffer> {
    try {
      return await this.inner.fetch(uri);
    } catch (error) {
      throw new FetchFailedError(describeFailure(error), { cause: error });
    }
  }

  async fetch(uri: string, requestOptions?: Record<string, unknown>, data?: ArrayBuffer): Promise<ArrayBuffer> {
    const failure = this.failed.get(uri);
    if (failure && this.now() < failure.until) throw new BackingOffError(`not fetched again yet after: ${failure.outcome}`);
    try {
      const result = await this.inner.fetch(uri, requestOptions, data);
      this.failed.delete(uri);
      return result;
    } catch (error) {
      const outcome = describeFailure(error);
      this.failed.set(uri, { until: this.now() + this.backoffMs, outcome });
      throw new FetchFailedError(outcome, { cause: error });
    }
  }
}

export function describeFailure(error: unknown): string {
  const ours = error instanceof FetchFailedError || error instanceof BackingOffError || error instanceof DiscoveryError;
  const message = error instanceof Error ? `${error.name === 'Error' || ours ? '' : `${error.constructor.name}: `}${error.message}` : String(error);
  return message.length > 300 ? `${message.slice(0, 300)}…` : message;
}

/**
 * GET over plain http on a loopback host, with node:http rather than `fetch()`: the
 * first `fetch()` of a process costs ~200 ms of set-up, which the cold-start issuer
 * check would otherwise pay at every cold start. Redirects are not followed (a 3xx is
 * an error, as any status but 2xx).
 */
function loopbackGet(url: URL, uri: string, timeoutMs = 1500): Promise<ArrayBuffer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', timeout: timeoutMs }, (response) => {
      const status = response.statusCode ?? 0;
      if (status < 200 || status > 299) {
        response.resume();
        reject(new Error(`${uri} answered HTTP ${status}`));
        return;
      }
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${uri} did not answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
