/**
 * How the DynamoDB audit store lays out its items, and how it reads them back.
 *
 * A record is one item of its chain's partition (`CHAIN#<chain>`, sort key its
 * sequence number), kept as one JSON string (`record`) beside the few attributes
 * DynamoDB indexes: what was written is what is read back, byte for byte, and
 * what the chain hash covers. The index attributes (`listAttributes`) are not
 * covered by the hash, so whatever is read through an index is checked against
 * the chained record before it is believed ({@link chainedRecordsOf}).
 *
 * An execution's position (`AUDIT#<executionId>` in the state table: its chain
 * and a sequence number at or before its first record) lets reads find its
 * records with strongly consistent reads instead of the eventually consistent
 * `byExecution` index.
 */
import { auditKeys, stateKeys } from './table.js';
import { chainHash, chainOf, type ChainLink } from './chain.js';
import { AuditIntegrityError, InvalidCursorError, actorKey, type AuditEntry, type AuditKind, type ChainedEntry } from './store.js';

/** The partition value of the `all` index: every attempt, newest first. */
export const ALL = 'ALL';
export const chainPartition = (chain: string) => `CHAIN#${chain}`;
/** Zero-padded, so that the string sort key sorts as the number. */
export const seqKey = (seq: number) => String(seq).padStart(12, '0');
export const positionKey = (executionId: string) => `AUDIT#${executionId}`;

/** The item of one record in its chain (`link` and its `hash`); an attempt also carries the attributes that list it. */
export function chainItem(link: ChainLink & { hash: string }, entry: AuditEntry): Record<string, unknown> {
  return {
    pk: chainPartition(link.chain),
    sk: seqKey(link.seq),
    seq: link.seq,
    kind: link.kind,
    executionId: link.executionId,
    record: link.recordJson,
    prevHash: link.prevHash,
    hash: link.hash,
    ...(entry.kind === 'attempt' ? listAttributes(entry.record) : {}),
  };
}

/** The attributes the list indexes (`byActor`, `byCommand`, `all`) key an attempt by. */
function listAttributes(record: Extract<AuditEntry, { kind: 'attempt' }>['record']) {
  const { indexSort, byActor, byCommand, all } = auditKeys;
  return {
    [indexSort]: record.executionId,
    [byActor.partition]: actorKey(record.actor),
    [byCommand.partition]: record.command,
    [all.partition]: ALL,
  };
}

/** The state-table item of an execution's position; it expires with `expiresAt` (TTL in seconds). */
export function positionItem(executionId: string, chain: string, fromSeq: number, expiresAt: number): Record<string, unknown> {
  return {
    [stateKeys.partition]: positionKey(executionId),
    owner: executionId,
    expiresAt,
    [stateKeys.ttl]: Math.ceil(expiresAt / 1000),
    value: JSON.stringify({ chain, fromSeq }),
  };
}

export function positionOf(item: Record<string, unknown>): { chain: string; fromSeq: number } {
  return JSON.parse(String(item.value)) as { chain: string; fromSeq: number };
}

export function toChainedEntry(item: Record<string, unknown>): ChainedEntry {
  return {
    kind: item.kind as AuditKind,
    executionId: String(item.executionId),
    seq: Number(String(item.sk)),
    prevHash: String(item.prevHash),
    hash: String(item.hash),
    recordJson: String(item.record),
  };
}

/** The list-index attributes an item carries (not covered by its hash). */
export function listedOf(item: Record<string, unknown>): NonNullable<ChainedEntry['listed']> {
  const { indexSort, byActor, byCommand, all } = auditKeys;
  const value = (name: string) => (item[name] === undefined ? undefined : String(item[name]));
  const listed: NonNullable<ChainedEntry['listed']> = {};
  for (const [key, name] of [['listSk', indexSort], ['actorKey', byActor.partition], ['command', byCommand.partition], ['listAll', all.partition]] as const) {
    const v = value(name);
    if (v !== undefined) listed[key] = v;
  }
  return listed;
}

const KIND_ORDER: Record<AuditKind, number> = { attempt: 0, decision: 1, start: 2, outcome: 3 };

/**
 * The items that are records of the execution's chain, verified: only items of
 * its own chain (`CHAIN#<command>#<shard>` of its attempt's command), each
 * checked against its hash. Items elsewhere that carry its id (a forged outcome
 * in another partition) are not its records and are ignored; a chained item
 * whose hash does not match makes the read refuse ({@link AuditIntegrityError}).
 */
export function chainedRecordsOf(executionId: string, items: Record<string, unknown>[], hashKey: Buffer | undefined): AuditEntry[] {
  const entries: AuditEntry[] = [];
  for (const item of items) {
    const pk = String(item.pk ?? '');
    if (!pk.startsWith('CHAIN#') || String(item.executionId) !== executionId) continue;
    const chain = pk.slice('CHAIN#'.length);
    const entry = toChainedEntry(item);
    const verified = chainHash({ chain, seq: entry.seq, kind: entry.kind, executionId, recordJson: entry.recordJson, prevHash: entry.prevHash }, hashKey) === entry.hash;
    if (!verified) throw new AuditIntegrityError(executionId);
    let record: { executionId?: string; command?: string };
    try {
      record = JSON.parse(entry.recordJson);
    } catch {
      throw new AuditIntegrityError(executionId);
    }
    // Verified, but not where its own chain is (possible only without an audit key): not its record.
    if (record.executionId !== executionId || typeof record.command !== 'string' || chainOf(record.command, executionId) !== chain) continue;
    entries.push({ kind: entry.kind, record } as AuditEntry);
  }
  // One chain per execution: the attempt's. Records claiming another command's chain are not this execution's.
  const command = entries.find((entry) => entry.kind === 'attempt')?.record.command;
  return entries
    .filter((entry) => command === undefined || entry.record.command === command)
    .sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind]);
}

/** When a stored record happened (its start, finish or decision), for `readChain`'s `since`; 0 when it does not say. */
export function recordTime(json: unknown): number {
  try {
    const record = JSON.parse(String(json));
    return Date.parse(record.startedAt ?? record.finishedAt ?? record.at ?? '') || 0;
  } catch {
    return 0;
  }
}

/** A list's cursor: the last key of its page, opaque to the caller. */
export function encodeCursor(key: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** The cursor is the last key of a page; it is checked so that it can only continue the same query. */
export function decodeCursor(cursor: string | undefined, partition: string, value: string): Record<string, string> | undefined {
  if (cursor === undefined) return undefined;
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError('cursor is not one this service issued');
  }
  // Exactly the key of an index item of this query: anything else DynamoDB would refuse, as a fault of ours.
  const expected = new Set(['pk', 'sk', auditKeys.indexSort, partition]);
  if (
    typeof key !== 'object' ||
    key === null ||
    Array.isArray(key) ||
    Object.keys(key).length !== expected.size ||
    !Object.entries(key).every(([name, v]) => expected.has(name) && typeof v === 'string') ||
    (key as Record<string, string>)[partition] !== value
  ) {
    throw new InvalidCursorError('cursor is not one this service issued for this query');
  }
  return key as Record<string, string>;
}
