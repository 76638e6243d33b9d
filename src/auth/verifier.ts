/**
 * Bearer token verification, behind a small interface so the pipeline does not
 * know aws-jwt-verify and tests can use real tokens signed at test time.
 *
 * Every refusal is the same {@link Unauthorized} for the caller. The operator
 * gets the reason in the log (`auth.token_refused`: issuer, audience, kid,
 * JWKS/discovery outcome, missing claim — never the token or its signature),
 * at most one line per reason and issuer per minute per instance.
 */
import { CognitoJwtVerifier, JwtVerifier } from 'aws-jwt-verify';
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
import { SimpleFetcher, type Fetcher } from 'aws-jwt-verify/https';
import { SimpleJwksCache } from 'aws-jwt-verify/jwk';
import type { Actor } from '../command.js';
import { isLoopbackHost, normalizeIssuer, type CognitoIssuerConfig, type ManageConfig, type OidcIssuerConfig } from '../config.js';
import { Unauthorized } from '../errors.js';
import { createLogger, type Logger } from '../log.js';

export type TokenActor = Extract<Actor, { kind: 'token' }>;

export interface TokenVerifier {
  /**
   * @returns the caller named by a valid token
   * @throws Unauthorized for every kind of invalid token, whatever the reason
   */
  verify(token: string): Promise<TokenActor>;
}

export interface TokenVerifierOptions {
  /** How discovery and JWKS documents are fetched; the default refuses `http:` except on loopback hosts. */
  fetcher?: Fetcher;
  /** Where refusal reasons and the issuer check go; default: JSON lines on stdout. */
  logger?: Logger;
  /** Default `Date.now`. */
  now?: () => number;
  /** Start each issuer's discovery at creation (the cold-start check); default true. */
  checkIssuersAtStart?: boolean;
}

/** Tokens longer than this are refused before any parsing. */
export const MAX_TOKEN_LENGTH = 16 * 1024;
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

