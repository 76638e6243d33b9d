/**
 * The token attack matrix (issue 6): one test per attack. Each one asserts that
 * the answer is 401 with `WWW-Authenticate: Bearer` and byte for byte the same
 * body and headers as every other 401 (no reason revealed), that the command
 * did not run (a test command counts its runs), and that nothing was written
 * to the audit table (the table's item count does not move).
 *
 * Real keys are generated per run; JWKS documents are served on loopback or by
 * an in-memory fetcher (Cognito): nothing reaches the network.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import type { Fetcher } from 'aws-jwt-verify/https';
import { UNAUTHORIZED_MESSAGE } from '../../src/errors.js';
import { serveHandler } from '../support/http-server.js';
import { lambdaContext, startStack, type HttpCall, type TestStack } from '../support/stack.js';
import { UNAUTHORIZED_BODY, countItems, sideEffectCommand, within } from './support.js';
import { b64u, extendSignature, flipSignatureBit, parts, replaceSignature, signRaw, truncateSignature } from './tokens.js';

const POOL = 'us-east-1_SecTestPool';
const COGNITO_ISSUER = `https://cognito-idp.us-east-1.amazonaws.com/${POOL}`;
const COGNITO_JWKS = `${COGNITO_ISSUER}/.well-known/jwks.json`;
const CLIENT_ID = 'sec-app-client';

const touch = sideEffectCommand();
let stack: TestStack;
let cognito: TestStack;
let cognitoIdUse: TestStack;
let attacker: { privateKey: CryptoKey; publicJwk: JWK; es: { privateKey: CryptoKey; publicJwk: JWK } };
let attackerServer: { url: string; hits: () => number; close: () => Promise<void> };
let referenceHeaders: Record<string, string>;
const cognitoFetches: string[] = [];

const now = () => Math.floor(Date.now() / 1000);

before(async () => {
  stack = await startStack({ commands: { touch: touch.loader } });
  const fetcher: Fetcher = {
    async fetch(uri) {
      cognitoFetches.push(uri);
      if (uri === COGNITO_JWKS) return new TextEncoder().encode(JSON.stringify(stack.issuer.jwks)).buffer as ArrayBuffer;
      throw new Error(`network disabled in tests: ${uri}`);
    },
  };
  const cognitoEnv = {
    MANAGE_JWT_ISSUER: undefined,
    MANAGE_JWT_AUDIENCE: undefined,
    MANAGE_COGNITO_USER_POOL_ID: POOL,
    MANAGE_COGNITO_CLIENT_ID: CLIENT_ID,
  };
  cognito = stack.withEnv(cognitoEnv, { jwksFetcher: fetcher });
  cognitoIdUse = stack.withEnv({ ...cognitoEnv, MANAGE_COGNITO_TOKEN_USE: 'id' }, { jwksFetcher: fetcher });

  const rsa = await generateKeyPair('RS256', { extractable: true });
  const ec = await generateKeyPair('ES256', { extractable: true });
  attacker = {
    privateKey: rsa.privateKey,
    publicJwk: { ...(await exportJWK(rsa.publicKey)), kid: 'attacker-rsa', alg: 'RS256', use: 'sig' },
    es: { privateKey: ec.privateKey, publicJwk: { ...(await exportJWK(ec.publicKey)), kid: 'attacker-ec', alg: 'ES256', use: 'sig' } },
  };
  attackerServer = await startAttackerServer({ keys: [attacker.publicJwk, attacker.es.publicJwk] });

  // The reference 401: no token at all. Every other refusal must look exactly like it.
  const reference = await post({});
  assert.equal(reference.status, 401);
  referenceHeaders = reference.headers;
});

after(async () => {
  await Promise.all([stack.close(), attackerServer.close()]);
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  raw: string;
}

/** POSTs to the side-effect command through the handler, as API Gateway would. */
async function post(call: Omit<HttpCall, 'path'>, target: TestStack = stack): Promise<Answer> {
  const response = await target.http({ path: '/__manage__/touch', body: { data: { label: 'attack' } }, ...call });
  return { status: response.status, headers: response.headers, raw: response.raw };
}

