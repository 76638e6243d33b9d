/**
 * Mutable, expiring state — idempotency keys, leases of exclusive commands,
 * pending approvals — kept apart from the append-only audit. Every write is
 * conditional, so that two Lambda instances racing for one key cannot both win.
 */

export interface StateItem<T = unknown> {
  pk: string;
  /** Who holds the item: an execution id. Conditional replaces and deletes name it. */
  owner: string;
  /** Epoch milliseconds; an item past it is as good as absent. */
  expiresAt: number;
  value: T;
}

export type CreateResult<T> = { created: true } | { created: false; existing: StateItem<T> };

export interface StateStore {
  /** Writes the item unless a live one holds the key; then returns that one. */
  create<T>(item: StateItem<T>): Promise<CreateResult<T>>;
  /** The live item, read consistently. */
  get<T>(pk: string): Promise<StateItem<T> | undefined>;
  /** Replaces the item if `owner` still holds it. */
  replace<T>(item: StateItem<T>): Promise<boolean>;
  /** Deletes the item if `owner` holds it; returns what was deleted, or undefined if it did not hold it. */
  delete<T>(pk: string, owner: string, options?: { liveOnly?: boolean }): Promise<StateItem<T> | undefined>;
}

/** State in memory, with the DynamoDB store's conditional semantics, for benchmarks and tests. */
export class MemoryStateStore implements StateStore {
  readonly items = new Map<string, StateItem<unknown>>();
  constructor(private readonly now: () => number = Date.now) {}

  async create<T>(item: StateItem<T>): Promise<CreateResult<T>> {
    const existing = await this.get<T>(item.pk);
    if (existing) return { created: false, existing };
    this.items.set(item.pk, structuredClone(item));
    return { created: true };
  }

  async get<T>(pk: string): Promise<StateItem<T> | undefined> {
    const item = this.items.get(pk);
    return item && item.expiresAt >= this.now() ? (structuredClone(item) as StateItem<T>) : undefined;
  }

  async replace<T>(item: StateItem<T>): Promise<boolean> {
    if (this.items.get(item.pk)?.owner !== item.owner) return false;
    this.items.set(item.pk, structuredClone(item));
    return true;
  }

  async delete<T>(pk: string, owner: string, options: { liveOnly?: boolean } = {}): Promise<StateItem<T> | undefined> {
    const item = this.items.get(pk);
    if (!item || item.owner !== owner || (options.liveOnly && item.expiresAt < this.now())) return undefined;
    this.items.delete(pk);
    return item as StateItem<T>;
  }
}
