/**
 * Why a token was refused, for the operator's log only: a reason from a fixed
 * list and what is safe to say about the token (issuer, audience, key id —
 * never the token or its signature), at most one line per reason and issuer per
 * interval.
 */
import {
  CognitoJwtInvalidClientIdError,
  CognitoJwtInvalidTokenUseError,
  FetchError,
  JwkInvalidKtyError,
  JwkInvalidUseError,
  JwksValidationError,
  JwkValidationError,
  JwtExpiredError,
  JwtInvalidAudienceError,
  JwtInvalidIssuerError,
  JwtInvalidSignatureAlgorithmError,
  JwtInvalidSignatureError,
  JwtNotBeforeError,
  JwtParseError,
  JwtWithoutValidKidError,
  KidNotFoundInJwksError,
  WaitPeriodNotYetEndedJwkError,
} from 'aws-jwt-verify/error';
import { BackingOffError, DiscoveryError, FetchFailedError, describeFailure } from './fetchers.js';

/** One `auth.token_refused` line per reason and issuer per this many milliseconds. */
export const REFUSAL_LOG_INTERVAL_MS = 60_000;

/** Why a token was refused: the `reason` of an `auth.token_refused` log line. */
export type RefusalReason =
  | 'malformed'
  | 'unknown_issuer'
  | 'discovery_failed'
  | 'discovery_issuer_mismatch'
  | 'jwks_fetch_failed'
  | 'missing_kid'
  | 'unknown_kid'
  | 'bad_algorithm'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'wrong_client'
  | 'wrong_token_type'
  | 'missing_claim'
  | 'verification_failed';

/** The issuer a refusal is about, as far as a log line needs it. */
export interface RefusalTarget {
  /** The JWKS URI in use, when known. */
  jwksUri(): string | undefined;
  /** What the issuer expects (Cognito: client ids and token use), for the log line. */
  expected?(): Record<string, unknown>;
}

/** aws-jwt-verify's error (or a plain crypto Error) → a reason and what the operator needs to know about it. */
export function classify(error: unknown, target: RefusalTarget): { reason: RefusalReason; fields: Record<string, unknown> } {
  const jwks = () => ({ jwksUri: target.jwksUri() });
  if (error instanceof DiscoveryError) return { reason: error.reason, fields: { discovery: error.url, outcome: error.outcome } };
  if (error instanceof FetchError || error instanceof JwksValidationError || error instanceof JwkValidationError || error instanceof BackingOffError || error instanceof FetchFailedError) {
    return { reason: 'jwks_fetch_failed', fields: { ...jwks(), outcome: describeFailure(error) } };
  }
  if (error instanceof JwtWithoutValidKidError) return { reason: 'missing_kid', fields: jwks() };
  if (error instanceof KidNotFoundInJwksError || error instanceof WaitPeriodNotYetEndedJwkError) {
    return { reason: 'unknown_kid', fields: { ...jwks(), outcome: error instanceof WaitPeriodNotYetEndedJwkError ? 'not in the JWKS; refetch held back' : 'not in the JWKS' } };
  }
  if (error instanceof JwtInvalidSignatureAlgorithmError || error instanceof JwkInvalidUseError || error instanceof JwkInvalidKtyError) {
    return { reason: 'bad_algorithm', fields: { outcome: describeFailure(error) } };
  }
  if (error instanceof JwtInvalidSignatureError) return { reason: 'bad_signature', fields: jwks() };
  if (error instanceof JwtExpiredError) return { reason: 'expired', fields: {} };
  if (error instanceof JwtNotBeforeError) return { reason: 'not_yet_valid', fields: {} };
  if (error instanceof JwtInvalidIssuerError) return { reason: 'wrong_issuer', fields: {} };
  if (error instanceof JwtInvalidAudienceError) return { reason: 'wrong_audience', fields: target.expected?.() ?? {} };
  if (error instanceof CognitoJwtInvalidClientIdError) return { reason: 'wrong_client', fields: target.expected?.() ?? {} };
  if (error instanceof CognitoJwtInvalidTokenUseError) {
    return { reason: 'wrong_token_type', fields: target.expected?.() ?? {} };
  }
  if (error instanceof JwtParseError) return { reason: 'malformed', fields: {} };
  // A malformed ES256 signature makes node:crypto throw a plain Error: still only a bad signature.
  if (error instanceof Error && error.constructor === Error) return { reason: 'bad_signature', fields: { ...jwks(), outcome: describeFailure(error) } };
  return { reason: 'verification_failed', fields: { outcome: describeFailure(error) } };
}

/** What a log line may say about an unverified token: who issued it, for whom, which key, no values that prove anything. */
export function describeToken(header: Record<string, unknown>, payload: Record<string, unknown>): Record<string, unknown> {
  const aud = payload.aud;
  return {
    issuer: clip(payload.iss),
    ...(aud !== undefined ? { audience: Array.isArray(aud) ? aud.slice(0, 5).map(clip) : clip(aud) } : {}),
    kid: clip(header.kid),
    alg: clip(header.alg),
    ...(header.typ !== undefined ? { typ: clip(header.typ) } : {}),
  };
}

export function clip(value: unknown): unknown {
  if (typeof value === 'string') return value.length > 200 ? `${value.slice(0, 200)}…` : value;
  if (value === undefined || value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  return `(${Array.isArray(value) ? 'array' : typeof value})`;
}

/** Lets one log line per key through per interval; says how many were held back. */
export class LogLimiter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  /** @returns undefined to hold the line back, else how many lines of this key were held back since the last one */
  take(key: string): number | undefined {
    const now = this.now();
    const entry = this.last.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return undefined;
    }
    // Keys are reasons × configured issuers (+1 for unknown): bounded, but keep it so.
    if (this.last.size > 1000) this.last.clear();
    this.last.set(key, { at: now, suppressed: 0 });
    return entry?.suppressed ?? 0;
  }
}
