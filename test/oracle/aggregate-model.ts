// Reference model of Cairn's keyed aggregate store (no windows). It keeps every raw event per key in
// arrival order and recomputes each aggregate from scratch on every read, so it is slow and obviously
// right: tests compare Cairn's Wasm store against it on generated streams.

import { CairnError } from '../../src/errors.js';
import { computeAggregates, specFields, validateSpecs, type AggregateSpecs, type AggregateValues, type ModelEvent } from './aggregates.js';
import { compareKeys, keyId, normalizeKey, type Key, type KeyType } from './keys.js';
import { normalizeBatch, type ModelRow } from './rows.js';

export interface AggregateModelOptions {
  keyType: KeyType;
  /** With a time field, first/last pick by event time (ties: first keeps earliest, last takes latest arrival). */
  time?: boolean;
  aggregates: AggregateSpecs;
}

export type AggregateRow = { key: Key } & AggregateValues;

export class AggregateModel {
  readonly keyType: KeyType;
  readonly useTime: boolean;
  readonly aggregates: AggregateSpecs;
  private readonly fields: string[];
  private readonly byKey = new Map<string, { key: Key; events: ModelEvent[] }>();
  private seq = 0;

  constructor(options: AggregateModelOptions) {
    if (options.keyType !== 'utf8' && options.keyType !== 'int64') {
      throw new CairnError('invalid', `expected keyType utf8 or int64, found ${String(options.keyType)}`);
    }
    validateSpecs(options.aggregates, ['key']);
    this.keyType = options.keyType;
    this.useTime = options.time === true;
    this.aggregates = options.aggregates;
    this.fields = specFields(options.aggregates);
  }

  /** Applies a batch in order; an invalid row rejects the whole batch and changes nothing. */
  ingest(rows: readonly ModelRow[]): void {
    const batch = normalizeBatch(rows, this.keyType, this.useTime, this.fields);
    for (const row of batch) {
      const id = keyId(row.key);
      let entry = this.byKey.get(id);
      if (entry === undefined) {
        entry = { key: row.key, events: [] };
        this.byKey.set(id, entry);
      }
      entry.events.push({ seq: this.seq++, time: row.time, values: row.values });
    }
  }

  /** Removes a key; returns whether it was present. */
  delete(key: string | bigint | number): boolean {
    return this.byKey.delete(keyId(normalizeKey(key, this.keyType)));
  }

  get(key: string | bigint | number): AggregateValues | undefined {
    const entry = this.byKey.get(keyId(normalizeKey(key, this.keyType)));
    return entry === undefined ? undefined : computeAggregates(this.aggregates, entry.events, this.useTime);
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Present keys in semantic key order. */
  keys(): Key[] {
    return [...this.byKey.values()].map((e) => e.key).sort(compareKeys);
  }

  /** `{ key, ...aggregates }` for every key, in key order. */
  rows(): AggregateRow[] {
    return this.keys().map((key) => ({ key, ...(this.get(key) as AggregateValues) }) as AggregateRow);
  }
}
