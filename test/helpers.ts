/**
 * Shared test helpers: turning Cairn's Arrow output into plain rows comparable with the oracle
 * models, and formatting values for readable assertion failures.
 */
import type { Table } from 'apache-arrow';
import type { WasmCore } from '../bindings/core.js';

export type PlainRow = Record<string, string | bigint | number | null>;

/** Arrow rows as plain objects: counts and window bounds become numbers, keys stay as typed. */
export function rowsOf(table: Table, keyField: string): PlainRow[] {
  const out: PlainRow[] = [];
  const names = table.schema.fields.map((f) => f.name);
  const cols = names.map((n) => table.getChild(n)!);
  for (let i = 0; i < table.numRows; i++) {
    const row: PlainRow = {};
    names.forEach((n, c) => {
      const v = cols[c]!.get(i) as unknown;
      if (n === keyField) row['key'] = v as string | bigint;
      else if (typeof v === 'bigint') row[n] = Number(v);
      else row[n] = v as number | null;
    });
    out.push(row);
  }
  return out;
}

/** Model rows with the same shape (model keys may be number for int64 in some helpers). */
export function normalizeModelRows(rows: readonly Record<string, unknown>[]): PlainRow[] {
  return rows.map((r) => {
    const o: PlainRow = {};
    for (const [k, v] of Object.entries(r)) o[k] = typeof v === 'number' && k !== 'key' ? v : (v as PlainRow[string]);
    return o;
  });
}

export function show(x: unknown): string {
  return JSON.stringify(x, (_, v) => (typeof v === 'bigint' ? `${v}n` : v));
}

/** Every aggregate function over the oracle streams' `amount` field (test/oracle/gen.ts), for window tests. */
export const WINDOW_AGGS = {
  n: { fn: 'count' },
  spend: { fn: 'sum', field: 'amount' },
  lo: { fn: 'min', field: 'amount' },
  hi: { fn: 'max', field: 'amount' },
  avg: { fn: 'mean', field: 'amount' },
  first: { fn: 'first', field: 'amount' },
  last: { fn: 'last', field: 'amount' },
  valued: { fn: 'count', field: 'amount' },
} as const;

const utf8 = new TextEncoder();

/** A utf8 key's index probe hash in a store (the Wasm export hashProbeBytes), through `core`'s scratch. */
export function wasmProbeHashUtf8(core: WasmCore, key: string): number {
  const bytes = utf8.encode(key);
  const p = core.scratch(bytes.length + 8);
  core.u8.set(bytes, p);
  return core.ex.hashProbeBytes(p, bytes.length) >>> 0;
}