async function raw(event: unknown, target: TestStack = stack): Promise<Answer> {
  const response: any = await target.handler(event as never, lambdaContext(30_000));
  return { status: response.statusCode, headers: response.headers, raw: response.body };
}

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

/** Runs the attack and checks everything a refusal must be. */
async function refused(attack: () => Promise<Answer>, target: TestStack = stack): Promise<void> {
  const runsBefore = touch.runs.length;
  const itemsBefore = await countItems(stack.dynamo);
  const answer = await within(10_000, 'the attack', attack());
  assert.equal(answer.status, 401, `status ${answer.status}: ${answer.raw}`);
  assert.equal(answer.headers['www-authenticate'], 'Bearer');
  assert.equal(answer.raw, UNAUTHORIZED_BODY, 'the body is the one generic 401 body');
  assert.deepEqual(answer.headers, referenceHeaders, 'the headers are those of every 401');
  assert.equal(JSON.parse(answer.raw).error.message, UNAUTHORIZED_MESSAGE);
  assert.equal(touch.runs.length, runsBefore, 'the command did not run');
  assert.equal(await countItems(target.dynamo), itemsBefore, 'nothing was written to the audit');
}

describe('control: the matrix is not vacuous', () => {
  it('a valid RS256 and a valid ES256 token run the command and write the audit', async () => {
    for (const alg of ['RS256', 'ES256'] as const) {
      const runsBefore = touch.runs.length;
      const itemsBefore = await countItems(stack.dynamo);
      const answer = await post(bearer(await stack.issuer.sign({}, { alg })));
      assert.equal(answer.status, 200, answer.raw);
      assert.equal(touch.runs.length, runsBefore + 1);
      assert.ok((await countItems(stack.dynamo)) > itemsBefore);
    }
  });

  it('a valid Cognito access token (and an id token where id tokens are expected) is accepted', async () => {
    assert.equal((await post(bearer(await cognitoToken()), cognito)).status, 200);
    assert.equal((await post(bearer(await cognitoToken({ token_use: 'id', aud: CLIENT_ID, client_id: undefined })), cognitoIdUse)).status, 200);
  });
});

describe('no usable Authorization header', () => {
  it('no token', () => refused(() => post({})));

  it('Bearer with nothing after it', async () => {
    for (const authorization of ['Bearer', 'Bearer ', 'Bearer    ', 'bearer']) {
      await refused(() => post({ headers: { authorization } }));
    }
  });

  it('another scheme (Basic, Token, a bare JWT)', async () => {
    const token = await stack.issuer.sign();
    for (const authorization of [`Basic ${Buffer.from('alice:pw').toString('base64')}`, `Token ${token}`, token, `Bearer: ${token}`]) {
      await refused(() => post({ headers: { authorization } }));
    }
  });

  it('a valid token in the query string or a cookie is not a bearer token', async () => {
    const token = await stack.issuer.sign();
    await refused(() => post({ query: { access_token: token } }));
    await refused(() => post({ headers: { cookie: `access_token=${token}`, 'x-amz-security-token': token } }));
  });
});

