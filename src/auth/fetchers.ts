/**
 * How discovery and JWKS documents are fetched: plain http only for loopback
 * issuers, and a back-off after a failed fetch so that a broken issuer is not
 * fetched again by every request.
 */
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
    if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) {
      const response = await fetch(url, { signal: AbortSignal.timeout(1500), redirect: 'error' });
      if (!response.ok) throw new Error(`${uri} answered HTTP ${response.status}`);
      return response.arrayBuffer();
    }
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
