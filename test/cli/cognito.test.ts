/**
 * `mm` against a Cognito user-pool emulator (cognito-local, started on
 * loopback) and the real `manage` handler trusting that pool's tokens:
 * USER_PASSWORD_AUTH, REFRESH_TOKEN_AUTH for access- and ID-token profiles,
 * NEW_PASSWORD_REQUIRED (headless and on a terminal, typed twice), app clients
 * with a secret (SECRET_HASH), and the AWS SDK's endpoint variables.
 *
 * The handler trusts the pool as a generic OIDC issuer with the app client as
 * audience and `MANAGE_JWT_TOKEN_USE=id`: an ID token passes, an access token
 * does not (it has no `aud` and says `token_use: access`). That is the setting
 * of a server run with MANAGE_COGNITO_TOKEN_USE=id, and what made the old
 * refresh fail: it cached the access token for a `--token-use id` profile.
 * A second handler on the same stack takes access tokens (`client_id` +
 * `token_use: access`), for the access-token profile's sign-in and refresh.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStack, type TestStack } from '../support/stack.js';
import { serveHandler, type ServedHandler } from '../support/http-server.js';
import { buildCli, makeHome, mm as runMm, writeConfig, type MmOptions, type MmResult } from './helpers.js';
import { startCognitoLocal, type CognitoLocal, type Pool } from './cognito-local.js';
import { secretHash } from '../../cli/auth/cognito.js';

const T = { timeout: 60_000 };
const PASSWORD = 'Correct-horse-battery-1';
const TEMPORARY = 'Temporary-pass-0001';
const NEW_PASSWORD = 'Brand-new-password-2';
const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
/** An independent SECRET_HASH, as the AWS documentation defines it. */
const expectedHash = (secret: string, username: string, clientId: string) => createHmac('sha256', secret).update(`${username}${clientId}`).digest('base64');

describe('SECRET_HASH', () => {
  test('matches a known HMAC-SHA256 vector (RFC 4231 test case 2, split into username + client id)', () => {
    // HMAC-SHA256(key "Jefe", "what do ya want for nothing?") = 5bdcc146…ec3843 (RFC 4231 §4.3).
    const hex = '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843';
    assert.equal(secretHash('Jefe', 'what do ya want ', 'for nothing?'), Buffer.from(hex, 'hex').toString('base64'));
  });
});

