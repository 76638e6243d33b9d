/**
 * Hand-made JWTs for attack cases that a well-behaved signing library refuses
 * to produce: raw header and payload bytes, signed with WebCrypto.
 */
import { webcrypto } from 'node:crypto';
import type { CryptoKey } from 'jose';

export const b64u = (value: unknown): string =>
  (Buffer.isBuffer(value) ? value : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value))).toString('base64url');

/** Signs `header.payload` exactly as given (bytes or JSON), with RS256 or ES256. */
export async function signRaw(
  header: unknown,
  payload: unknown,
  key: CryptoKey,
  alg: 'RS256' | 'ES256' = 'RS256',
): Promise<string> {
  const input = `${b64u(header)}.${b64u(payload)}`;
  const algorithm = alg === 'RS256' ? { name: 'RSASSA-PKCS1-v1_5' } : { name: 'ECDSA', hash: 'SHA-256' };
  const signature = await webcrypto.subtle.sign(algorithm, key as unknown as webcrypto.CryptoKey, Buffer.from(input));
  return `${input}.${Buffer.from(signature).toString('base64url')}`;
}

export function parts(jwt: string): [string, string, string] {
  return jwt.split('.') as [string, string, string];
}

/** Flips one bit of the signature, at the given byte (default: the middle). */
export function flipSignatureBit(jwt: string, at?: number): string {
  const [header, payload, signature] = parts(jwt);
  const bytes = Buffer.from(signature, 'base64url');
  bytes[at ?? Math.floor(bytes.length / 2)]! ^= 0x01;
  return `${header}.${payload}.${bytes.toString('base64url')}`;
}

export function truncateSignature(jwt: string, bytes = 1): string {
  const [header, payload, signature] = parts(jwt);
  return `${header}.${payload}.${Buffer.from(signature, 'base64url').subarray(0, -bytes).toString('base64url')}`;
}

export function extendSignature(jwt: string, extra = Buffer.from([0])): string {
  const [header, payload, signature] = parts(jwt);
  return `${header}.${payload}.${Buffer.concat([Buffer.from(signature, 'base64url'), extra]).toString('base64url')}`;
}

export function replaceSignature(jwt: string, signature: Buffer): string {
  const [header, payload] = parts(jwt);
  return `${header}.${payload}.${signature.toString('base64url')}`;
}