describe('two tokens', () => {
  it('two Authorization headers over real HTTP', async () => {
    const served = await serveHandler(stack.handler);
    try {
      const [a, b] = [await stack.issuer.sign(), await stack.issuer.sign({ sub: 'bob' })];
      await refused(() => httpPost(served.url, ['Bearer ' + a, 'Bearer ' + b]));
      // Even the same valid token twice.
      await refused(() => httpPost(served.url, ['Bearer ' + a, 'Bearer ' + a]));
    } finally {
      await served.close();
    }
  });

  it('two tokens comma-joined in one header (as API Gateway joins repeated headers)', async () => {
    const token = await stack.issuer.sign();
    for (const authorization of [`Bearer ${token},Bearer ${token}`, `Bearer ${token}, Bearer ${token}`, `Bearer ${token},`]) {
      await refused(() => post({ headers: { authorization } }));
    }
  });

  it('two tokens in one header separated by a space', async () => {
    const token = await stack.issuer.sign();
    await refused(() => post({ headers: { authorization: `Bearer ${token} ${token}` } }));
    await refused(() => post({ headers: { authorization: `Bearer ${token} Bearer ${token}` } }));
  });

  it('two Authorization values in a REST (v1) event', async () => {
    const token = await stack.issuer.sign();
    const event = {
      httpMethod: 'POST',
      path: '/__manage__/touch',
      headers: { Authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      multiValueHeaders: { Authorization: [`Bearer ${token}`, `Bearer ${token}`] },
      body: JSON.stringify({ data: { label: 'v1' } }),
      isBase64Encoded: false,
      requestContext: { requestId: 'r', identity: { sourceIp: '198.51.100.9' } },
    };
    await refused(() => raw(event));
  });

  it('[BUG reproduction] Authorization and authorization as two header names of one v1 event', async () => {
    const token = await stack.issuer.sign();
    const other = await stack.issuer.sign({ sub: 'bob' });
    const event = {
      httpMethod: 'POST',
      path: '/__manage__/touch',
      headers: { Authorization: `Bearer ${token}`, authorization: `Bearer ${other}` },
      multiValueHeaders: { Authorization: [`Bearer ${token}`], authorization: [`Bearer ${other}`] },
      body: '{}',
      requestContext: { requestId: 'r', identity: { sourceIp: '198.51.100.9' } },
    };
    await refused(() => raw(event));
  });
});

describe('algorithm attacks', () => {
  it('alg: none (any spelling, with or without a signature)', async () => {
    const claims = { iss: stack.issuer.issuer, aud: stack.issuer.audience, sub: 'mallory', exp: now() + 300 };
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const unsigned = `${b64u({ alg, typ: 'JWT' })}.${b64u(claims)}.`;
      await refused(() => post(bearer(unsigned)));
      await refused(() => post({ headers: { authorization: `Bearer ${unsigned}` } }));
      const withKid = `${b64u({ alg, kid: stack.issuer.keys.RS256.kid })}.${b64u(claims)}.${b64u('sig')}`;
      await refused(() => post(bearer(withKid)));
    }
  });

  it('HS256 signed with the public key as the secret', async () => {
    const { kid, publicJwk } = stack.issuer.keys.RS256;
    const publicKey = await (await import('jose')).importJWK(publicJwk, 'RS256');
    const pem = await exportSPKI(publicKey as CryptoKey);
    const claims = { iss: stack.issuer.issuer, aud: stack.issuer.audience, sub: 'mallory', exp: now() + 300 };
    for (const secret of [pem, pem.trim(), JSON.stringify(publicJwk), publicJwk.n!]) {
      for (const alg of ['HS256', 'HS384', 'HS512']) {
        const token = await new SignJWT(claims).setProtectedHeader({ alg, kid }).sign(new TextEncoder().encode(secret));
        await refused(() => post(bearer(token)));
      }
    }
  });

  it('the header names an algorithm other than the key’s (RS256 key, PS256/RS512/ES256 header)', async () => {
    const claims = { iss: stack.issuer.issuer, aud: stack.issuer.audience, sub: 'mallory', exp: now() + 300 };
    const { kid, privateKey } = stack.issuer.keys.RS256;
    for (const alg of ['RS512', 'PS256', 'ES256', 'EdDSA']) {
      const token = await signRaw({ alg, kid }, claims, privateKey, 'RS256');
      await refused(() => post(bearer(token)));
    }
  });
});

