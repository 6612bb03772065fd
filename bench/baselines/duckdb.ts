// Baseline: DuckDB (in-process, single thread) computing the same per-key and windowed aggregates
// over the same in-memory columns. Loading is timed separately from querying; a fair comparison with
// Cairn includes both, since Cairn ingests from these same columns.
//
// Loading path: the fastest the declared package (`@duckdb/node-api`) allows without files. Columns
// are cut into data chunks of DuckDB's standard vector size (2048 rows); each chunk's vectors are
// written item by item through the vector objects of node-api (for BIGINT and DOUBLE these write
// straight into DuckDB's vector memory; VARCHAR items are assigned one by one on flush), NaN amounts
// become SQL NULL, and each chunk goes through an appender. Event times are stored as BIGINT
// (integer ms). The low-level binding (`@duckdb/node-bindings`, which node-api is built on) could copy
// numeric columns byte for byte, but it is not a declared dependency. Measured on this machine for 2M
// rows, that path loaded about 15% faster with int64 keys (108 ms against 126 ms) and 10% faster with
// utf8 keys (350 ms against 385 ms); bench/windows.ts reports the load share of every DuckDB figure.
//
// The window queries compute final results (every event accepted; no watermark or lateness), which
// equals Cairn's last emitted row per window when the watermark passes all windows at the end.
// Window queries ORDER BY (window_end, key, window_start) like Cairn's emission unless ordered=false.
// Results are materialized inside DuckDB (DuckDBMaterializedResult), not converted to JS values.

import {
  DuckDBBigIntVector, DuckDBConnection, DuckDBDataChunk, DuckDBDoubleVector, DuckDBInstance, DuckDBVarCharVector, BIGINT, DOUBLE, VARCHAR,
  type DuckDBVector,
} from '@duckdb/node-api';
import { CairnError } from '../../src/errors.js';

export interface DuckColumns {
  keys: BigInt64Array | string[];
  ts: Float64Array;
  amount: Float64Array;
}

export type DuckQuery =
  | { kind: 'perKey' }
  | { kind: 'tumbling'; size: number; ordered?: boolean }
  | { kind: 'hopping'; size: number; slide: number; ordered?: boolean }
  | { kind: 'session'; gap: number; ordered?: boolean };

export interface DuckTiming {
  loadMs: number;
  queryMs: number;
  /** Rows in the query result (keys for perKey, key-windows otherwise). */
  rows: number;
}

/** DuckDB's standard vector size: the row count of one data chunk. */
const CHUNK_ROWS = 2048;

function int(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new CairnError('invalid', `expected a positive integer ${what}, found ${v}`);
  return v;
}

/** SQL text for a query over table `events(key, ts, amount)`. */
export function duckSql(q: DuckQuery): string {
  const aggs = 'count(*) AS count, sum(amount) AS sum, min(amount) AS min, max(amount) AS max';
  const order = q.kind !== 'perKey' && q.ordered !== false ? ' ORDER BY window_end, key, window_start' : '';
  // Floor of ts to a multiple of m, correct for negative times (integer // and % truncate toward zero).
  const floorTo = (m: number) => `(ts - (((ts % ${m}) + ${m}) % ${m}))`;
  switch (q.kind) {
    case 'perKey':
      return `SELECT key, ${aggs} FROM events GROUP BY key`;
    case 'tumbling': {
      const size = int(q.size, 'size');
      return `SELECT key, ${floorTo(size)} AS window_start, ${floorTo(size)} + ${size} AS window_end, ${aggs} FROM events GROUP BY ALL${order}`;
    }
    case 'hopping': {
      const size = int(q.size, 'size');
      const slide = int(q.slide, 'slide');
      if (size % slide !== 0) throw new CairnError('invalid', `expected a slide that divides the size, found size ${size} slide ${slide}`);
      // Explode each event into its size/slide windows with a join against offsets 0..size/slide-1.
      return (
        `SELECT key, ws AS window_start, ws + ${size} AS window_end, ${aggs} FROM (` +
        `SELECT key, amount, ${floorTo(slide)} - o.k * ${slide} AS ws FROM events CROSS JOIN range(0, ${size / slide}) AS o(k)` +
        `) GROUP BY key, ws${order}`
      );
    }
    case 'session': {
      const gap = int(q.gap, 'gap');
      // Sorted by time within a key, an event starts a new session unless it is less than gap after
      // the previous one ([a, a+gap) and [b, b+gap) overlap iff b - a < gap). A running sum of
      // session starts numbers the sessions; the RANGE frame gives tied times the same number.
      return (
        `WITH flagged AS (SELECT key, ts, amount, CASE WHEN ts - lag(ts) OVER (PARTITION BY key ORDER BY ts) < ${gap} THEN 0 ELSE 1 END AS is_start FROM events), ` +
        `numbered AS (SELECT key, ts, amount, sum(is_start) OVER (PARTITION BY key ORDER BY ts RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS sid FROM flagged) ` +
        `SELECT key, min(ts) AS window_start, max(ts) + ${gap} AS window_end, ${aggs} FROM numbered GROUP BY key, sid${order}`
      );
    }
  }
}

