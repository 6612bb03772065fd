// Batch validation shared by the reference models: a batch is checked completely before any row is
// applied, so a bad row leaves the model exactly as it was (the semantics' all-or-nothing rule).

import { CairnError } from '../../src/errors.js';
import { normalizeKey, type Key, type KeyType } from './keys.js';
import { normalizeTime, normalizeValue } from './aggregates.js';

/** A row as tests hand it to the models. */
export interface ModelRow {
  key: string | bigint | number | null | undefined;
  time?: number | bigint | null;
  values: Record<string, unknown>;
}

export interface NormalizedRow {
  key: Key;
  time: number | undefined;
  values: Record<string, number | null>;
}

export function normalizeBatch(rows: readonly ModelRow[], keyType: KeyType, needTime: boolean, fields: readonly string[]): NormalizedRow[] {
  if (!Array.isArray(rows)) throw new CairnError('invalid', `expected an array of rows, found ${typeof rows}`);
  return rows.map((row, i) => {
    if (row === null || typeof row !== 'object') {
      throw new CairnError('invalid', `expected a row object, found ${row === null ? 'null' : typeof row} (row ${i})`);
    }
    const key = normalizeKey(row.key, keyType);
    const time = needTime ? normalizeTime(row.time) : undefined;
    const values: Record<string, number | null> = {};
    const given = row.values ?? {};
    for (const f of fields) values[f] = normalizeValue(given[f], f);
    return { key, time, values };
  });
}