/** Build the verifiers once, at cold start, for the issuers the config names. */
export function createTokenVerifier(config: ManageConfig, options: TokenVerifierOptions = {}): TokenVerifier {
  const logger = options.logger ?? createLogger();
  const now = options.now ?? Date.now;
  const fetcher = new BackoffFetcher(options.fetcher ?? new LoopbackAwareFetcher(), 10_000, now);
  const jwksCache = new SimpleJwksCache({ fetcher });
  const limiter = new LogLimiter(REFUSAL_LOG_INTERVAL_MS, now);

  const oidc = new Map<string, OidcIssuer>();
  for (const issuerConfig of config.oidcIssuers ?? []) {
    oidc.set(issuerConfig.issuer, new OidcIssuer(issuerConfig, fetcher, jwksCache, logger));
  }
  const cognito = config.cognito ? new CognitoIssuer(config.cognito, jwksCache) : undefined;
  if (options.checkIssuersAtStart !== false && oidc.size > 0) {
    // After the cold start's own code and not awaited: init is not slowed (even the first fetch's
    // own set-up is not paid here), an issuer that is down only warns, and the first request
    // finds the JWKS URI already known. Unref'd: it keeps no short-lived process alive.
    setImmediate(() => {
      for (const issuer of oidc.values()) issuer.startupCheck();
    }).unref();
  }

  const refuse = (reason: RefusalReason, fields: Record<string, unknown>, cause?: unknown): never => {
    // Keys are bounded: reasons × configured issuers × claim names we check (never a value from the token).
    const key = `${reason} ${String(fields.configuredIssuer ?? '-')} ${String(fields.claim ?? '')}`;
    const suppressed = limiter.take(key);
    if (suppressed !== undefined) {
      logger.log('warn', 'auth.token_refused', { reason, ...fields, ...(suppressed > 0 ? { suppressedSinceLastLine: suppressed } : {}) });
    }
    throw new Unauthorized(cause === undefined ? undefined : { cause });
  };

  return {
    async verify(token) {
      if (token.length > MAX_TOKEN_LENGTH) return refuse('malformed', { detail: `longer than ${MAX_TOKEN_LENGTH} characters` });
      const decoded = decodeUnverified(token);
      if (!decoded) {
        return refuse('malformed', {
          detail: token.includes('.')
            ? 'not a signed JWT (three base64url parts, JSON header and payload in UTF-8)'
            : 'not a JWT: an opaque access token? Ask the issuer for a JWT access token (an API audience, or an RFC 8707 resource)',
        });
      }
      const { header, payload } = decoded;
      const tokenFields = describeToken(header, payload);
      const iss = typeof payload.iss === 'string' ? payload.iss : undefined;
      if (iss === undefined) return refuse('missing_claim', { claim: 'iss', ...tokenFields });

      // The unverified `iss` only picks the verifier; that verifier checks the signature with that issuer's keys.
      // Issuers compare exactly (OIDC Core §3.1.3.7): `https://x/` is not `https://x`.
      const target = oidc.get(iss) ?? (cognito?.issuer === iss ? cognito : undefined);
      if (!target) {
        const configuredIssuers = [...oidc.keys(), ...(cognito ? [cognito.issuer] : [])];
        const near = configuredIssuers.find((configured) => normalizeIssuer(configured) === normalizeIssuer(iss));
        return refuse('unknown_issuer', {
          ...tokenFields,
          configuredIssuers,
          ...(near ? { hint: `differs from the configured issuer ${JSON.stringify(near)} only by a trailing "/": configure the issuer exactly as its tokens carry it` } : {}),
        });
      }
      const context = { ...tokenFields, configuredIssuer: target.issuer };
      let verified: Record<string, unknown>;
      try {
        verified = await target.verify(token);
      } catch (error) {
        const { reason, fields } = classify(error, target);
        return refuse(reason, { ...context, ...fields }, error);
      }
      // aws-jwt-verify lets a token without `exp` pass; a token without `sub` names nobody.
      for (const claim of ['exp', 'sub'] as const) {
        const value = verified[claim];
        if (claim === 'exp' ? typeof value !== 'number' : typeof value !== 'string' || value === '') {
          return refuse('missing_claim', { ...context, claim });
        }
      }
      const problem = target.checkClaims(header, verified);
      if (problem) return refuse(problem.reason, { ...context, ...problem.fields });

      const actor = actorFromClaims(verified, target.groupsClaims);
      if (actor.groups.length === 0 && target.groupsClaims.length > 0 && !target.groupsClaims.some((path) => claimAt(verified, path) !== undefined)) {
        // Not a refusal (a command without group rules may run), but the usual cause of a puzzling 403.
        if (limiter.take(`groups_claim_missing ${target.issuer}`) !== undefined) {
          logger.log('info', 'auth.groups_claim_missing', { configuredIssuer: target.issuer, groupsClaims: target.groupsClaims, claimsPresent: Object.keys(verified).slice(0, 40) });
        }
      }
      return actor;
    },
  };
}

interface IssuerTarget {
  readonly issuer: string;
  readonly groupsClaims: readonly string[];
  verify(token: string): Promise<Record<string, unknown>>;
  /** Checks beyond aws-jwt-verify's: audience, token type. */
  checkClaims(header: Record<string, unknown>, payload: Record<string, unknown>): { reason: RefusalReason; fields: Record<string, unknown> } | undefined;
  /** The JWKS URI in use, when known (for log lines). */
  jwksUri(): string | undefined;
}

class CognitoIssuer implements IssuerTarget {
  readonly issuer: string;
  readonly groupsClaims: readonly string[];
  private readonly verifier;
  constructor(
    private readonly config: CognitoIssuerConfig,
    jwksCache: SimpleJwksCache,
  ) {
    const region = config.userPoolId.split('_')[0];
    this.issuer = `https://cognito-idp.${region}.amazonaws.com/${config.userPoolId}`;
    this.groupsClaims = config.groupsClaims ?? ['cognito:groups'];
    this.verifier = CognitoJwtVerifier.create({ userPoolId: config.userPoolId, clientId: config.clientIds, tokenUse: config.tokenUse }, { jwksCache });
  }
  async verify(token: string) {
    return (await this.verifier.verify(token)) as unknown as Record<string, unknown>;
  }
  checkClaims() {
    return undefined; // aws-jwt-verify checked token_use and client_id / aud
  }
  jwksUri() {
    return `${this.issuer}/.well-known/jwks.json`;
  }
  expected() {
    return { clientIds: this.config.clientIds, tokenUse: this.config.tokenUse };
  }
}

