/** The state store on DynamoDB: conditional writes turned into results, values kept as JSON. */
import { createDynamoClient, type DynamoClientOptions, type DynamoDocumentClient } from '../dynamo-client.js';
import { stateKeys } from '../audit/table.js';
import type { CreateResult, StateItem, StateStore } from './store.js';
import { asStoreError } from '../limits.js';

export interface DynamoStateStoreOptions extends DynamoClientOptions {
  tableName: string;
  now?: () => number;
}

/**
 * Every operation maps DynamoDB's ValidationException (an item over 400 KB, a key
 * too long) to InvalidRequest: a request that cannot be stored is refused with a
 * 400, not reported as an outage.
 */
export class DynamoStateStore implements StateStore {
  private readonly table: string;
  private readonly now: () => number;

  constructor(options: DynamoStateStoreOptions, private readonly client: DynamoDocumentClient = createDynamoClient(options)) {
    this.table = options.tableName;
    this.now = options.now ?? Date.now;
  }

  async create<T>(item: StateItem<T>): Promise<CreateResult<T>> {
    try {
      return await this.createNow<T>(item);
    } catch (error) {
      throw asStoreError(error);
    }
  }

  private async createNow<T>(item: StateItem<T>): Promise<CreateResult<T>> {
    try {
      await this.client.put({
        TableName: this.table,
        Item: toItem(item),
        ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now',
        ExpressionAttributeValues: { ':now': this.now() },
      });
      return { created: true };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const existing = await this.get<T>(item.pk);
      // It expired between the write and the read: try once more.
      return existing ? { created: false, existing } : this.create(item);
    }
  }

  async get<T>(pk: string): Promise<StateItem<T> | undefined> {
    try {
      return await this.getNow<T>(pk);
    } catch (error) {
      throw asStoreError(error);
    }
  }

  private async getNow<T>(pk: string): Promise<StateItem<T> | undefined> {
    const { Item } = await this.client.get({ TableName: this.table, Key: { pk }, ConsistentRead: true });
    if (!Item || Number(Item.expiresAt) < this.now()) return undefined;
    return fromItem<T>(Item);
  }

  async replace<T>(item: StateItem<T>): Promise<boolean> {
    try {
      return await this.replaceNow<T>(item);
    } catch (error) {
      throw asStoreError(error);
    }
  }

  private async replaceNow<T>(item: StateItem<T>): Promise<boolean> {
    try {
      await this.client.put({
        TableName: this.table,
        Item: toItem(item),
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': item.owner },
      });
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async delete<T>(pk: string, owner: string, options: { liveOnly?: boolean } = {}): Promise<StateItem<T> | undefined> {
    try {
      return await this.deleteNow<T>(pk, owner, options);
    } catch (error) {
      throw asStoreError(error);
    }
  }

  private async deleteNow<T>(pk: string, owner: string, options: { liveOnly?: boolean }): Promise<StateItem<T> | undefined> {
    try {
      const { Attributes } = await this.client.delete({
        TableName: this.table,
        Key: { pk },
        ConditionExpression: options.liveOnly ? '#owner = :owner AND expiresAt >= :now' : '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': owner, ...(options.liveOnly ? { ':now': this.now() } : {}) },
        ReturnValues: 'ALL_OLD',
      });
      return Attributes ? fromItem<T>(Attributes) : undefined;
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }
}

function toItem(item: StateItem<unknown>) {
  return {
    pk: item.pk,
    owner: item.owner,
    expiresAt: item.expiresAt,
    [stateKeys.ttl]: Math.ceil(item.expiresAt / 1000),
    value: JSON.stringify(item.value ?? null),
  };
}

function fromItem<T>(item: Record<string, unknown>): StateItem<T> {
  return { pk: String(item.pk), owner: String(item.owner), expiresAt: Number(item.expiresAt), value: JSON.parse(String(item.value)) as T };
}

function isConditionFailure(error: unknown): boolean {
  return (error as Error)?.name === 'ConditionalCheckFailedException';
}
