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
import type { Fetcher } from 'aws-jwt-verify/https';
import { SimpleJwksCache } from 'aws-jwt-verify/jwk';
import { isLoopbackHost, normalizeIssuer, type CognitoIssuerConfig, type ManageConfig, type OidcIssuerConfig } from '../config.js';
import { Unauthorized } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { actorFromClaims, claimAt, decodeUnverified, statedTokenType, type TokenActor } from './claims.js';
import { BackoffFetcher, DiscoveryError, LoopbackAwareFetcher, describeFailure } from './fetchers.js';
import { LogLimiter, REFUSAL_LOG_INTERVAL_MS, classify, clip, describeToken, type RefusalReason, type RefusalTarget } from './refusals.js';

export { claimAt, groupsOf, type TokenActor } from './claims.js';
export { REFUSAL_LOG_INTERVAL_MS, type RefusalReason } from './refusals.js';

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

interface IssuerTarget extends RefusalTarget {
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