/** A discovery document could not be used; `reason` says how. */
class DiscoveryError extends Error {
  override readonly name = 'DiscoveryError';
  constructor(
    readonly reason: 'discovery_failed' | 'discovery_issuer_mismatch',
    readonly url: string,
    readonly outcome: string,
  ) {
    super(`${url}: ${outcome}`);
  }
}

class OidcIssuer implements IssuerTarget {
  readonly issuer: string;
  readonly groupsClaims: readonly string[];
  readonly discoveryUrl: string;
  private verifierPromise: Promise<JwtVerifier<any, any, any>> | undefined;
  private discovered: string | undefined;

  constructor(
    readonly config: OidcIssuerConfig,
    private readonly fetcher: BackoffFetcher,
    private readonly jwksCache: SimpleJwksCache,
    private readonly logger: Logger,
  ) {
    this.issuer = config.issuer;
    this.groupsClaims = config.groupsClaims ?? ['groups', 'cognito:groups'];
    this.discoveryUrl = `${normalizeIssuer(config.issuer)}/.well-known/openid-configuration`;
  }

  jwksUri() {
    return this.config.jwksUri ?? this.discovered;
  }

  /** The cold-start check: discovery answers and names this issuer. Warns, never throws. */
  startupCheck(): void {
    const started = Date.now();
    // A failure here starts no back-off: the first request tries again at once.
    const check = this.config.jwksUri ? this.discover(false) : this.jwtVerifier(false).then(() => this.discovered!);
    check.then(
      (jwksUri) =>
        this.logger.log('info', 'auth.issuer_ready', {
          issuer: this.issuer,
          jwksUri: this.config.jwksUri ?? jwksUri,
          jwksSource: this.config.jwksUri ? 'configured' : 'discovery',
          ms: Date.now() - started,
        }),
      (error: unknown) =>
        this.logger.log('warn', 'auth.issuer_check_failed', {
          issuer: this.issuer,
          discovery: this.discoveryUrl,
          outcome: error instanceof DiscoveryError ? error.outcome : describeFailure(error),
          consequence: this.config.jwksUri
            ? 'none yet: the configured JWKS URI is used'
            : 'its tokens are refused until discovery answers (tried again by the next request, then at most every 10 s)',
          ...(error instanceof DiscoveryError && error.reason === 'discovery_issuer_mismatch' ? { reason: error.reason } : {}),
        }),
    );
  }

  async verify(token: string) {
    const verifier = await this.jwtVerifier();
    return (await verifier.verify(token)) as Record<string, unknown>;
  }

  /** One verifier per cold start; made once the JWKS URI is known (configured, or from discovery). */
  private jwtVerifier(backoff = true): Promise<JwtVerifier<any, any, any>> {
    this.verifierPromise ??= (this.config.jwksUri ? Promise.resolve(this.config.jwksUri) : this.discover(backoff)).then(
      (jwksUri) =>
        // The issuer was matched (trailing `/` aside) to pick this verifier; audience and type are checked after.
        JwtVerifier.create({ issuer: null, audience: null, jwksUri }, { jwksCache: this.jwksCache }) as JwtVerifier<any, any, any>,
    );
    // A failure is not kept: the next request tries again (the fetcher backs off).
    this.verifierPromise.catch(() => (this.verifierPromise = undefined));
    return this.verifierPromise;
  }

