/**
 * The safety rails kept in the state store: idempotency keys and the leases of
 * exclusive commands. Conditional writes become domain outcomes here.
 */
import { createHash } from 'node:crypto';
import type { StateStore } from '../stores/state/store.js';

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

/** What an approver approves: this command with exactly these arguments. */
export function planDigest(command: string, args: Record<string, unknown>): string {
  return sha256(`${command}\n${canonicalJson(args)}`);
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

  static fingerprint(data: unknown, dryRun: boolean): string {
    return sha256(canonicalJson({ data, dryRun }));
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
    await this.state.replace<IdempotencyValue>({
      pk: this.pk(scope.actorKey, scope.command, scope.key),
      owner: executionId,
      expiresAt: this.now() + this.ttlMs,
      value: { fingerprint, executionId, outcome },
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

  /** Conditional on the owner: a lease one does not hold cannot be released. */
  async release(command: string, executionId: string): Promise<boolean> {
    return (await this.state.delete(`LEASE#${command}`, executionId)) !== undefined;
  }
}