describe('key confusion', () => {
  it('RS256 signed by another key that claims the known kid', async () => {
    const token = await stack.issuer.sign({ sub: 'mallory' }, { privateKey: attacker.privateKey });
    await refused(() => post(bearer(token)));
  });

  it('ES256 signed by another key that claims the known kid', async () => {
    const token = await stack.issuer.sign({ sub: 'mallory' }, { alg: 'ES256', privateKey: attacker.es.privateKey });
    await refused(() => post(bearer(token)));
  });

  it('unknown kid (signed by a real key), no kid, and a kid that is not a string', async () => {
    await refused(async () => post(bearer(await stack.issuer.sign({}, { kid: 'no-such-key' }))));
    const claims = { iss: stack.issuer.issuer, aud: stack.issuer.audience, sub: 'mallory', exp: now() + 300 };
    const key = stack.issuer.keys.RS256.privateKey;
    for (const header of [{ alg: 'RS256' }, { alg: 'RS256', kid: 42 }, { alg: 'RS256', kid: [stack.issuer.keys.RS256.kid] }, { alg: 'RS256', kid: '../../etc/passwd' }]) {
      const token = await signRaw(header, claims, key);
      await refused(() => post(bearer(token)));
    }
  });

  it('jku header pointing at an attacker JWKS: never fetched, refused', async () => {
    const hits = attackerServer.hits();
    for (const kid of ['attacker-rsa', stack.issuer.keys.RS256.kid]) {
      const token = await stack.issuer.sign(
        { sub: 'mallory' },
        { kid, privateKey: attacker.privateKey, header: { jku: `${attackerServer.url}/jwks.json` } },
      );
      await refused(() => post(bearer(token)));
    }
    assert.equal(attackerServer.hits(), hits, 'the jku URL was not fetched');
  });

  it('x5u header pointing elsewhere, and an x5c chain: never fetched, refused', async () => {
    const hits = attackerServer.hits();
    const token = await stack.issuer.sign(
      { sub: 'mallory' },
      { kid: 'attacker-rsa', privateKey: attacker.privateKey, header: { x5u: `${attackerServer.url}/cert.pem` } },
    );
    await refused(() => post(bearer(token)));
    const x5c = await stack.issuer.sign(
      { sub: 'mallory' },
      { privateKey: attacker.privateKey, header: { x5c: [Buffer.from('not a certificate').toString('base64')] } },
    );
    await refused(() => post(bearer(x5c)));
    assert.equal(attackerServer.hits(), hits, 'the x5u URL was not fetched');
  });

  it('jwk header embedding the attacker’s own public key (RS256 and ES256)', async () => {
    for (const kid of [attacker.publicJwk.kid!, stack.issuer.keys.RS256.kid]) {
      const token = await stack.issuer.sign({ sub: 'mallory' }, { kid, privateKey: attacker.privateKey, header: { jwk: { ...attacker.publicJwk, kid } } });
      await refused(() => post(bearer(token)));
    }
    const es = await stack.issuer.sign(
      { sub: 'mallory' },
      { alg: 'ES256', privateKey: attacker.es.privateKey, header: { jwk: { ...attacker.es.publicJwk, kid: stack.issuer.keys.ES256.kid } } },
    );
    await refused(() => post(bearer(es)));
  });
});

describe('claims', () => {
  it('expired', async () => {
    await refused(async () => post(bearer(await stack.issuer.sign({ exp: now() - 5 }))));
    await refused(async () => post(bearer(await stack.issuer.sign({ exp: now() - 86_400 * 365 }))));
  });

  it('exp missing', () => refused(async () => post(bearer(await stack.issuer.sign({}, { expiresIn: null })))));

  it('exp that is not a number (string, null, huge, NaN-like)', async () => {
    const claims = { iss: stack.issuer.issuer, aud: stack.issuer.audience, sub: 'mallory' };
    const key = stack.issuer.keys.RS256;
    for (const exp of [String(now() + 300), null, true, [now() + 300], { value: now() + 300 }]) {
      const token = await signRaw({ alg: 'RS256', kid: key.kid }, { ...claims, exp }, key.privateKey);
      await refused(() => post(bearer(token)));
    }
    // 1e999 in JSON is Infinity once parsed: not a finite expiry.
    const infinite = await signRaw({ alg: 'RS256', kid: key.kid }, Buffer.from(`{"iss":${JSON.stringify(claims.iss)},"aud":"${claims.aud}","sub":"m","exp":1e999}`), key.privateKey);
    await refused(() => post(bearer(infinite)));
  });

  it('nbf in the future', () => refused(async () => post(bearer(await stack.issuer.sign({ nbf: now() + 600 })))));

  it('wrong issuer (another URL, a trailing slash, a case change, missing)', async () => {
    const iss = stack.issuer.issuer;
    for (const wrong of ['https://evil.example', `${iss}/`, iss.toUpperCase(), `${iss}/extra`, undefined]) {
      await refused(async () => post(bearer(await stack.issuer.sign({ iss: wrong }))));
    }
  });

  it('wrong audience (another, missing, a list without ours)', async () => {
    for (const aud of ['someone-else', undefined, ['a', 'b'], '', 'MM-TEST']) {
      await refused(async () => post(bearer(await stack.issuer.sign({ aud }))));
    }
  });

  it('sub missing or empty', async () => {
    await refused(async () => post(bearer(await stack.issuer.sign({ sub: undefined }))));
    await refused(async () => post(bearer(await stack.issuer.sign({ sub: '' }))));
  });

  it('a validly signed payload that is not a JSON object', async () => {
    const key = stack.issuer.keys.RS256;
    for (const payload of ['[]', 'null', '"alice"', '42', '{"iss":']) {
      const token = await signRaw({ alg: 'RS256', kid: key.kid }, Buffer.from(payload), key.privateKey);
      await refused(() => post(bearer(token)));
    }
  });
});