  private async discover(backoff = true): Promise<string> {
    let document: unknown;
    try {
      const body = backoff ? await this.fetcher.fetch(this.discoveryUrl) : await this.fetcher.fetchOnce(this.discoveryUrl);
      document = JSON.parse(new TextDecoder().decode(body));
    } catch (error) {
      throw new DiscoveryError('discovery_failed', this.discoveryUrl, describeFailure(error));
    }
    const { issuer, jwks_uri: jwksUri } = (document ?? {}) as { issuer?: unknown; jwks_uri?: unknown };
    // OpenID Connect Discovery §4.3: the document's issuer is exactly the configured one, or it is not used.
    if (issuer !== this.issuer) {
      throw new DiscoveryError(
        'discovery_issuer_mismatch',
        this.discoveryUrl,
        `the document names issuer ${JSON.stringify(clip(issuer))}, not ${JSON.stringify(this.issuer)}${typeof issuer === 'string' && normalizeIssuer(issuer) === normalizeIssuer(this.issuer) ? ' (a trailing "/" differs: configure the issuer exactly as the document and its tokens spell it)' : ''}`,
      );
    }
    if (typeof jwksUri !== 'string') throw new DiscoveryError('discovery_failed', this.discoveryUrl, 'the document has no jwks_uri');
    let parsed: URL;
    try {
      parsed = new URL(jwksUri);
    } catch {
      throw new DiscoveryError('discovery_failed', this.discoveryUrl, `jwks_uri ${JSON.stringify(clip(jwksUri))} is not a URL`);
    }
    if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname))) {
      throw new DiscoveryError('discovery_failed', this.discoveryUrl, `jwks_uri ${JSON.stringify(clip(jwksUri))} is not https (http: only on a loopback host)`);
    }
    this.discovered = jwksUri;
    return jwksUri;
  }

  checkClaims(header: Record<string, unknown>, payload: Record<string, unknown>) {
    const stated = statedTokenType(header, payload);
    const expected = this.config.tokenUse;
    if (stated === 'other' || (expected === 'access' && stated !== 'access') || (expected === 'id' && stated === 'access')) {
      return { reason: 'wrong_token_type' as const, fields: { expectedTokenUse: expected ?? 'access or id', statedTokenType: stated ?? 'none' } };
    }
    const audiences = this.config.audiences;
    const aud = payload.aud;
    const tokenAudiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
    if (tokenAudiences.some((a) => audiences.includes(a))) return undefined;
    // A Cognito access token names its app client in `client_id` and has no `aud`.
    if (aud === undefined && expected === 'access' && payload.token_use === 'access' && typeof payload.client_id === 'string' && audiences.includes(payload.client_id)) {
      return undefined;
    }
    if (aud === undefined) {
      return { reason: 'missing_claim' as const, fields: { claim: 'aud', expectedAudience: audiences, ...(typeof payload.client_id === 'string' ? { clientId: clip(payload.client_id) } : {}) } };
    }
    return { reason: 'wrong_audience' as const, fields: { expectedAudience: audiences } };
  }
}

/**
 * The type a token states for itself: RFC 9068 `typ: at+jwt` header, Cognito's
 * `token_use` claim, Keycloak's `typ` claim (`Bearer`, `ID`, `Refresh`…).
 */
function statedTokenType(header: Record<string, unknown>, payload: Record<string, unknown>): 'access' | 'id' | 'other' | undefined {
  const typ = typeof header.typ === 'string' ? header.typ.toLowerCase() : undefined;
  if (typ === 'at+jwt' || typ === 'application/at+jwt') return 'access';
  if (payload.token_use === 'access' || payload.token_use === 'id') return payload.token_use;
  if (payload.token_use !== undefined) return 'other';
  if (typeof payload.typ === 'string') {
    const claim = payload.typ.toLowerCase();
    if (claim === 'bearer') return 'access';
    if (claim === 'id') return 'id';
    return 'other';
  }
  return undefined;
}

/** aws-jwt-verify's error (or a plain crypto Error) → a reason and what the operator needs to know about it. */
function classify(error: unknown, target: IssuerTarget): { reason: RefusalReason; fields: Record<string, unknown> } {
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
  if (error instanceof JwtInvalidAudienceError) return { reason: 'wrong_audience', fields: target instanceof CognitoIssuer ? target.expected() : {} };
  if (error instanceof CognitoJwtInvalidClientIdError) return { reason: 'wrong_client', fields: target instanceof CognitoIssuer ? target.expected() : {} };
  if (error instanceof CognitoJwtInvalidTokenUseError) {
    return { reason: 'wrong_token_type', fields: target instanceof CognitoIssuer ? target.expected() : {} };
  }
  if (error instanceof JwtParseError) return { reason: 'malformed', fields: {} };
  // A malformed ES256 signature makes node:crypto throw a plain Error: still only a bad signature.
  if (error instanceof Error && error.constructor === Error) return { reason: 'bad_signature', fields: { ...jwks(), outcome: describeFailure(error) } };
  return { reason: 'verification_failed', fields: { outcome: describeFailure(error) } };
}

/** What a log line may say about an unverified token: who issued it, for whom, which key, no values that prove anything. */
function describeToken(header: Record<string, unknown>, payload: Record<string, unknown>): Record<string, unknown> {
  const aud = payload.aud;
  return {
    issuer: clip(payload.iss),
    ...(aud !== undefined ? { audience: Array.isArray(aud) ? aud.slice(0, 5).map(clip) : clip(aud) } : {}),
    kid: clip(header.kid),
    alg: clip(header.alg),
    ...(header.typ !== undefined ? { typ: clip(header.typ) } : {}),
  };
}