/** Column `i` of a chunk as the vector class its type implies; anything else is a programming error. */
function vectorOf<T extends DuckDBVector>(chunk: DuckDBDataChunk, i: number, cls: abstract new (...args: never[]) => T): T {
  const v = chunk.getColumnVector(i);
  if (!(v instanceof cls)) throw new CairnError('internal', `expected column ${i} to be a ${cls.name}, found ${v.constructor.name}`);
  return v;
}

export class DuckBaseline {
  private constructor(
    private readonly instance: DuckDBInstance,
    readonly connection: DuckDBConnection,
  ) {}

  /** An in-memory database restricted to one thread. */
  static async create(): Promise<DuckBaseline> {
    const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
    const connection = await instance.connect();
    await connection.run('SET threads = 1');
    return new DuckBaseline(instance, connection);
  }

  /** (Re)creates table events(key, ts BIGINT, amount DOUBLE) from the columns; returns elapsed ms. */
  async load(cols: DuckColumns): Promise<number> {
    const n = cols.keys.length;
    if (cols.ts.length !== n || cols.amount.length !== n) {
      throw new CairnError('invalid', `expected columns of equal length, found keys ${n}, ts ${cols.ts.length}, amount ${cols.amount.length}`);
    }
    const int64 = cols.keys instanceof BigInt64Array;
    await this.connection.run(`CREATE OR REPLACE TABLE events (key ${int64 ? 'BIGINT' : 'VARCHAR'}, ts BIGINT, amount DOUBLE)`);
    const t0 = performance.now();
    const appender = await this.connection.createAppender('events');
    const chunk = DuckDBDataChunk.create([int64 ? BIGINT : VARCHAR, BIGINT, DOUBLE]);
    const { ts, amount } = cols;
    for (let off = 0; off < n; off += CHUNK_ROWS) {
      const rows = Math.min(CHUNK_ROWS, n - off);
      chunk.reset();
      // Setting the row count also drops the chunk's cached vector objects, so the vectors below
      // are fresh views of this chunk's memory with `rows` items and all-valid validity.
      chunk.rowCount = rows;
      if (int64) {
        const keys = cols.keys as BigInt64Array;
        const v = vectorOf(chunk, 0, DuckDBBigIntVector);
        for (let i = 0; i < rows; i++) v.setItem(i, keys[off + i]!);
        v.flush();
      } else {
        const keys = cols.keys as string[];
        const v = vectorOf(chunk, 0, DuckDBVarCharVector);
        for (let i = 0; i < rows; i++) v.setItem(i, keys[off + i]!);
        v.flush();
      }
      const vTs = vectorOf(chunk, 1, DuckDBBigIntVector);
      for (let i = 0; i < rows; i++) vTs.setItem(i, BigInt(ts[off + i]!));
      vTs.flush();
      const vAmount = vectorOf(chunk, 2, DuckDBDoubleVector);
      for (let i = 0; i < rows; i++) {
        const x = amount[off + i]!;
        vAmount.setItem(i, x === x ? x : null);
      }
      vAmount.flush();
      appender.appendDataChunk(chunk);
    }
    appender.closeSync();
    return performance.now() - t0;
  }

  /** Runs a query to a materialized result; returns elapsed ms and its row count. */
  async time(q: DuckQuery): Promise<{ queryMs: number; rows: number }> {
    const sql = duckSql(q);
    const t0 = performance.now();
    const result = await this.connection.run(sql);
    const rows = result.rowCount;
    return { queryMs: performance.now() - t0, rows };
  }

  /** Query result as JS objects (for checking correctness on small inputs). */
  async rows(q: DuckQuery): Promise<Record<string, unknown>[]> {
    const reader = await this.connection.runAndReadAll(duckSql(q));
    return reader.getRowObjects() as Record<string, unknown>[];
  }

  close(): void {
    this.connection.closeSync();
    this.instance.closeSync();
  }
}

/** Loads the columns into a fresh single-thread DuckDB and times one query. */
export async function runDuckdb(cols: DuckColumns, q: DuckQuery): Promise<DuckTiming> {
  const db = await DuckBaseline.create();
  try {
    const loadMs = await db.load(cols);
    const { queryMs, rows } = await db.time(q);
    return { loadMs, queryMs, rows };
  } finally {
    db.close();
  }
}
