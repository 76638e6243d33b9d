/**
 * The `custom.middleManagement` block: its JSON schema (handed to the
 * framework's config schema handler, which only warns by default) and our own
 * validation, which fails `serverless package` naming the key that is wrong.
 *
 * Values that are empty strings count as "not set", so that
 * `${param:x, ''}`-style stage parameters can switch a key off.
 */

/** CloudWatch Logs accepts only these retention periods. */
export const RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

export const BLOCK = 'custom.middleManagement';

/** An intrinsic function or a literal string: CloudFormation resolves the former. */
const stringOrIntrinsicSchema = { anyOf: [{ type: 'string' }, { type: 'object' }] };
const stringListSchema = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] };
/** A map, or its JSON (e.g. from a stage parameter; '' = not set). */
const groupMapSchema = { anyOf: [{ type: 'object', additionalProperties: stringListSchema }, { type: 'string' }] };
/** An integer, or its digits (e.g. from a stage parameter). */
const integerSchema = { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^\\d*$' }] };
const issuerSchema = {
  type: 'object',
  properties: {
    issuer: { type: 'string' },
    audience: stringListSchema,
    jwksUri: { type: 'string' },
    groupsClaim: stringListSchema,
    tokenUse: { type: 'string' },
  },
  additionalProperties: false,
};

/** For `serverless.configSchemaHandler.defineCustomProperties`. */
export const blockSchema = {
  type: 'object',
  properties: {
    middleManagement: {
      type: 'object',
      properties: {
        handler: { type: 'string' },
        functionName: { type: 'string', pattern: '^[a-zA-Z0-9_-]+$' },
        allowList: stringListSchema,
        jwt: { anyOf: [issuerSchema, { type: 'array', items: issuerSchema }] },
        groupsClaim: stringListSchema,
        cognito: {
          type: 'object',
          properties: { userPoolId: { type: 'string' }, clientId: stringListSchema, tokenUse: { type: 'string' } },
          additionalProperties: false,
        },
        commandGroups: groupMapSchema,
        auditorGroups: stringListSchema,
        exclusive: stringListSchema,
        approval: groupMapSchema,
        auditHmacKey: stringOrIntrinsicSchema,
        stepFunctions: { type: 'boolean' },
        maxBodyBytes: integerSchema,
        httpTimeLimitMs: integerSchema,
        idempotencyTtlSeconds: integerSchema,
        approvalTtlSeconds: integerSchema,
        logRetentionInDays: integerSchema,
        auditTableName: { type: 'string' },
        stateTableName: { type: 'string' },
        memorySize: integerSchema,
        timeout: integerSchema,
        reservedConcurrency: integerSchema,
        kmsKeyArn: stringOrIntrinsicSchema,
        throttling: {
          type: 'object',
          properties: { burstLimit: { type: 'integer' }, rateLimit: { type: 'number' } },
          additionalProperties: false,
        },
        environment: { type: 'object', additionalProperties: stringOrIntrinsicSchema },
        iamStatements: { type: 'array', items: { type: 'object' } },
        console: {
          type: 'object',
          properties: {
            clientId: { type: 'string' },
            redirectUri: { type: 'string' },
            issuer: { type: 'string' },
            scopes: stringListSchema,
            resource: { type: 'string' },
            tokenUse: { type: 'string' },
            authOrigins: stringListSchema,
          },
          additionalProperties: false,
        },
      },
      required: ['handler'],
      additionalProperties: false,
    },
  },
};

export interface IssuerSettings {
  issuer: string;
  audience: string[];
  jwksUri?: string;
  groupsClaim?: string[];
  tokenUse?: string;
}

/** The block, checked and normalised (lists as arrays, defaults applied). */
export interface Settings {
  handler: string;
  functionKey: string;
  allowList: string[];
  jwt: IssuerSettings[];
  /** True when `jwt` was written as one object (→ MANAGE_JWT_ISSUER/AUDIENCE/JWKS_URI). */
  jwtSingle: boolean;
  groupsClaim: string[];
  cognito?: { userPoolId: string; clientId: string[]; tokenUse?: 'access' | 'id' };
  commandGroups?: Record<string, string[]>;
  auditorGroups: string[];
  exclusive: string[];
  approval?: Record<string, string[]>;
  auditHmacKey?: string | Record<string, unknown>;
  stepFunctions: boolean;
  maxBodyBytes?: number;
  httpTimeLimitMs?: number;
  idempotencyTtlSeconds?: number;
  approvalTtlSeconds?: number;
  logRetentionInDays: number;
  auditTableName?: string;
  stateTableName?: string;
  memorySize: number;
  timeout: number;
  reservedConcurrency?: number;
  kmsKeyArn?: string | Record<string, unknown>;
  throttling: { burstLimit: number; rateLimit: number };
  environment: Record<string, unknown>;
  iamStatements: Record<string, unknown>[];
  /** The web console's sign-in (MANAGE_CONSOLE_*). */
  console?: ConsoleSettings;
}

export interface ConsoleSettings {
  clientId: string;
  redirectUri?: string;
  issuer?: string;
  /** Space-separated, as OAuth sends them. */
  scopes?: string;
  resource?: string;
  tokenUse?: 'access' | 'id';
  authOrigins?: string[];
}

export const DEFAULTS = {
  functionKey: 'manage',
  /** Failed sign-ins and every run are evidence: keep a year. */
  logRetentionInDays: 365,
  /**
   * Lambda's CPU share scales with memory: 1024 MB keeps the cold start (JWKS
   * fetch, SDK init) short; the function is idle nearly always, so cost is small.
   */
  memorySize: 1024,
  /**
   * Direct invocations run a command up to its own time limit (up to 15 minutes),
   * so Lambda's maximum; HTTP runs are capped in code by MANAGE_HTTP_TIME_LIMIT_MS,
   * below API Gateway's 30 s integration limit.
   */
  timeout: 900,
  /** An ops API sees a handful of calls a minute; this caps a runaway script or a flood. */
  throttling: { burstLimit: 20, rateLimit: 10 },
} as const;

const KNOWN_KEYS = Object.keys(blockSchema.properties.middleManagement.properties);

/** A configuration mistake, reported as `custom.middleManagement.<key>: <problem>`. */
export class SettingsError extends Error {
  override readonly name = 'SettingsError';
  constructor(
    readonly key: string,
    problem: string,
  ) {
    super(`${BLOCK}.${key}: ${problem}`);
  }
}

type Raw = Record<string, unknown>;

const isObject = (value: unknown): value is Raw => typeof value === 'object' && value !== null && !Array.isArray(value);
const isSet = (value: unknown) => value !== undefined && value !== null && value !== '';

const CONSOLE_KEYS = 'clientId, redirectUri, issuer, scopes, resource, tokenUse, authOrigins';

/** `console: { clientId, redirectUri?, issuer?, scopes?, resource?, tokenUse?, authOrigins? }`; empty strings are "not set". */
function parseConsole(raw: unknown): ConsoleSettings | undefined {
  if (!isSet(raw)) return undefined;
  if (!isObject(raw)) throw new SettingsError('console', `must be an object { ${CONSOLE_KEYS} }`);
  for (const key of Object.keys(raw)) {
    if (!CONSOLE_KEYS.split(', ').includes(key)) throw new SettingsError(`console.${key}`, `is not a key of console (known: ${CONSOLE_KEYS})`);
  }
  const clientId = optionalString(raw.clientId, 'console.clientId');
  const redirectUri = optionalString(raw.redirectUri, 'console.redirectUri');
  if (redirectUri) httpsUrl(redirectUri, 'console.redirectUri');
  const issuer = optionalString(raw.issuer, 'console.issuer');
  if (issuer) httpsUrl(issuer, 'console.issuer');
  const scopeList = isSet(raw.scopes) && typeof raw.scopes === 'string' ? raw.scopes.split(/[\s,]+/) : stringList(raw.scopes, 'console.scopes');
  const scopes = scopeList.map((scope) => scope.trim()).filter(Boolean).join(' ');
  const resource = optionalString(raw.resource, 'console.resource');
  if (resource && !/^[a-z][a-z0-9+.-]*:\S+$/i.test(resource)) throw new SettingsError('console.resource', `"${resource}" is not an absolute URI (a resource indicator, e.g. https://api.example.com or urn:example:api)`);
  const tokenUse = optionalString(raw.tokenUse, 'console.tokenUse');
  if (tokenUse && tokenUse !== 'access' && tokenUse !== 'id') throw new SettingsError('console.tokenUse', `must be "access" or "id", not "${tokenUse}"`);
  const authOrigins = stringList(raw.authOrigins, 'console.authOrigins');
  authOrigins.forEach((origin, index) => httpsUrl(origin, `console.authOrigins[${index}]`));
  const others = { redirectUri, issuer, scopes: scopes || undefined, resource, tokenUse, authOrigins: authOrigins.length ? authOrigins : undefined };
  if (!clientId) {
    const named = Object.entries(others).find(([, value]) => value !== undefined);
    if (named) throw new SettingsError('console.clientId', `is required with console.${named[0]}: the console signs in as that public client of the issuer`);
    return undefined;
  }
  const settings: ConsoleSettings = { clientId };
  for (const [key, value] of Object.entries(others)) if (value !== undefined) (settings as unknown as Raw)[key] = value;
  return settings;
}

function stringList(raw: unknown, key: string): string[] {
  if (!isSet(raw)) return [];
  const items = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw : undefined;
  if (!items) throw new SettingsError(key, 'must be a string (comma-separated) or a list of strings');
  return items.map((item, index) => {
    if (typeof item !== 'string') throw new SettingsError(`${key}[${index}]`, 'must be a string');
    return item.trim();
  }).filter(Boolean);
}

function optionalString(raw: unknown, key: string): string | undefined {
  if (!isSet(raw)) return undefined;
  if (typeof raw !== 'string') throw new SettingsError(key, 'must be a string');
  return raw.trim() || undefined;
}

function stringOrIntrinsic(raw: unknown, key: string): string | Raw | undefined {
  if (!isSet(raw)) return undefined;
  if (typeof raw === 'string') return raw;
  if (isObject(raw) && Object.keys(raw).length === 1 && /^(Ref|Fn::\w+)$/.test(Object.keys(raw)[0]!)) return raw;
  throw new SettingsError(key, 'must be a string or a CloudFormation intrinsic function ({ Ref: … } or { "Fn::…": … })');
}

function integer(raw: unknown, key: string, min: number, max: number): number | undefined {
  if (!isSet(raw)) return undefined;
  const value = typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new SettingsError(key, `must be an integer from ${min} to ${max}, not ${JSON.stringify(raw)}`);
  }
  return value;
}