describe('mm against cognito-local', { timeout: 300_000 }, () => {
  let cognito: CognitoLocal;
  let pool: Pool;
  let secretPool: Pool;
  let stack: TestStack;
  let served: ServedHandler;
  /** The same stack trusting the pool's access tokens (`client_id` + `token_use: access`), as MANAGE_COGNITO_TOKEN_USE=access would. */
  let accessServed: ServedHandler;
  const home = makeHome();
  const outputs: MmResult[] = [];
  const secrets = new Set<string>([PASSWORD, TEMPORARY, NEW_PASSWORD]);

  const mm = async (args: string[], options: MmOptions = {}) => {
    const result = await runMm(args, { timeoutMs: 30_000, ...options, env: { HOME: home.home, MM_CONFIG_DIR: home.configDir, ...options.env } });
    outputs.push(result);
    return result;
  };
  const cacheFile = (profile: string) => join(home.configDir, 'tokens', `${profile}.json`);
  const readCacheFile = (profile: string) => {
    const entry = JSON.parse(readFileSync(cacheFile(profile), 'utf8'));
    secrets.add(entry.accessToken);
    if (entry.refreshToken) secrets.add(entry.refreshToken);
    return entry;
  };
  const expireCache = (profile: string) => writeFileSync(cacheFile(profile), JSON.stringify({ ...readCacheFile(profile), expiresAt: Date.now() - 1000 }));
  const callsOf = (target: string, since = 0) => cognito.calls.slice(since).filter((c) => c.target === target);

  before(async () => {
    buildCli();
    cognito = await startCognitoLocal();
    pool = await cognito.createPool();
    secretPool = await cognito.createPool({ secret: true });
    secrets.add(secretPool.clientSecret!);
    await cognito.createUser(pool, 'carol', PASSWORD, { groups: ['ops'] });
    await cognito.createUser(pool, 'erin', TEMPORARY, { temporary: true });
    await cognito.createUser(pool, 'frank', TEMPORARY, { temporary: true });
    await cognito.createUser(pool, 'gina', TEMPORARY, { temporary: true });
    await cognito.createUser(secretPool, 'dave', TEMPORARY, { temporary: true });
    stack = await startStack({
      env: { MANAGE_JWT_ISSUER: pool.issuer, MANAGE_JWT_AUDIENCE: pool.clientId, MANAGE_JWT_JWKS_URI: pool.jwksUri, MANAGE_JWT_TOKEN_USE: 'id' },
    });
    served = await serveHandler(stack.handler);
    accessServed = await serveHandler(stack.withEnv({ MANAGE_JWT_TOKEN_USE: 'access' }).handler);
    const cognitoAuth = { method: 'cognito', region: 'eu-west-1', clientId: pool.clientId, endpoint: cognito.endpoint };
    writeConfig(home.configDir, {
      profiles: {
        id: { url: served.url, auth: { ...cognitoAuth, username: 'carol', tokenUse: 'id' } },
        access: { url: served.url, auth: { ...cognitoAuth, username: 'carol' } },
        'access-ok': { url: '', auth: { ...cognitoAuth, username: 'carol' } },
        erin: { url: served.url, auth: { ...cognitoAuth, username: 'erin', tokenUse: 'id' } },
        frank: { url: served.url, auth: { ...cognitoAuth, username: 'frank', tokenUse: 'id' } },
        gina: { url: served.url, auth: { ...cognitoAuth, username: 'gina', tokenUse: 'id' } },
        nowhere: { url: served.url, auth: { method: 'cognito', region: 'eu-west-1', clientId: pool.clientId, username: 'carol', tokenUse: 'id' } },
      },
    });
  });

  after(async () => {
    await Promise.all([served?.close(), accessServed?.close()]);
    await stack?.close();
    await cognito?.close();
    home.cleanup();
  });

  test('password sign-in greets the user and runs a command with the ID token', T, async () => {
    const login = await mm(['login', '--profile', 'id'], { env: { MM_PASSWORD: PASSWORD } });
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /Signed in as carol \(profile id\)/);
    assert.equal(statSync(cacheFile('id')).mode & 0o777, 0o600);
    assert.equal(claimsOf(readCacheFile('id').accessToken).token_use, 'id');
    const run = await mm(['--profile', 'id', 'run', 'echo', 'message=from-cognito', '--json']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(JSON.parse(run.stdout).result.message, 'from-cognito');
  });

  test('--token-use id: the refresh caches the ID token again and keeps the refresh token (the old code cached the access token, got 401 and deleted the cache)', T, async () => {
    const before = readCacheFile('id');
    assert.ok(before.refreshToken, 'a refresh token was cached');
    expireCache('id');
    const since = cognito.calls.length;
    // No password in the environment and no terminal: only the refresh token can sign this run in.
    const run = await mm(['--profile', 'id', 'run', 'noop']);
    assert.equal(run.code, 0, `exit ${run.code}: ${run.stderr}`);
    assert.deepEqual(
      callsOf('InitiateAuth', since).map((c) => c.body.AuthFlow),
      ['REFRESH_TOKEN_AUTH'],
    );
    const after = readCacheFile('id');
    assert.equal(claimsOf(after.accessToken).token_use, 'id', 'the ID token is cached at refresh');
    assert.notEqual(after.accessToken, before.accessToken);
    assert.equal(after.refreshToken, before.refreshToken, 'the refresh token is kept');
    // And the next run uses the cache as is.
    const again = await mm(['--profile', 'id', 'run', 'noop']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(callsOf('InitiateAuth', since).length, 1);
  });

  test('access-token profile: sign-in and refresh cache the access token; the server refuses it with a message naming --token-use, and no new sign-in starts', T, async () => {
    const login = await mm(['login', '--profile', 'access'], { env: { MM_PASSWORD: PASSWORD } });
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /Signed in as carol/);
    const first = readCacheFile('access');
    assert.equal(claimsOf(first.accessToken).token_use, 'access');
    expireCache('access');
    const since = cognito.calls.length;
    const token = await mm(['--profile', 'access', 'token']);
    assert.equal(token.code, 0, token.stderr);
    assert.deepEqual(callsOf('InitiateAuth', since).map((c) => c.body.AuthFlow), ['REFRESH_TOKEN_AUTH']);
    const refreshed = readCacheFile('access');
    assert.equal(claimsOf(refreshed.accessToken).token_use, 'access');
    assert.equal(token.stdout.trim(), refreshed.accessToken);

    // This server wants ID tokens: 401. mm refreshes once (no prompt, no password), then explains.
    const refused = await mm(['--profile', 'access', 'run', 'noop'], { env: { MM_PASSWORD: PASSWORD } });
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /refused the token of profile access: a JWT .*token_use access/);
    assert.match(refused.stderr, /--token-use/);
    assert.doesNotMatch(refused.stderr, /Sign in again/);
    assert.equal(callsOf('InitiateAuth', since).filter((c) => c.body.AuthFlow === 'USER_PASSWORD_AUTH').length, 0, 'no password sign-in to replace a refused token');
    assert.ok(readCacheFile('access').refreshToken, 'the refresh token survives a refusal');
  });

  test('access-token profile against a stage that takes access tokens: sign-in, run, refresh, run', T, async () => {
    const config = JSON.parse(readFileSync(join(home.configDir, 'config.json'), 'utf8'));
    config.profiles['access-ok'].url = accessServed.url;
    writeConfig(home.configDir, config);
    assert.equal((await mm(['login', '--profile', 'access-ok'], { env: { MM_PASSWORD: PASSWORD } })).code, 0);
    const run = await mm(['--profile', 'access-ok', 'run', 'echo', 'message=with-access', '--json']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const first = readCacheFile('access-ok');
    expireCache('access-ok');
    const since = cognito.calls.length;
    const again = await mm(['--profile', 'access-ok', 'run', 'noop']);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(callsOf('InitiateAuth', since).map((c) => c.body.AuthFlow), ['REFRESH_TOKEN_AUTH']);
    const refreshed = readCacheFile('access-ok');
    assert.equal(claimsOf(refreshed.accessToken).token_use, 'access');
    assert.notEqual(refreshed.accessToken, first.accessToken);
    assert.equal(refreshed.refreshToken, first.refreshToken);
    const list = await mm(['--profile', 'access-ok', 'executions', '--json']);
    assert.deepEqual(JSON.parse(list.stdout).executions[0].actor.groups, ['ops']);
  });

  test('NEW_PASSWORD_REQUIRED without a terminal: refused with the headless options named; --new-password-from-env and MM_NEW_PASSWORD answer it', T, async () => {
    const stuck = await mm(['login', '--profile', 'erin'], { env: { MM_PASSWORD: TEMPORARY } });
    assert.equal(stuck.code, 3);
    assert.match(stuck.stderr, /requires a new password for erin.*--new-password-from-env VAR.*MM_NEW_PASSWORD/);
    const unset = await mm(['login', '--profile', 'erin', '--new-password-from-env', 'ERIN_NEW'], { env: { MM_PASSWORD: TEMPORARY } });
    assert.equal(unset.code, 3);
    assert.match(unset.stderr, /ERIN_NEW \(--new-password-from-env\) is not set/);

    const since = cognito.calls.length;
    const headless = await mm(['login', '--profile', 'erin', '--new-password-from-env', 'ERIN_NEW'], { env: { MM_PASSWORD: TEMPORARY, ERIN_NEW: NEW_PASSWORD } });
    assert.equal(headless.code, 0, headless.stderr);
    assert.match(headless.stdout, /Signed in as erin/);
    const answer = callsOf('RespondToAuthChallenge', since);
    assert.equal(answer.length, 1);
    assert.equal(answer[0]!.body.ChallengeName, 'NEW_PASSWORD_REQUIRED');
    assert.equal(answer[0]!.body.ChallengeResponses.NEW_PASSWORD, NEW_PASSWORD);
    assert.equal(answer[0]!.body.ChallengeResponses.USERNAME, 'erin');
    // The new password is now the password, and the token works.
    assert.equal((await mm(['login', '--profile', 'erin'], { env: { MM_PASSWORD: NEW_PASSWORD } })).code, 0);
    assert.equal((await mm(['--profile', 'erin', 'run', 'noop'])).code, 0);

    const viaEnv = await mm(['login', '--profile', 'frank'], { env: { MM_PASSWORD: TEMPORARY, MM_NEW_PASSWORD: NEW_PASSWORD } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.equal((await mm(['login', '--profile', 'frank'], { env: { MM_PASSWORD: NEW_PASSWORD } })).code, 0);
  });

  test('NEW_PASSWORD_REQUIRED on a terminal: typed twice; a mismatch asks again', { ...T, skip: !hasScript && 'util-linux script is not installed' }, async () => {
    const since = cognito.calls.length;
    const session = await onTerminal(['login', '--profile', 'gina'], { HOME: home.home, MM_CONFIG_DIR: home.configDir, MM_PASSWORD: TEMPORARY }, [
      [(o) => o.includes('choose one'), `${NEW_PASSWORD}\r`],
      [(o) => o.includes('Type the new password again'), 'something-else-entirely\r'],
      [(o) => o.includes('differ; try again'), `${NEW_PASSWORD}\r`],
      [(o) => o.slice(o.indexOf('differ; try again')).includes('Type the new password again'), `${NEW_PASSWORD}\r`],
    ]);
    outputs.push({ code: session.code, stdout: session.output, stderr: '', ms: 0 });
    assert.equal(session.code, 0, session.output);
    assert.match(session.output, /The two passwords differ; try again/);
    assert.match(session.output, /Signed in as gina/);
    const answer = callsOf('RespondToAuthChallenge', since);
    assert.equal(answer.length, 1, 'one challenge answer, after the confirmation matched');
    assert.equal(answer[0]!.body.ChallengeResponses.NEW_PASSWORD, NEW_PASSWORD);
  });

  test('app client with a secret: SECRET_HASH on USER_PASSWORD_AUTH, the NEW_PASSWORD_REQUIRED answer and REFRESH_TOKEN_AUTH; the secret is stored 0600 outside config.json', T, async () => {
    const configure = await mm(
      ['configure', '--profile', 'secret', '--url', served.url, '--auth', 'cognito', '--region', 'eu-west-1', '--client-id', secretPool.clientId, '--username', 'dave', '--cognito-endpoint', cognito.endpoint, '--client-secret', '-'],
      { input: `${secretPool.clientSecret}\n` },
    );
    assert.equal(configure.code, 0, configure.stderr);
    assert.match(configure.stdout, /client secret stored/);
    const configText = readFileSync(join(home.configDir, 'config.json'), 'utf8');
    assert.ok(!configText.includes(secretPool.clientSecret!), 'config.json holds no secret');
    assert.equal(JSON.parse(configText).profiles.secret.auth.endpoint, cognito.endpoint, '--cognito-endpoint is stored');
    const secretFile = join(home.configDir, 'secrets', 'secret.json');
    assert.equal(statSync(secretFile).mode & 0o777, 0o600);
    assert.equal(statSync(join(home.configDir, 'secrets')).mode & 0o777, 0o700);

    const since = cognito.calls.length;
    const login = await mm(['login', '--profile', 'secret'], { env: { MM_PASSWORD: TEMPORARY, MM_NEW_PASSWORD: NEW_PASSWORD } });
    assert.equal(login.code, 0, login.stderr);
    const hash = expectedHash(secretPool.clientSecret!, 'dave', secretPool.clientId);
    const [initiate] = callsOf('InitiateAuth', since);
    assert.equal(initiate!.body.AuthParameters.SECRET_HASH, hash);
    const [respond] = callsOf('RespondToAuthChallenge', since);
    assert.equal(respond!.body.ChallengeResponses.SECRET_HASH, hash);

    // Refresh: SECRET_HASH with the Cognito username the access token names. (cognito-local remembers only
    // refresh tokens of a password sign-in, not of a challenge answer: sign in once more first.)
    assert.equal((await mm(['login', '--profile', 'secret'], { env: { MM_PASSWORD: NEW_PASSWORD } })).code, 0);
    const cached = readCacheFile('secret');
    assert.equal(cached.username, 'dave');
    expireCache('secret');
    const refresh = await mm(['--profile', 'secret', 'token']);
    assert.equal(refresh.code, 0, refresh.stderr);
    const [refreshCall] = callsOf('InitiateAuth', since).filter((c) => c.body.AuthFlow === 'REFRESH_TOKEN_AUTH');
    assert.equal(refreshCall!.body.AuthParameters.SECRET_HASH, hash);

    // MM_CLIENT_SECRET wins over the stored one.
    const other = 'another-client-secret-value';
    secrets.add(other);
    const before = cognito.calls.length;
    assert.equal((await mm(['login', '--profile', 'secret'], { env: { MM_PASSWORD: NEW_PASSWORD, MM_CLIENT_SECRET: other } })).code, 0);
    assert.equal(callsOf('InitiateAuth', before)[0]!.body.AuthParameters.SECRET_HASH, expectedHash(other, 'dave', secretPool.clientId));
    // `--client-secret ""` removes it.
    assert.equal((await mm(['configure', '--profile', 'secret', '--url', served.url, '--auth', 'cognito', '--client-secret', ''])).code, 0);
    assert.ok(!existsSync(secretFile));
  });

  test('AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER, then AWS_ENDPOINT_URL, over the profile; AWS_IGNORE_CONFIGURED_ENDPOINT_URLS', T, async () => {
    const dead = 'http://127.0.0.1:9'; // discard port: nothing listens
    const viaService = await mm(['login', '--profile', 'nowhere'], {
      env: { MM_PASSWORD: PASSWORD, AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: cognito.endpoint, AWS_ENDPOINT_URL: dead },
    });
    assert.equal(viaService.code, 0, viaService.stderr);
    const viaGlobal = await mm(['login', '--profile', 'nowhere'], { env: { MM_PASSWORD: PASSWORD, AWS_ENDPOINT_URL: cognito.endpoint } });
    assert.equal(viaGlobal.code, 0, viaGlobal.stderr);
    // The environment wins over the profile's endpoint, as in the AWS SDK.
    const overProfile = await mm(['login', '--profile', 'id'], { env: { MM_PASSWORD: PASSWORD, AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: dead } });
    assert.equal(overProfile.code, 7);
    assert.match(overProfile.stderr, /Cannot reach http:\/\/127\.0\.0\.1:9/);
    const ignored = await mm(['login', '--profile', 'id'], {
      env: { MM_PASSWORD: PASSWORD, AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER: dead, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true', MM_INSECURE_HTTP: undefined },
    });
    // Ignoring configured endpoints means the regional one: not reachable from the tests, but not the dead port either.
    assert.doesNotMatch(ignored.stderr, /127\.0\.0\.1:9\b/);
    // An http endpoint that is not loopback is refused (a password must not cross a network in clear).
    const clear = await mm(['login', '--profile', 'nowhere'], { env: { MM_PASSWORD: PASSWORD, AWS_ENDPOINT_URL: 'http://cognito.example.com' } });
    assert.equal(clear.code, 2);
    assert.match(clear.stderr, /AWS_ENDPOINT_URL.*|Refusing to send credentials over plain HTTP/);
  });

  test('no output holds a token, a refresh token, a password or the client secret', () => {
    assert.ok(outputs.length >= 20);
    for (const output of outputs) {
      for (const secret of secrets) {
        assert.ok(!output.stdout.includes(secret) || output.stdout.trim() === secret, `a secret leaked:\n${output.stdout}\n${output.stderr}`);
        assert.ok(!output.stderr.includes(secret), `a secret leaked:\n${output.stderr}`);
      }
    }
  });
});

/** Runs the CLI on a pseudo-terminal (util-linux `script`); each step types its keys once the output so far matches. */
function onTerminal(args: string[], env: Record<string, string>, steps: [(plainOutput: string) => boolean, string][]): Promise<{ code: number | null; output: string }> {
  const entry = buildCli();
  const command = `stty cols 100 rows 40; exec ${JSON.stringify(process.execPath)} ${JSON.stringify(entry)} ${args.map((a) => `'${a}'`).join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TERM: 'xterm-256color', NO_COLOR: '1', ...env } });
    let output = '';
    let step = 0;
    const onData = (chunk: string) => {
      output += chunk;
      // eslint-disable-next-line no-control-regex
      const plain = output.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
      if (step < steps.length && steps[step]![0](plain)) {
        const keys = steps[step]![1];
        step++;
        setTimeout(() => child.stdin.write(keys), 150);
      }
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', onData);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no end on the terminal (step ${step}): ${output}`));
    }, 45_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
