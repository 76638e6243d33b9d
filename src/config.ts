/**
 * The configuration of middle-management, parsed once from the environment at
 * cold start (CONTRACT §4). Any misconfiguration throws a {@link ConfigError}
 * naming the variable, so a broken deployment fails at init instead of serving.
 *
 * This is the one module to import: {@link loadConfig} reads every variable
 * here or through its helpers, config/issuers.ts (who may sign tokens:
 * `MANAGE_JWT_*`, `MANAGE_COGNITO_*`) and config/console.ts (`MANAGE_CONSOLE_*`),
 * which share the parsers of config/variables.ts; their names are exported here too.
 */
import { consoleConfig, type ConsoleConfig } from './config/console.js';
import { issuerDefaults, trustedIssuers, type CognitoIssuerConfig, type OidcIssuerConfig } from './config/issuers.js';
import { ConfigError, list, text, url, type Environment } from './config/variables.js';

export { ConfigError, type Environment } from './config/variables.js';
export { DEFAULT_GROUPS_CLAIMS, isLoopbackHost, normalizeIssuer, type CognitoIssuerConfig, type OidcIssuerConfig } from './config/issuers.js';
export type { ConsoleConfig } from './config/console.js';

export interface ManageConfig {
  /** Commands that may run (`MANAGE_ALLOW_LIST`). */
  allowList: ReadonlySet<string>;
  cognito?: CognitoIssuerConfig;
  /** Trusted OIDC issuers: `MANAGE_JWT_ISSUER` (if set) first, then `MANAGE_JWT_ISSUERS`. */
  oidcIssuers: OidcIssuerConfig[];
  /** command → groups of which the caller needs one (`MANAGE_COMMAND_GROUPS`). */
  commandGroups: ReadonlyMap<string, string[]>;
  /** Groups that may read every audit record (`MANAGE_AUDITOR_GROUPS`). */
  auditorGroups: string[];
  auditTable: string;
  /** Default 65536. */
  maxBodyBytes: number;
  /** Cap on a synchronous HTTP run, default 28000 (below API Gateway's 30 s). */
  httpTimeLimitMs: number;
  /** Where the audit store is, when not the region's DynamoDB (`AWS_ENDPOINT_URL_DYNAMODB`). */
  dynamoEndpoint?: string;
  region: string;
  /** Commands that may not run twice at once, beside those that declare it (`MANAGE_EXCLUSIVE`). */
  exclusive: ReadonlySet<string>;
  /** command → groups whose members may approve it (`MANAGE_APPROVAL`). */
  approval: ReadonlyMap<string, string[]>;
  /** Default 86400. */
  idempotencyTtlSeconds: number;
  /** Mutable state: idempotency keys, leases, pending approvals (`MANAGE_STATE_TABLE`, default `<audit table>-state`). */
  stateTable: string;
  /** How long a request waits for approval before it expires (`MANAGE_APPROVAL_TTL_SECONDS`, default 3600). */
  approvalTtlSeconds: number;
  /**
   * Keys the audit's hash chains and the HMACs of sensitive arguments
   * (`MANAGE_AUDIT_HMAC_KEY`, at least 32 characters). Without it the chains
   * are plain SHA-256: they show accidental edits, not a forger's.
   */
  auditHmacKey?: Buffer;
  /** This function's own name, for worker invocations (`AWS_LAMBDA_FUNCTION_NAME`, set by Lambda). */
  functionName?: string;
  /** `AWS_ENDPOINT_URL_LAMBDA`: where worker invocations go (serverless-offline locally). */
  lambdaEndpoint?: string;
  /** `AWS_ENDPOINT_URL_SFN`: where task tokens are reported, when not the region's Step Functions. */
  sfnEndpoint?: string;
  /** The web console's sign-in settings (`MANAGE_CONSOLE_*`); absent: the console page says it is not set up. */
  console?: ConsoleConfig;
}

export const configDefaults = {
  maxBodyBytes: 65536,
  httpTimeLimitMs: 28000,
  idempotencyTtlSeconds: 86400,
  approvalTtlSeconds: 3600,
  cognitoTokenUse: issuerDefaults.cognitoTokenUse,
  region: 'us-east-1',
} as const;

/**
 * Parse the environment into a {@link ManageConfig}.
 *
 * @param env - usually `process.env`
 * @param knownCommands - the names of the commands this bundle ships; the allowlist may name no other
 * @throws ConfigError naming the first variable that is wrong
 */