function clip(value: unknown): unknown {
  if (typeof value === 'string') return value.length > 200 ? `${value.slice(0, 200)}…` : value;
  if (value === undefined || value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  return `(${Array.isArray(value) ? 'array' : typeof value})`;
}

function describeFailure(error: unknown): string {
  const ours = error instanceof FetchFailedError || error instanceof BackingOffError || error instanceof DiscoveryError;
  const message = error instanceof Error ? `${error.name === 'Error' || ours ? '' : `${error.constructor.name}: `}${error.message}` : String(error);
  return message.length > 300 ? `${message.slice(0, 300)}…` : message;
}

/** The verified claims we act on. */
function actorFromClaims(payload: Record<string, unknown>, groupsClaims: readonly string[]): TokenActor {
  const username = stringClaim(payload['cognito:username']) ?? stringClaim(payload['username']) ?? stringClaim(payload['preferred_username']);
  return {
    kind: 'token',
    issuer: payload.iss as string,
    subject: payload.sub as string,
    ...(username ? { username } : {}),
    groups: groupsOf(payload, groupsClaims),
    scopes: scopesOf(payload),
  };
}

function stringClaim(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * The value at a claim path: the claim of that exact name if there is one
 * (`cognito:groups`, Auth0's `https://example.com/roles`), else the path split
 * on dots (`realm_access.roles`). Own properties only.
 */
export function claimAt(payload: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path];
  let value: unknown = payload;
  for (const segment of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

/**
 * Groups from every configured claim path. A string is ONE group (`"external
 * auditors"` is not `auditors`); an array's strings are groups. A group path
 * (`/ops`, Keycloak's group membership) also counts without its leading `/`
 * (`ops`); `/eng/ops` counts as `eng/ops`, never as `ops`.
 */
export function groupsOf(payload: Record<string, unknown>, groupsClaims: readonly string[]): string[] {
  const groups = new Set<string>();
  for (const path of groupsClaims) {
    const value = claimAt(payload, path);
    const items = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
    for (const item of items) {
      if (typeof item !== 'string' || item === '') continue;
      groups.add(item);
      if (item.startsWith('/') && item.length > 1) groups.add(item.slice(1));
    }
  }
  return [...groups];
}

/** OAuth scopes: `scope` (RFC 8693/9068: one space-separated string) or `scp` (Entra: string; Okta: array). */
function scopesOf(payload: Record<string, unknown>): string[] {
  const value = payload['scope'] ?? payload['scp'];
  if (typeof value === 'string') return value.split(' ').filter(Boolean);
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string' && item !== '');
  return [];
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Header and payload of a compact JWS, unverified. RFC 7519 §7.2: they are
 * UTF-8; decoded leniently, distinct byte strings would read as one claim.
 */
function decodeUnverified(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !/^[A-Za-z0-9_-]+$/.test(parts[2]!)) return undefined;
  try {
    const [header, payload] = parts.slice(0, 2).map((part) => {
      if (!/^[A-Za-z0-9_-]*$/.test(part)) throw new Error('not base64url');
      const value: unknown = JSON.parse(strictUtf8.decode(Buffer.from(part, 'base64url')));
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
      return value as Record<string, unknown>;
    });
    return { header: header!, payload: payload! };
  } catch {
    return undefined;
  }
}

/**
 * aws-jwt-verify fetches over https only. A development issuer on this
 * machine serves plain http; the config allows that for loopback hosts only,
 * and so does this fetcher.
 */
class LoopbackAwareFetcher implements Fetcher {
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

class BackingOffError extends Error {
  override readonly name = 'BackingOffError';
}

/** A discovery or JWKS fetch failed (network, status, size, timeout). */
class FetchFailedError extends Error {
  override readonly name = 'FetchFailedError';
}

/**
 * aws-jwt-verify's penalty box only holds back a refetch after a JWKS that lacked the kid;
 * a fetch that failed would be retried by every request. This backs off after a failure too
 * (discovery and JWKS alike).
 */
class BackoffFetcher implements Fetcher {
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

/** Lets one log line per key through per interval; says how many were held back. */
class LogLimiter {
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
