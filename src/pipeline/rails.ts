/**
 * The safety rails kept in the state store: idempotency keys and the leases of
 * exclusive commands. Conditional writes become domain outcomes here.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { StateStore } from '../stores/state/store.js';
import { argumentHmac } from '../stores/audit/chain.js';
import { fitRecord, redactArguments, scrubValue, secretScrubber } from '../redact.js';

/** The same JSON for the same value whatever the key order: for fingerprints and digests. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The state item that holds the deployment's digest key when `MANAGE_AUDIT_HMAC_KEY` is not set. */
export const DIGEST_KEY_ITEM = 'KEY#digests';
/** Never expires (the latest instant a Date can hold). */
const FOREVER = 8.64e15;

/**
 * The key of everything derived from argument values that is stored or shown:
 * plan digests, idempotency fingerprints, the HMACs of sensitive arguments.
 * `MANAGE_AUDIT_HMAC_KEY` when set; otherwise a random key made once per
 * deployment in the state table (a conditional put: of two instances racing,
 * one key wins and both use it) and kept per instance. It is then exactly as
 * secret as the state table, which already holds the pending runs' arguments.
 */
export class DigestKey {
  private loading?: Promise<Buffer>;
  private loaded?: Buffer;

  constructor(
    private readonly state: StateStore,
    private readonly configured?: Buffer,
  ) {
    if (configured) this.loaded = configured;
  }

  /** Loads (or creates) the key; once per instance. */
  async load(): Promise<Buffer> {
    if (this.loaded) return this.loaded;
    this.loading ??= this.fetch().then(
      (key) => (this.loaded = key),
      (error) => {
        this.loading = undefined;
        throw error;
      },
    );
    return this.loading;
  }

  /** The key, once {@link load} resolved. */
  current(): Buffer {
    if (!this.loaded) throw new Error('the digest key is not loaded yet');
    return this.loaded;
  }

  private async fetch(): Promise<Buffer> {
    // Read first: once the deployment has its key, an instance needs one GetItem, not a failing put and a read.
    const existing = await this.state.get<{ key: string }>(DIGEST_KEY_ITEM);
    const mine = randomBytes(32).toString('base64');
    const result = existing
      ? { created: false as const, existing }
      : await this.state.create<{ key: string }>({ pk: DIGEST_KEY_ITEM, owner: 'deployment', expiresAt: FOREVER, value: { key: mine } });
    const key = result.created ? mine : result.existing.value?.key;
    if (typeof key !== 'string' || key.length < 40) throw new Error(`the state item ${DIGEST_KEY_ITEM} does not hold a key`);
    return Buffer.from(key, 'base64');
  }
}

/**
 * The HMAC of each sensitive argument present: shown in the attempt record, so
 * that whoever holds the value can check it was this one, and nobody can guess it.
 */
export function sensitiveHmacs(key: Buffer, command: string, args: Record<string, unknown>, sensitive: readonly string[]): Record<string, string> {
  return Object.fromEntries(sensitive.filter((name) => Object.hasOwn(args, name)).map((name) => [name, argumentHmac(key, command, name, args[name])]));
}

/**
 * What an approver approves: this command with exactly these arguments. It is
 * SHA-256 over what the approver sees of the request — the command, the
 * arguments as the audit shows them (sensitive ones `[REDACTED]`, their values
 * scrubbed from the rest) and the keyed HMACs of the sensitive values
 * (`argsHmac`) — so that an approver can recompute it from the record, and
 * nothing of a sensitive value enters it but through the deployment's key.
 */
export function planDigest(command: string, args: Record<string, unknown>, sensitive: readonly string[], key: Buffer): string {
  const shown = scrubValue(redactArguments(args, sensitive), secretScrubber(args, sensitive));
  return planDigestOf(command, shown, sensitiveHmacs(key, command, args, sensitive));
}

/** The digest from what a record shows: `sha256(command \n canonical(args) \n canonical(argsHmac))`. */
export function planDigestOf(command: string, shownArgs: Record<string, unknown>, argsHmac: Record<string, string>): string {
  return sha256(`${command}\n${canonicalJson(shownArgs)}\n${canonicalJson(argsHmac)}`);
}

/** How a finished request is remembered under its idempotency key, to be answered again. */
export type RememberedOutcome =
  | { kind: 'response'; body: unknown }
  | { kind: 'error'; code: string; message: string; executionId?: string; auditRecorded?: false };