function httpsUrl(raw: string, key: string): void {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new SettingsError(key, `"${raw}" is not a URL`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new SettingsError(key, `"${raw}" is not an http(s) URL`);
}

function groupMap(raw: unknown, key: string): Record<string, string[]> | undefined {
  if (!isSet(raw)) return undefined;
  let value = raw;
  if (typeof raw === 'string') {
    // Also accepted: the JSON of MANAGE_COMMAND_GROUPS / MANAGE_APPROVAL, e.g. from a stage parameter.
    try {
      value = JSON.parse(raw);
    } catch {
      throw new SettingsError(key, 'must be a map of command → groups (or its JSON)');
    }
  }
  if (!isObject(value)) throw new SettingsError(key, 'must be a map of command → groups');
  const result: Record<string, string[]> = {};
  for (const [command, groups] of Object.entries(value)) {
    const list = stringList(groups, `${key}.${command}`);
    if (list.length === 0) throw new SettingsError(`${key}.${command}`, 'names no group');
    result[command] = list;
  }
  return Object.keys(result).length > 0 ? result : undefined;
}

function issuer(raw: unknown, key: string): IssuerSettings | undefined {
  if (!isObject(raw)) throw new SettingsError(key, 'must be an object { issuer, audience, jwksUri?, groupsClaim?, tokenUse? }');
  for (const name of Object.keys(raw)) {
    if (!['issuer', 'audience', 'jwksUri', 'groupsClaim', 'tokenUse'].includes(name)) {
      throw new SettingsError(`${key}.${name}`, 'is not a known key (issuer, audience, jwksUri, groupsClaim, tokenUse)');
    }
  }
  const iss = optionalString(raw.issuer, `${key}.issuer`);
  const audience = stringList(raw.audience, `${key}.audience`);
  const jwksUri = optionalString(raw.jwksUri, `${key}.jwksUri`);
  if (!iss) {
    if (audience.length > 0 || jwksUri) throw new SettingsError(`${key}.issuer`, 'is required');
    return undefined;
  }
  httpsUrl(iss, `${key}.issuer`);
  if (audience.length === 0) {
    throw new SettingsError(`${key}.audience`, 'is required with an issuer: without an audience any token of the issuer would pass');
  }
  if (jwksUri) httpsUrl(jwksUri, `${key}.jwksUri`);
  const groupsClaim = stringList(raw.groupsClaim, `${key}.groupsClaim`);
  const tokenUse = optionalString(raw.tokenUse, `${key}.tokenUse`);
  return {
    issuer: iss,
    audience,
    ...(jwksUri ? { jwksUri } : {}),
    ...(groupsClaim.length ? { groupsClaim } : {}),
    ...(tokenUse ? { tokenUse } : {}),
  };
}

/**
 * Check and normalise the block.
 * @throws SettingsError naming the first wrong or missing key
 */
export function parseSettings(raw: unknown): Settings {
  if (raw === undefined || raw === null) throw new SettingsError('handler', 'is required: add a custom.middleManagement block with handler: <file>.<export>');
  if (!isObject(raw)) throw new SettingsError('', 'must be an object');
  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS.includes(key)) throw new SettingsError(key, `is not a known key (known: ${KNOWN_KEYS.join(', ')})`);
  }

  const handler = optionalString(raw.handler, 'handler');
  if (!handler) throw new SettingsError('handler', 'is required: the module and export of your manage handler, e.g. src/manage.handler');
  if (!/^[^\s]+\.[A-Za-z_$][\w$]*$/.test(handler)) throw new SettingsError('handler', `"${handler}" is not <file>.<export>`);

  const functionKey = optionalString(raw.functionName, 'functionName') ?? DEFAULTS.functionKey;
  if (!/^[a-zA-Z0-9_-]+$/.test(functionKey)) throw new SettingsError('functionName', `"${functionKey}" may use letters, digits, - and _ only`);

  let jwt: IssuerSettings[] = [];
  let jwtSingle = true;
  if (Array.isArray(raw.jwt)) {
    jwtSingle = false;
    jwt = raw.jwt.map((item, index) => issuer(item, `jwt[${index}]`)).filter((item): item is IssuerSettings => item !== undefined);
  } else if (isSet(raw.jwt)) {
    const one = issuer(raw.jwt, 'jwt');
    if (one) jwt = [one];
  }
  const groupsClaim = stringList(raw.groupsClaim, 'groupsClaim');
  // One object maps onto MANAGE_JWT_ISSUER/AUDIENCE/JWKS_URI, which have no per-issuer claim or token use.
  if (jwtSingle && jwt[0] && (jwt[0].tokenUse || (jwt[0].groupsClaim && groupsClaim.length))) jwtSingle = false;
  for (const [index, entry] of jwt.entries()) {
    if (entry.tokenUse && entry.tokenUse !== 'access' && entry.tokenUse !== 'id') {
      throw new SettingsError(jwtSingle ? 'jwt.tokenUse' : `jwt[${index}].tokenUse`, 'must be "access" or "id"');
    }
  }

  let cognito: Settings['cognito'];
  if (isSet(raw.cognito)) {
    if (!isObject(raw.cognito)) throw new SettingsError('cognito', 'must be an object { userPoolId, clientId, tokenUse? }');
    for (const name of Object.keys(raw.cognito)) {
      if (!['userPoolId', 'clientId', 'tokenUse'].includes(name)) throw new SettingsError(`cognito.${name}`, 'is not a known key (userPoolId, clientId, tokenUse)');
    }
    const userPoolId = optionalString(raw.cognito.userPoolId, 'cognito.userPoolId');
    const clientId = stringList(raw.cognito.clientId, 'cognito.clientId');
    const tokenUse = optionalString(raw.cognito.tokenUse, 'cognito.tokenUse');
    if (userPoolId) {
      if (!/^[a-z]{2}(-[a-z]+)+-\d_[0-9A-Za-z]+$/.test(userPoolId)) throw new SettingsError('cognito.userPoolId', `"${userPoolId}" is not a user pool id (e.g. eu-west-1_AbCdEf123)`);
      if (clientId.length === 0) throw new SettingsError('cognito.clientId', 'is required with cognito.userPoolId');
      if (tokenUse && tokenUse !== 'access' && tokenUse !== 'id') throw new SettingsError('cognito.tokenUse', 'must be "access" or "id"');
      cognito = { userPoolId, clientId, ...(tokenUse ? { tokenUse: tokenUse as 'access' | 'id' } : {}) };
    } else if (clientId.length > 0) {
      throw new SettingsError('cognito.userPoolId', 'is required with cognito.clientId');
    }
  }

  const auditHmacKey = stringOrIntrinsic(raw.auditHmacKey, 'auditHmacKey');
  if (typeof auditHmacKey === 'string' && !auditHmacKey.startsWith('{{resolve:') && auditHmacKey.length < 32) {
    throw new SettingsError('auditHmacKey', 'must be at least 32 characters (better: a {{resolve:secretsmanager:…}} dynamic reference)');
  }
  if (isSet(raw.stepFunctions) && typeof raw.stepFunctions !== 'boolean') throw new SettingsError('stepFunctions', 'must be true or false');

  const logRetentionInDays = integer(raw.logRetentionInDays, 'logRetentionInDays', 1, 3653) ?? DEFAULTS.logRetentionInDays;
  if (!(RETENTION_DAYS as readonly number[]).includes(logRetentionInDays)) {
    throw new SettingsError('logRetentionInDays', `must be one of CloudWatch's periods (${RETENTION_DAYS.join(', ')}), not ${logRetentionInDays}`);
  }
  const timeout = integer(raw.timeout, 'timeout', 1, 900) ?? DEFAULTS.timeout;
  const httpTimeLimitMs = integer(raw.httpTimeLimitMs, 'httpTimeLimitMs', 100, 900_000);
  if (httpTimeLimitMs !== undefined && httpTimeLimitMs >= timeout * 1000) {
    throw new SettingsError('httpTimeLimitMs', `must be below the function's timeout (${timeout} s)`);
  }

  let throttling: Settings['throttling'] = { ...DEFAULTS.throttling };
  if (isSet(raw.throttling)) {
    if (!isObject(raw.throttling)) throw new SettingsError('throttling', 'must be an object { burstLimit, rateLimit }');
    const burstLimit = integer(raw.throttling.burstLimit, 'throttling.burstLimit', 1, 100_000);
    const rateLimit = raw.throttling.rateLimit;
    if (isSet(rateLimit) && (typeof rateLimit !== 'number' || !(rateLimit > 0))) throw new SettingsError('throttling.rateLimit', 'must be a positive number (requests per second)');
    throttling = { burstLimit: burstLimit ?? throttling.burstLimit, rateLimit: (rateLimit as number | undefined) ?? throttling.rateLimit };
  }

  const environment = isSet(raw.environment) ? raw.environment : {};
  if (!isObject(environment)) throw new SettingsError('environment', 'must be a map of variable → value');
  for (const name of Object.keys(environment)) {
    if (/^MANAGE_/.test(name)) throw new SettingsError(`environment.${name}`, 'MANAGE_* variables are set from the block\'s own keys');
  }
  const iamStatements = isSet(raw.iamStatements) ? raw.iamStatements : [];
  if (!Array.isArray(iamStatements) || !iamStatements.every(isObject)) throw new SettingsError('iamStatements', 'must be a list of IAM policy statements');
  for (const [index, statement] of iamStatements.entries()) {
    if (!statement.Effect || !statement.Action || !statement.Resource) throw new SettingsError(`iamStatements[${index}]`, 'needs Effect, Action and Resource');
  }

  const consoleSettings = parseConsole(raw.console);

  const tableName = (key: string) => {
    const name = optionalString(raw[key], key);
    if (name && !/^[a-zA-Z0-9_.-]{3,255}$/.test(name)) throw new SettingsError(key, `"${name}" is not a DynamoDB table name`);
    return name;
  };

  const settings: Settings = {
    handler,
    functionKey,
    allowList: stringList(raw.allowList, 'allowList'),
    jwt,
    jwtSingle,
    groupsClaim,
    ...(cognito ? { cognito } : {}),
    auditorGroups: stringList(raw.auditorGroups, 'auditorGroups'),
    exclusive: stringList(raw.exclusive, 'exclusive'),
    stepFunctions: raw.stepFunctions === true,
    logRetentionInDays,
    memorySize: integer(raw.memorySize, 'memorySize', 128, 10240) ?? DEFAULTS.memorySize,
    timeout,
    throttling,
    environment,
    iamStatements,
  };
  const commandGroups = groupMap(raw.commandGroups, 'commandGroups');
  const approval = groupMap(raw.approval, 'approval');
  const optional = {
    commandGroups,
    approval,
    auditHmacKey,
    maxBodyBytes: integer(raw.maxBodyBytes, 'maxBodyBytes', 1, 10 * 1024 * 1024),
    httpTimeLimitMs,
    idempotencyTtlSeconds: integer(raw.idempotencyTtlSeconds, 'idempotencyTtlSeconds', 1, 366 * 86400),
    approvalTtlSeconds: integer(raw.approvalTtlSeconds, 'approvalTtlSeconds', 1, 30 * 86400),
    auditTableName: tableName('auditTableName'),
    stateTableName: tableName('stateTableName'),
    reservedConcurrency: integer(raw.reservedConcurrency, 'reservedConcurrency', 1, 10_000),
    kmsKeyArn: stringOrIntrinsic(raw.kmsKeyArn, 'kmsKeyArn'),
    console: consoleSettings,
  };
  for (const [key, value] of Object.entries(optional)) if (value !== undefined) (settings as unknown as Raw)[key] = value;

  return settings;
}