export function loadConfig(env: Environment, knownCommands: Iterable<string>): ManageConfig {
  const known = new Set(knownCommands);
  const allowList = new Set(list(env, 'MANAGE_ALLOW_LIST'));
  for (const name of allowList) {
    if (!known.has(name)) {
      throw new ConfigError('MANAGE_ALLOW_LIST', `names "${name}", which is not a command (known: ${[...known].join(', ')})`);
    }
  }

  const { cognito, oidcIssuers } = trustedIssuers(env);

  const auditTable = text(env, 'MANAGE_AUDIT_TABLE');
  if (!auditTable) throw new ConfigError('MANAGE_AUDIT_TABLE', 'is required: the DynamoDB table of the audit trail');

  const hmacKey = text(env, 'MANAGE_AUDIT_HMAC_KEY');
  if (hmacKey !== undefined && hmacKey.length < 32) {
    throw new ConfigError('MANAGE_AUDIT_HMAC_KEY', 'must be at least 32 characters (e.g. 32 random bytes, base64)');
  }

  const dynamoEndpoint = text(env, 'AWS_ENDPOINT_URL_DYNAMODB');
  if (dynamoEndpoint) url(dynamoEndpoint, 'AWS_ENDPOINT_URL_DYNAMODB');

  return {
    allowList,
    ...(cognito ? { cognito } : {}),
    oidcIssuers,
    commandGroups: groupMap(env, 'MANAGE_COMMAND_GROUPS', known),
    auditorGroups: list(env, 'MANAGE_AUDITOR_GROUPS'),
    auditTable,
    maxBodyBytes: integer(env, 'MANAGE_MAX_BODY_BYTES', configDefaults.maxBodyBytes, 1, 10 * 1024 * 1024),
    httpTimeLimitMs: integer(env, 'MANAGE_HTTP_TIME_LIMIT_MS', configDefaults.httpTimeLimitMs, 100, 900_000),
    ...(dynamoEndpoint ? { dynamoEndpoint } : {}),
    region: text(env, 'AWS_REGION') ?? text(env, 'AWS_DEFAULT_REGION') ?? configDefaults.region,
    exclusive: new Set(commandNames(env, 'MANAGE_EXCLUSIVE', known)),
    approval: groupMap(env, 'MANAGE_APPROVAL', known),
    idempotencyTtlSeconds: integer(env, 'MANAGE_IDEMPOTENCY_TTL_SECONDS', configDefaults.idempotencyTtlSeconds, 1, 366 * 86400),
    stateTable: text(env, 'MANAGE_STATE_TABLE') ?? `${auditTable}-state`,
    approvalTtlSeconds: integer(env, 'MANAGE_APPROVAL_TTL_SECONDS', configDefaults.approvalTtlSeconds, 1, 30 * 86400),
    ...(hmacKey ? { auditHmacKey: Buffer.from(hmacKey, 'utf8') } : {}),
    ...optionalUrl(env, 'AWS_ENDPOINT_URL_LAMBDA', 'lambdaEndpoint'),
    ...optionalUrl(env, 'AWS_ENDPOINT_URL_SFN', 'sfnEndpoint'),
    ...(text(env, 'AWS_LAMBDA_FUNCTION_NAME') ? { functionName: text(env, 'AWS_LAMBDA_FUNCTION_NAME') } : {}),
    ...consoleConfig(env, oidcIssuers[0], cognito),
  };
}

function commandNames(env: Environment, name: string, known: Set<string>): string[] {
  const names = list(env, name);
  for (const command of names) {
    if (!known.has(command)) throw new ConfigError(name, `names "${command}", which is not a command`);
  }
  return names;
}

function integer(env: Environment, name: string, fallback: number, min: number, max: number): number {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw new ConfigError(name, `must be a whole number from ${min} to ${max}, not "${raw}"`);
  }
  return value;
}

function optionalUrl<K extends string>(env: Environment, name: string, key: K): Partial<Record<K, string>> {
  const value = text(env, name);
  if (!value) return {};
  url(value, name);
  return { [key]: value } as Partial<Record<K, string>>;
}

function groupMap(env: Environment, name: string, known: Set<string>): ReadonlyMap<string, string[]> {
  const raw = text(env, name);
  if (!raw) return new Map();
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(name, 'is not valid JSON (expected an object such as {"sleep":["ops"]})');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(name, 'must be a JSON object of command → array of group names');
  }
  const map = new Map<string, string[]>();
  for (const [command, groups] of Object.entries(parsed)) {
    if (!known.has(command)) throw new ConfigError(name, `names "${command}", which is not a command`);
    if (!Array.isArray(groups) || groups.length === 0 || !groups.every((g) => typeof g === 'string' && g.length > 0)) {
      throw new ConfigError(name, `"${command}" must map to a non-empty array of group names`);
    }
    map.set(command, groups as string[]);
  }
  return map;
}
