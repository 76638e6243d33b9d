/**
 * The hash chains that make the audit tamper-evident. Each command's records
 * form a few chains (shards, picked by execution id, so an execution's records
 * stay together and concurrent runs of one command rarely race for the same
 * sequence number); a record's hash covers its chain, sequence number, kind,
 * execution id, exact stored JSON and the previous record's hash. With an
 * audit key the hash is an HMAC, so that someone who can write the table but
 * does not hold the key cannot forge a consistent chain after an edit.
 */
import { createHash, createHmac } from 'node:crypto';
import { actorKey, type AuditKind, type ChainedEntry } from './store.js';

export const GENESIS_HASH = '0'.repeat(64);

/** Chains per command: appends race only within a shard. */
export const CHAIN_SHARDS = 4;
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** The chain an execution's records go to: `<command>#<shard>`, the shard from the id's random tail. */
export function chainOf(command: string, executionId: string): string {
  const shard = Math.max(0, CROCKFORD.indexOf(executionId.at(-1) ?? '0')) % CHAIN_SHARDS;
  return `${command}#${shard}`;
}

export function chainsOf(command: string): string[] {
  return Array.from({ length: CHAIN_SHARDS }, (_, shard) => `${command}#${shard}`);
}

export interface ChainLink {
  /** `<command>#<shard>` */
  chain: string;
  seq: number;
  kind: AuditKind;
  executionId: string;
  recordJson: string;
  prevHash: string;
}

export function chainHash(link: ChainLink, key?: Buffer): string {
  const content = [link.chain, String(link.seq), link.kind, link.executionId, link.prevHash, link.recordJson].join('\n');
  return (key ? createHmac('sha256', key) : createHash('sha256')).update(content).digest('hex');
}

/** HMAC of one argument value: proves later which value was passed without storing it. */
export function argumentHmac(key: Buffer, command: string, name: string, value: unknown): string {
  return createHmac('sha256', key).update(`${command}\n${name}\n${JSON.stringify(value)}`).digest('hex');
}

export type ChainProblemKind = 'altered' | 'missing' | 'reordered' | 'broken_link' | 'misindexed' | 'outside_chain';

export interface ChainProblem {
  command: string;
  chain: string;
  seq: number;
  executionId?: string;
  problem: ChainProblemKind;
  detail: string;
}

export interface ChainReport {
  command: string;
  chain: string;
  records: number;
  firstSeq?: number;
  lastSeq?: number;
  problems: ChainProblem[];
}

/**
 * Walks one chain and reports every altered, missing or reordered record.
 * A walk from the start (`fromStart`) also checks that the chain begins at 1;
 * a walk that starts later trusts the first record's predecessor.
 *
 * `since` narrows only the report: records before it are checked like all
 * others (every problem is reported, whatever time a record claims — an edit can
 * back-date a record), but not counted in `records`/`firstSeq`.
 */
export async function verifyChain(
  chain: string,
  entries: AsyncIterable<ChainedEntry>,
  options: { key?: Buffer; fromStart: boolean; since?: string },
): Promise<ChainReport> {
  const since = options.since === undefined ? undefined : Date.parse(options.since);
  const command = chain.slice(0, chain.lastIndexOf('#'));
  const report: ChainReport = { command, chain, records: 0, problems: [] };
  let previous: ChainedEntry | undefined;
  let previousFlagged = false;
  for await (const entry of entries) {
    const problemsBefore = report.problems.length;
    const { executionId } = entry;
    const problem = (kind: ChainProblemKind, detail: string, seq = entry.seq) =>
      report.problems.push({ command, chain, seq, executionId, problem: kind, detail });

    const expectedSeq = previous ? previous.seq + 1 : options.fromStart ? 1 : entry.seq;
    if (entry.seq > expectedSeq) {
      const range = entry.seq - expectedSeq > 1 ? `records ${expectedSeq}–${entry.seq - 1} are` : `record ${expectedSeq} is`;
      problem('missing', `${range} missing before this one`, expectedSeq);
    }

    const parsed = safeParse(entry.recordJson);
    if (!parsed || parsed.executionId !== executionId || parsed.command !== command || chainOf(command, executionId) !== chain) {
      problem('altered', 'the record does not belong where it is stored');
    } else if (chainHash(linkOf(chain, entry, entry.seq), options.key) !== entry.hash) {
      const writtenAt = [entry.seq - 1, entry.seq + 1].find(
        (seq) => seq > 0 && chainHash(linkOf(chain, entry, seq), options.key) === entry.hash,
      );
      if (writtenAt !== undefined) problem('reordered', `this record was written at position ${writtenAt}`);
      else problem('altered', 'the content does not match its hash');
    } else if (previous && !previousFlagged && entry.seq === previous.seq + 1 && entry.prevHash !== previous.hash) {
      // After a record already reported, its link says nothing new.
      problem('broken_link', 'its previous-hash is not the hash of the record before it');
    } else if (!previous && entry.seq === 1 && entry.prevHash !== GENESIS_HASH) {
      problem('broken_link', 'the first record does not start the chain');
    }
    // Index attributes are checked on a record that is itself intact (an altered one is reported as such).
    if (entry.listed && parsed && report.problems.length === problemsBefore) {
      const wrong = misindexed(entry, parsed);
      if (wrong.length) problem('misindexed', `its list-index attributes differ from its record (${wrong.join(', ')}): reads would list it wrongly or not at all`);
    }
    previous = entry;
    previousFlagged = report.problems.length > problemsBefore;
    if (since === undefined || previousFlagged || recordTime(parsed) >= since) {
      report.records++;
      report.firstSeq ??= entry.seq;
      report.lastSeq = entry.seq;
    }
  }
  return report;
}

/** The list-index attributes an item must carry: an attempt's are derived from its record; other items have none. */
export function expectedListing(kind: AuditKind, record: { executionId?: string; command?: string; actor?: unknown }): NonNullable<ChainedEntry['listed']> {
  if (kind !== 'attempt' || !record.actor || typeof record.actor !== 'object') return {};
  return { listSk: record.executionId, actorKey: actorKey(record.actor as never), command: record.command, listAll: 'ALL' };
}

function misindexed(entry: ChainedEntry, parsed: { executionId?: string; command?: string }): string[] {
  const expected = expectedListing(entry.kind, parsed as never);
  const names = ['listSk', 'actorKey', 'command', 'listAll'] as const;
  return names.filter((name) => (entry.listed?.[name] ?? undefined) !== (expected[name] ?? undefined));
}

function linkOf(chain: string, entry: ChainedEntry, seq: number): ChainLink {
  return { chain, seq, kind: entry.kind, executionId: entry.executionId, recordJson: entry.recordJson, prevHash: entry.prevHash };
}

function recordTime(record: { startedAt?: string; finishedAt?: string; at?: string } | undefined): number {
  return Date.parse(record?.startedAt ?? record?.finishedAt ?? record?.at ?? '') || 0;
}

function safeParse(json: string): { executionId?: string; command?: string; startedAt?: string; finishedAt?: string; at?: string } | undefined {
  try {
    return JSON.parse(json);
  } catch {
    return undefined;
  }
}
