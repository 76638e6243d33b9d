import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A new execution id: a ULID (48-bit millisecond time, 80 random bits, Crockford
 * base32), so that ids sort by start time and the audit lists newest first.
 */
export function newExecutionId(now: number = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(10);
  let random = '';
  // 80 bits → 16 characters of 5 bits each.
  let acc = 0n;
  for (const byte of bytes) acc = (acc << 8n) | BigInt(byte);
  for (let i = 0; i < 16; i++) {
    random = CROCKFORD[Number(acc & 31n)] + random;
    acc >>= 5n;
  }
  return time + random;
}

export const EXECUTION_ID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/;
