/**
 * A profile's client secret (device grant, client credentials, a Cognito app
 * client with a secret): `MM_CLIENT_SECRET` when set, else what
 * `mm configure --client-secret` stored in `<config dir>/secrets/<profile>.json`
 * (mode 0600 in a 0700 directory, like the token cache). `config.json` itself
 * never holds a secret, so it can be shared or committed.
 */
import { chmodSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { configDir, writePrivateFile } from '../config.js';
import { registerSecret } from '../io.js';

export function secretsPath(profile: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(configDir(env), 'secrets', `${profile}.json`);
}

export function readStoredSecret(profile: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!profile) return undefined;
  const path = secretsPath(profile, env);
  try {
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    const value = (JSON.parse(readFileSync(path, 'utf8')) as { clientSecret?: unknown }).clientSecret;
    if (typeof value !== 'string' || !value) return undefined;
    registerSecret(value);
    return value;
  } catch {
    return undefined;
  }
}

/** Stores the secret (an empty one removes it). */
export function storeSecret(profile: string, secret: string, env: NodeJS.ProcessEnv = process.env): void {
  if (!secret) {
    rmSync(secretsPath(profile, env), { force: true });
    return;
  }
  registerSecret(secret);
  writePrivateFile(secretsPath(profile, env), `${JSON.stringify({ clientSecret: secret })}\n`);
}

/** `MM_CLIENT_SECRET`, else the profile's stored secret. */
export function clientSecret(profile: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.MM_CLIENT_SECRET;
  if (fromEnv) {
    registerSecret(fromEnv);
    return fromEnv;
  }
  return readStoredSecret(profile, env);
}