interface IdempotencyValue {
  fingerprint: string;
  executionId: string;
  outcome?: RememberedOutcome;
}

export type IdempotencyClaim =
  | { kind: 'claimed' }
  | { kind: 'replay'; outcome: RememberedOutcome }
  | { kind: 'in_flight'; executionId: string }
  | { kind: 'mismatch' };

/** Idempotency keys, scoped to actor and command, remembered with a fingerprint of the request. */
export class IdempotencyKeys {
  constructor(
    private readonly state: StateStore,
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  /** Keyed: it sits in the state table for a day, and must not let anyone test guesses of a secret argument. */
  static fingerprint(data: unknown, dryRun: boolean, key: Buffer): string {
    return createHmac('sha256', key).update(`fingerprint\n${canonicalJson({ data, dryRun })}`).digest('hex');
  }

  private pk(actorKey: string, command: string, key: string): string {
    return `IDEMPOTENCY#${sha256(`${actorKey}\n${command}\n${key}`)}`;
  }

  async claim(scope: { actorKey: string; command: string; key: string }, fingerprint: string, executionId: string): Promise<IdempotencyClaim> {
    const pk = this.pk(scope.actorKey, scope.command, scope.key);
    const result = await this.state.create<IdempotencyValue>({
      pk,
      owner: executionId,
      expiresAt: this.now() + this.ttlMs,
      value: { fingerprint, executionId },
    });
    if (result.created) return { kind: 'claimed' };
    const existing = result.existing.value;
    if (existing.fingerprint !== fingerprint) return { kind: 'mismatch' };
    if (!existing.outcome) return { kind: 'in_flight', executionId: existing.executionId };
    return { kind: 'replay', outcome: existing.outcome };
  }

  /** Remembers the outcome; a failure here only loses the replay, never the audit. */
  async complete(scope: { actorKey: string; command: string; key: string }, fingerprint: string, executionId: string, outcome: RememberedOutcome) {
    // A response too large for a state item is remembered cut (and says so in `truncated`), not lost.
    const remembered: RememberedOutcome =
      outcome.kind === 'error'
        ? { ...outcome, message: outcome.message.slice(0, 8192) }
        : { kind: 'response', body: outcome.body && typeof outcome.body === 'object' ? fitRecord(outcome.body as Record<string, unknown>) : outcome.body };
    await this.state.replace<IdempotencyValue>({
      pk: this.pk(scope.actorKey, scope.command, scope.key),
      owner: executionId,
      expiresAt: this.now() + this.ttlMs,
      value: { fingerprint, executionId, outcome: remembered },
    });
  }

  /** Forgets a key whose request never ran, so that a retry may run it. */
  async release(scope: { actorKey: string; command: string; key: string }, executionId: string) {
    await this.state.delete(this.pk(scope.actorKey, scope.command, scope.key), executionId);
  }
}

/** Leases of exclusive commands: one holder at a time, expiring so a crashed run cannot lock forever. */
export class CommandLeases {
  constructor(
    private readonly state: StateStore,
    private readonly now: () => number,
  ) {}

  /** @returns undefined when acquired, else the holder's execution id */
  async acquire(command: string, executionId: string, durationMs: number): Promise<string | undefined> {
    const result = await this.state.create({ pk: `LEASE#${command}`, owner: executionId, expiresAt: this.now() + durationMs, value: { command } });
    return result.created ? undefined : result.existing.owner;
  }

  /** The execution holding the command's lease now, if any. */
  async holder(command: string): Promise<string | undefined> {
    return (await this.state.get(`LEASE#${command}`))?.owner;
  }

  /**
   * Keeps a held lease until `until` (epoch ms), e.g. while a command stopped by
   * its time limit has not really stopped, up to when its Lambda can no longer be
   * running. False if `executionId` does not hold it.
   */
  async extend(command: string, executionId: string, until: number): Promise<boolean> {
    return this.state.replace({ pk: `LEASE#${command}`, owner: executionId, expiresAt: until, value: { command } });
  }

  /** Conditional on the owner: a lease one does not hold cannot be released. */
  async release(command: string, executionId: string): Promise<boolean> {
    return (await this.state.delete(`LEASE#${command}`, executionId)) !== undefined;
  }
}