describe('Cognito', () => {
  it('an id token where access tokens are expected', () =>
    refused(async () => post(bearer(await cognitoToken({ token_use: 'id', aud: CLIENT_ID, client_id: undefined })), cognito), cognito));

  it('an access token where id tokens are expected', () =>
    refused(async () => post(bearer(await cognitoToken()), cognitoIdUse), cognitoIdUse));

  it('wrong client_id (access token) and wrong aud (id token)', async () => {
    await refused(async () => post(bearer(await cognitoToken({ client_id: 'other-client' })), cognito), cognito);
    await refused(async () => post(bearer(await cognitoToken({ client_id: undefined })), cognito), cognito);
    await refused(
      async () => post(bearer(await cognitoToken({ token_use: 'id', aud: 'other-client', client_id: undefined })), cognitoIdUse),
      cognitoIdUse,
    );
  });

  it('token_use missing or unknown', async () => {
    for (const token_use of [undefined, 'refresh', 'ACCESS']) {
      await refused(async () => post(bearer(await cognitoToken({ token_use })), cognito), cognito);
    }
  });

  it('another user pool of the same region, and the OIDC test issuer’s own token', async () => {
    await refused(async () => post(bearer(await cognitoToken({ iss: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other' })), cognito), cognito);
    await refused(async () => post(bearer(await stack.issuer.sign()), cognito), cognito);
    assert.ok(cognitoFetches.every((uri) => uri === COGNITO_JWKS), `fetched only the pool's JWKS: ${cognitoFetches.join(', ')}`);
  });
});

describe('signatures', () => {
  for (const alg of ['RS256', 'ES256'] as const) {
    it(`${alg}: truncated signature (by one byte, by half, emptied)`, async () => {
      const token = await stack.issuer.sign({}, { alg });
      const signatureBytes = Buffer.from(parts(token)[2], 'base64url').length;
      for (const cut of [1, Math.floor(signatureBytes / 2), signatureBytes]) {
        await refused(() => post(bearer(truncateSignature(token, cut))));
      }
      const [h, p] = parts(token);
      await refused(() => post({ headers: { authorization: `Bearer ${h}.${p}.` } }));
    });

    it(`${alg}: extended signature (a zero byte, a copy of itself)`, async () => {
      const token = await stack.issuer.sign({}, { alg });
      await refused(() => post(bearer(extendSignature(token))));
      await refused(() => post(bearer(extendSignature(token, Buffer.from(parts(token)[2], 'base64url')))));
    });

    it(`${alg}: one bit flipped (first, middle and last byte)`, async () => {
      const token = await stack.issuer.sign({}, { alg });
      const length = Buffer.from(parts(token)[2], 'base64url').length;
      for (const at of [0, Math.floor(length / 2), length - 1]) {
        await refused(() => post(bearer(flipSignatureBit(token, at))));
      }
    });

    it(`${alg}: a valid signature of another token, and a changed payload under a valid signature`, async () => {
      const mine = await stack.issuer.sign({ sub: 'alice' }, { alg });
      const other = await stack.issuer.sign({ sub: 'admin', 'cognito:groups': ['admin'] }, { alg });
      await refused(() => post(bearer(replaceSignature(other, Buffer.from(parts(mine)[2], 'base64url')))));
      const [h, , s] = parts(mine);
      const forged = `${h}.${b64u({ ...JSON.parse(Buffer.from(parts(mine)[1], 'base64url').toString()), sub: 'admin' })}.${s}`;
      await refused(() => post(bearer(forged)));
    });
  }

  it('ES256: an all-zero signature (the "psychic signature", r = s = 0)', async () => {
    const token = await stack.issuer.sign({}, { alg: 'ES256' });
    await refused(() => post(bearer(replaceSignature(token, Buffer.alloc(64)))));
  });

  it('ES256: a DER-encoded signature instead of the JOSE r||s form', async () => {
    const token = await stack.issuer.sign({}, { alg: 'ES256' });
    const rs = Buffer.from(parts(token)[2], 'base64url');
    const integer = (b: Buffer) => {
      const trimmed = b[0]! >= 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b;
      return Buffer.concat([Buffer.from([0x02, trimmed.length]), trimmed]);
    };
    const body = Buffer.concat([integer(rs.subarray(0, 32)), integer(rs.subarray(32))]);
    await refused(() => post(bearer(replaceSignature(token, Buffer.concat([Buffer.from([0x30, body.length]), body])))));
  });
});

describe('malformed and oversized tokens', () => {
  it('a 64 KB token (validly signed, and garbage), refused quickly', async () => {
    const big = await stack.issuer.sign({ pad: 'x'.repeat(48 * 1024) });
    assert.ok(big.length >= 64 * 1024, `token is ${big.length} characters`);
    const started = Date.now();
    await refused(() => post(bearer(big)));
    await refused(() => post(bearer(`${'a'.repeat(32 * 1024)}.${'b'.repeat(32 * 1024)}.c`)));
    await refused(() => post({ headers: { authorization: `Bearer ${'a'.repeat(64 * 1024)}!` } }));
    assert.ok(Date.now() - started < 3000, 'no time is spent on a huge token');
  });

  it('non-UTF-8 header or payload (validly signed)', async () => {
    const key = stack.issuer.keys.RS256;
    const invalid = Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1]);
    const claims = { iss: stack.issuer.issuer, aud: stack.issuer.audience, sub: 'mallory', exp: now() + 300 };
    await refused(async () => post(bearer(await signRaw(invalid, claims, key.privateKey))));
    await refused(async () => post(bearer(await signRaw({ alg: 'RS256', kid: key.kid }, invalid, key.privateKey))));
  });

  it('[BUG reproduction] a signed payload whose JSON strings hold invalid UTF-8 is refused', async () => {
    // RFC 7519 §7.2: the payload must be UTF-8. Decoded leniently, the bytes C0 AF
    // (an overlong "/") and FF FE both become U+FFFD, so distinct subjects collapse into one.
    const key = stack.issuer.keys.RS256;
    const claims = { iss: stack.issuer.issuer, aud: stack.issuer.audience, exp: now() + 300 };
    const payload = Buffer.concat([
      Buffer.from(`{"iss":"${claims.iss}","aud":"${claims.aud}","exp":${claims.exp},"sub":"admin`),
      Buffer.from([0xc0, 0xaf]),
      Buffer.from('"}'),
    ]);
    await refused(async () => post(bearer(await signRaw({ alg: 'RS256', kid: key.kid }, payload, key.privateKey))));
  });

  it('non-base64url parts (standard base64, padding, whitespace, unicode, empty parts, extra dots)', async () => {
    const token = await stack.issuer.sign();
    const [h, p, s] = parts(token);
    const std = (part: string) => Buffer.from(part, 'base64url').toString('base64');
    const variants = [
      `${std(h)}.${std(p)}.${std(s)}`,
      `${h}=.${p}.${s}`,
      `${h}.${p}.${s}==`,
      `${h}.${p.slice(0, 10)} ${p.slice(10)}.${s}`,
      `${h}.${p}.${s.slice(0, -2)}é${s.slice(-1)}`,
      `${h}.${p}.${s}.${s}`,
      `${h}..${s}`,
      `.${p}.${s}`,
      `${h}.${p}`,
      `${h}.${p}.${s}\u0000`,
      `${h}.${p}.${s}\r\nX-Injected: 1`,
      `${h}.${p}.${s.replace(/[A-Za-z]/, '%41')}`,
    ];
    for (const variant of variants) await refused(() => post({ headers: { authorization: `Bearer ${variant}` } }));
  });

  it('a header that is valid JSON with a duplicate "alg" (last one: none)', async () => {
    const claims = { iss: stack.issuer.issuer, aud: stack.issuer.audience, sub: 'mallory', exp: now() + 300 };
    const header = Buffer.from(`{"alg":"RS256","kid":"${stack.issuer.keys.RS256.kid}","alg":"none"}`);
    const token = await signRaw(header, claims, stack.issuer.keys.RS256.privateKey);
    await refused(() => post(bearer(token)));
  });
});

describe('JWKS fetch storm', () => {
  it('many unknown kids, at once and one after another, cause at most one JWKS fetch', async () => {
    // A fresh handler: its key cache is cold, as after a cold start.
    const fresh = stack.withEnv({});
    await fresh.http({ path: '/__manage__/noop', token: await stack.issuer.sign() });
    const before = stack.issuer.fetchCount();
    const tokens = await Promise.all(Array.from({ length: 60 }, (_, i) => stack.issuer.sign({}, { kid: `unknown-${i}` })));
    await Promise.all(tokens.slice(0, 30).map((token) => refused(() => post(bearer(token), fresh), fresh)));
    for (const token of tokens.slice(30)) await refused(() => post(bearer(token), fresh), fresh);
    assert.ok(stack.issuer.fetchCount() - before <= 1, `${stack.issuer.fetchCount() - before} JWKS fetches`);
    // And the known keys still work during the storm's back-off.
    assert.equal((await fresh.http({ path: '/__manage__/noop', token: await stack.issuer.sign({}, { alg: 'ES256' }) })).status, 200);
  });

  it('a storm of unknown kids at a cold start causes at most one JWKS fetch', async () => {
    const fresh = stack.withEnv({});
    const before = stack.issuer.fetchCount();
    const tokens = await Promise.all(Array.from({ length: 40 }, (_, i) => stack.issuer.sign({}, { kid: `cold-${i}` })));
    await Promise.all(tokens.map((token) => refused(() => post(bearer(token), fresh), fresh)));
    assert.ok(stack.issuer.fetchCount() - before <= 1, `${stack.issuer.fetchCount() - before} JWKS fetches`);
  });

  it('[BUG reproduction] while the JWKS endpoint fails, unknown kids do not cause one fetch each', async () => {
    // A JWKS endpoint that answers 500: aws-jwt-verify's penalty box only counts a
    // fetch that succeeded without the kid, so every request would fetch again.
    const failing = await startAttackerServer({ status: 500 });
    try {
      const target = stack.withEnv({ MANAGE_JWT_JWKS_URI: `${failing.url}/jwks.json` });
      const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => stack.issuer.sign({}, { kid: `storm-${i}` })));
      for (const token of tokens) await refused(() => post(bearer(token), target), target);
      assert.ok(failing.hits() <= 2, `${failing.hits()} JWKS fetches for 20 requests while the endpoint fails`);
    } finally {
      await failing.close();
    }
  });
});

/** An HTTP server on loopback that counts requests: an attacker's JWKS host, or a failing JWKS endpoint. */
async function startAttackerServer(options: { keys?: JWK[]; status?: number }) {
  let hits = 0;
  const server: Server = createServer((_req, res) => {
    hits++;
    if (options.status) res.writeHead(options.status).end('{}');
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: options.keys ?? [] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits: () => hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** POST with two separate Authorization header lines. */
function httpPost(url: string, authorizations: string[]): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/__manage__/touch`, { method: 'POST' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers)) {
          if (typeof value === 'string' && !['date', 'connection', 'keep-alive', 'transfer-encoding', 'content-length'].includes(name)) {
            headers[name] = value;
          }
        }
        resolve({ status: res.statusCode ?? 0, headers, raw: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
    req.setHeader('authorization', authorizations);
    req.setHeader('content-type', 'application/json');
    req.end(JSON.stringify({ data: { label: 'two-headers' } }));
  });
}

function cognitoToken(claims: Record<string, unknown> = {}): Promise<string> {
  return stack.issuer.sign({
    iss: COGNITO_ISSUER,
    aud: undefined,
    token_use: 'access',
    client_id: CLIENT_ID,
    sub: 'cognito-user',
    username: 'ann',
    ...claims,
  });
}
