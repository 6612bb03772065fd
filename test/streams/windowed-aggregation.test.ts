// Proves the `cairn/streams` adapter (src/streams/windowed-aggregation.ts) emits exactly the windows a
// bounded-out-of-orderness pipeline must emit, checkpoints on its cadence with the right meta, and
// gives exactly-once output across a crash and a restore. Runs under Node and Deno (the test runner
// runs every file under both), so it also shows the adapter works with both runtimes' web streams.
//
// How: seeded event streams with bounded disorder plus some far-late events are cut into random
// chunks (some empty) and piped through the adapter; the rows that come out must equal, row for row
// and in order, those of a small reference model (test/streams/model.ts) driven with the same chunks
// (ingest the chunk, then advance to max time seen - out-of-orderness; at close, advance to the end
// of time). The late-event count must match too. Checkpoint tests record every checkpoint's meta and
// compare it with the cadence computed by hand. The crash test aborts a stream at a random chunk,
// restores the newest checkpoint into a new backend, resumes the source from meta.source and the
// output from the row count the meta hook recorded, and must end with the uninterrupted output.
import { mulberry32 as prng } from '../oracle/gen.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tableFromArrays, vectorFromArray, Table, TimestampSecond, TimestampMillisecond, TimestampMicrosecond, TimestampNanosecond, type DataType, type RecordBatch } from 'apache-arrow';
import { StateBackend, MemoryCheckpointStorage, CairnError, type CheckpointResult } from '../../src/index.js';
import { windowedAggregation, restoredStreamMeta, type StreamCheckpointMeta, type CheckpointInfo } from '../../src/streams/index.js';
import type { AggregateSpec } from '../../src/store/spec.js';
import { WindowModel, type ModelRow } from './model.js';


type Columns = { k: BigInt64Array; t: Float64Array; v: Float64Array };

interface Case {
  size: number;
  slide: number;
  lateness: number;
  ooo: number;
  chunks: Columns[];
}

/** Events at about 1 ms apart, each up to `disorder` ms early, and one in 50 far late. */
function genCase(seed: number): Case {
  const r = prng(seed);
  const events = 600 + Math.floor(r() * 1400);
  const keys = 1 + Math.floor(r() * 20);
  const disorder = Math.floor(r() * 40);
  const size = [10, 20, 60][Math.floor(r() * 3)]!;
  const slide = [size, size / 2, size / 10][Math.floor(r() * 3)]!;
  const lateness = r() < 0.5 ? 0 : Math.floor(r() * 30);
  const ooo = [0, Math.floor(disorder / 2), disorder][Math.floor(r() * 3)]!;
  const k: bigint[] = [];
  const t: number[] = [];
  const v: number[] = [];
  for (let i = 0; i < events; i++) {
    k.push(BigInt(Math.floor(r() * keys)) - 3n); // some negative keys
    const late = r() < 0.02 ? 200 : 0;
    t.push(1000 + i - Math.floor(r() * (disorder + 1)) - late);
    v.push(Math.floor(r() * 2000) - 1000); // integers: sums are exact in any order
  }
  const chunks: Columns[] = [];
  for (let at = 0; at < events; ) {
    const n = r() < 0.1 ? 0 : 1 + Math.floor(r() * 150);
    const end = Math.min(events, at + n);
    chunks.push({ k: BigInt64Array.from(k.slice(at, end)), t: Float64Array.from(t.slice(at, end)), v: Float64Array.from(v.slice(at, end)) });
    at = end;
  }
  return { size, slide, lateness, ooo, chunks };
}

function specOf(c: Case): AggregateSpec {
  return {
    key: { field: 'k', type: 'int64' },
    time: 't',
    window: c.slide === c.size ? { kind: 'tumbling', size: c.size } : { kind: 'hopping', size: c.size, slide: c.slide },
    aggregates: { n: { fn: 'count' }, sum: { fn: 'sum', field: 'v' }, max: { fn: 'max', field: 'v' } },
    allowedLateness: c.lateness,
  };
}

/** What the model emits for the chunks, and its late count. */
function modelRun(c: Case): { rows: ModelRow[]; late: number } {
  const m = new WindowModel(c.size, c.slide, c.lateness);
  const rows: ModelRow[] = [];
  let max = -Infinity;
  for (const ch of c.chunks) {
    for (let i = 0; i < ch.k.length; i++) {
      m.ingest(ch.k[i]!, ch.t[i]!, ch.v[i]!);
      max = Math.max(max, ch.t[i]!);
    }
    if (max > -Infinity) rows.push(...m.advance(max - c.ooo));
  }
  rows.push(...m.advance(Number.MAX_SAFE_INTEGER));
  return { rows, late: m.lateEvents };
}

function rowsOf(batch: RecordBatch): ModelRow[] {
  const k = batch.getChild('k')!.toArray() as BigInt64Array;
  const s = batch.getChild('window_start')!.toArray() as BigInt64Array;
  const e = batch.getChild('window_end')!.toArray() as BigInt64Array;
  const n = batch.getChild('n')!.toArray() as BigInt64Array;
  const sum = batch.getChild('sum')!;
  const max = batch.getChild('max')!;
  return Array.from({ length: batch.numRows }, (_, i) => ({
    key: k[i]!,
    start: Number(s[i]!),
    end: Number(e[i]!),
    n: Number(n[i]!),
    sum: sum.get(i) as number | null,
    max: max.get(i) as number | null,
  }));
}

const show = (x: unknown) => JSON.stringify(x, (_, v) => (typeof v === 'bigint' ? `${v}n` : v));

/** Writes `chunks` into `stream` one at a time and collects what comes out. */
async function drive<In>(stream: TransformStream<In, RecordBatch>, chunks: In[]): Promise<ModelRow[]> {
  const out: ModelRow[] = [];
  const done = stream.readable.pipeTo(new WritableStream({ write: (b) => void out.push(...rowsOf(b)) }));
  const w = stream.writable.getWriter();
  for (const ch of chunks) await w.write(ch);
  await w.close();
  await done;
  return out;
}

test('fired windows and late events equal the reference model, chunk by chunk', async () => {
  for (let seed = 1; seed <= 14; seed++) {
    const c = genCase(seed);
    const want = modelRun(c);
    const backend = await StateBackend.open({ shards: 1 + (seed % 3) });
    const stream = windowedAggregation({ backend, name: 'w', spec: specOf(c), outOfOrdernessMs: c.ooo });
    const got = await drive(stream, c.chunks);
    const where = `seed ${seed} (size ${c.size}, slide ${c.slide}, lateness ${c.lateness}, ooo ${c.ooo})`;
    assert.is(got.length, want.rows.length, `${where}: row count`);
    for (let i = 0; i < got.length; i++) assert.is(show(got[i]), show(want.rows[i]), `${where}: row ${i}`);
    assert.is(await stream.operator.lateEvents(), want.late, `${where}: late events`);
    assert.is(stream.events, c.chunks.reduce((a, ch) => a + ch.k.length, 0));
    assert.is(stream.emittedRows, want.rows.length);
    await backend.close();
  }
});

test('Arrow tables, record batches and plain columns give the same output', async () => {
  const c = genCase(99);
  const want = modelRun(c).rows;
  const forms: [string, (ch: Columns) => unknown][] = [
    ['columns', (ch) => ch],
    ['table', (ch) => tableFromArrays({ k: ch.k, t: ch.t, v: ch.v })],
    ['record batch', (ch) => tableFromArrays({ k: ch.k, t: ch.t, v: ch.v }).batches[0] ?? { k: ch.k, t: ch.t, v: ch.v }],
  ];
  for (const [label, form] of forms) {
    const backend = await StateBackend.open();
    const stream = windowedAggregation<unknown>({ backend, name: 'w', spec: specOf(c), outOfOrdernessMs: c.ooo, columns: (x) => x as never });
    const got = await drive(stream, c.chunks.map(form));
    assert.is(show(got), show(want), label);
    await backend.close();
  }
});

test('Arrow timestamp times in any unit move the watermark as their ms do', async () => {
  // ingest reads a Timestamp column in its unit; the adapter's watermark must read it the same way
  // (it once took the raw values as ms: us and ns ran the watermark 1000x ahead, s 1000x behind).
  // Seconds need whole seconds: that case is the same stream with every time and span in seconds.
  const base = genCase(99);
  const inSeconds: Case = { ...base, size: base.size * 1000, slide: base.slide * 1000, lateness: base.lateness * 1000, ooo: base.ooo * 1000,
    chunks: base.chunks.map((ch) => ({ ...ch, t: ch.t.map((t) => t * 1000) })) };
  const units: [string, Case, DataType][] = [
    ['ms', base, new TimestampMillisecond()], ['us', base, new TimestampMicrosecond()], ['ns', base, new TimestampNanosecond()], ['s', inSeconds, new TimestampSecond()],
  ];
  for (const [unit, c, type] of units) {
    const want = modelRun(c);
    const backend = await StateBackend.open();
    const stream = windowedAggregation<unknown>({ backend, name: 'w', spec: specOf(c), outOfOrdernessMs: c.ooo, columns: (x) => x as never });
    // The builder takes ms and stores them in the column's unit.
    const got = await drive(stream, c.chunks.map((ch) => new Table({ k: vectorFromArray(ch.k), t: vectorFromArray(Array.from(ch.t), type), v: vectorFromArray(ch.v) })));
    assert.is(show(got), show(want.rows), `Timestamp[${unit}]`);
    assert.is(await stream.operator.lateEvents(), want.late, `Timestamp[${unit}]: late events`);
    await backend.close();
  }
});

test('checkpoints: taken after each chunk that crosses a multiple of checkpointEvery, and at close', async () => {
  const c = genCase(7);
  const every = 250;
  const storage = new MemoryCheckpointStorage();
  const backend = await StateBackend.open({ checkpoints: { storage, retain: 100 } });
  const metas: StreamCheckpointMeta[] = [];
  const infos: CheckpointInfo[] = [];
  const results: CheckpointResult[] = [];
  const chunks = c.chunks.map((cols, index) => ({ cols, index }));
  const stream = windowedAggregation<{ cols: Columns; index: number }>({
    backend,
    name: 'w',
    spec: specOf(c),
    outOfOrdernessMs: c.ooo,
    checkpointEvery: every,
    columns: (ch) => ch.cols,
    sourceOffset: (ch) => ({ chunk: ch.index }),
    meta: (info) => {
      infos.push(info);
      return { rows: info.emittedRows };
    },
    onCheckpoint: (r, m) => {
      results.push(r);
      metas.push(m);
    },
  });
  await drive(stream, chunks);
  // Expected: the chunk index and event count of each checkpoint, computed by hand.
  const expected: { chunk: number; events: number }[] = [];
  let events = 0;
  c.chunks.forEach((ch, i) => {
    const before = events;
    events += ch.k.length;
    if (Math.floor(events / every) > Math.floor(before / every)) expected.push({ chunk: i, events });
  });
  expected.push({ chunk: c.chunks.length - 1, events });
  assert.is(metas.length, expected.length);
  // Rows emitted before each checkpoint, from the model: the rows of chunks up to and including it.
  const model = new WindowModel(c.size, c.slide, c.lateness);
  let max = -Infinity;
  let rows = 0;
  const rowsAfter: number[] = [];
  for (const ch of c.chunks) {
    for (let i = 0; i < ch.k.length; i++) {
      model.ingest(ch.k[i]!, ch.t[i]!, ch.v[i]!);
      max = Math.max(max, ch.t[i]!);
    }
    if (max > -Infinity) rows += model.advance(max - c.ooo).length;
    rowsAfter.push(rows);
  }
  const finalRows = rows + model.advance(Number.MAX_SAFE_INTEGER).length;
  metas.forEach((m, i) => {
    const last = i === metas.length - 1;
    const e = expected[i]!;
    assert.equal(m.source, { chunk: e.chunk }, `checkpoint ${i}: source`);
    assert.is(m.stream.events, e.events, `checkpoint ${i}: events`);
    assert.is(m.stream.final, last, `checkpoint ${i}: final`);
    assert.is(m.stream.name, 'w');
    assert.equal(m.app, { rows: last ? finalRows : rowsAfter[e.chunk] }, `checkpoint ${i}: rows emitted before it`);
    assert.is(infos[i]!.final, last);
  });
  assert.equal(results.map((r) => r.id), results.map((_, i) => i + 1));
  assert.is(stream.checkpoints.count, metas.length);
  assert.is(stream.checkpoints.lastId, metas.length);
  // The stored meta is what onCheckpoint saw.
  const restored = await StateBackend.restore({ storage });
  assert.equal(restoredStreamMeta(restored, 'w'), metas.at(-1));
  assert.is(restoredStreamMeta(restored, 'other'), undefined);
  await restored.close();
  await backend.close();
});

test('crash at a random chunk, restore, resume from meta: the output is the uninterrupted output', async () => {
  for (let seed = 21; seed <= 30; seed++) {
    const c = genCase(seed);
    const want = modelRun(c);
    const r = prng(seed * 7);
    const every = 100 + Math.floor(r() * 300);
    const crashAfter = Math.floor(r() * c.chunks.length);
    const storage = new MemoryCheckpointStorage();
    const options = (backend: StateBackend, out: ModelRow[]) =>
      windowedAggregation<{ cols: Columns; index: number }>({
        backend,
        name: 'q',
        spec: specOf(c),
        outOfOrdernessMs: c.ooo,
        checkpointEvery: every,
        columns: (ch) => ch.cols,
        sourceOffset: (ch) => ch.index,
        meta: () => ({ rows: out.length }),
      });
    const chunks = c.chunks.map((cols, index) => ({ cols, index }));

    // First run: consume output as it comes; stop dead after chunk `crashAfter`.
    const first: ModelRow[] = [];
    const b1 = await StateBackend.open({ shards: 2, checkpoints: { storage } });
    const s1 = options(b1, first);
    const reading = s1.readable.pipeTo(new WritableStream({ write: (b) => void first.push(...rowsOf(b)) })).catch(() => undefined);
    const w1 = s1.writable.getWriter();
    for (const ch of chunks.slice(0, crashAfter + 1)) await w1.write(ch);
    await w1.abort(new Error('crash'));
    await reading;
    await b1.close();

    // Second run: restore the newest checkpoint (if any) and resume where it says.
    let b2: StateBackend;
    let from = 0;
    let kept: ModelRow[] = [];
    const hasCheckpoint = (await storage.list('manifests/')).length > 0;
    if (hasCheckpoint) {
      b2 = await StateBackend.restore({ storage, shards: 3 });
      const meta = restoredStreamMeta(b2, 'q')!;
      from = (meta.source as number) + 1;
      kept = first.slice(0, (meta.app as { rows: number }).rows);
    } else {
      b2 = await StateBackend.open({ checkpoints: { storage } });
    }
    const second: ModelRow[] = [...kept];
    const s2 = options(b2, second);
    const rest = await drive(s2, chunks.slice(from));
    second.push(...rest);
    const where = `seed ${seed}, crash after chunk ${crashAfter} of ${chunks.length}, resumed at ${from}`;
    assert.is(second.length, want.rows.length, `${where}: rows`);
    assert.is(show(second), show(want.rows), where);
    assert.is(await s2.operator.lateEvents(), want.late, `${where}: late events`);
    assert.is(s2.events, c.chunks.reduce((a, ch) => a + ch.k.length, 0), `${where}: events`);
    await b2.close();
  }
});

test('an operator without windows emits the final aggregate of every key at close', async () => {
  const backend = await StateBackend.open();
  const stream = windowedAggregation({
    backend,
    name: 'totals',
    spec: { key: { field: 'user', type: 'utf8' }, time: 't', aggregates: { n: { fn: 'count' }, spent: { fn: 'sum', field: 'x' } } },
  });
  const out: RecordBatch[] = [];
  const done = stream.readable.pipeTo(new WritableStream({ write: (b) => void out.push(b) }));
  const w = stream.writable.getWriter();
  await w.write({ user: ['b', 'a', 'b'], t: [1, 2, 3], x: [1, 2, 3] });
  await w.write({ user: ['a', 'é'], t: [4, 5], x: [10, null] });
  assert.is(out.length, 0, 'nothing is emitted before close');
  await w.close();
  await done;
  const rows = out.flatMap((b) => b.toArray().map((r) => r.toJSON()));
  assert.equal(rows.map((r) => [r['user'], Number(r['n']), r['spent']]), [['a', 2, 12], ['b', 2, 4], ['é', 1, null]]);
  await backend.close();
});

test('bad options are refused up front; a bad batch or a failing checkpoint errors the stream', async () => {
  const backend = await StateBackend.open();
  const spec: AggregateSpec = { key: { field: 'k', type: 'int64' }, time: 't', window: { kind: 'tumbling', size: 10 }, aggregates: { n: { fn: 'count' } } };
  const refused = (o: object, part: string) => {
    try {
      windowedAggregation({ backend, name: 'x', spec, ...o } as never);
    } catch (e) {
      assert.instance(e, CairnError);
      assert.is((e as CairnError).kind, 'invalid');
      assert.ok((e as Error).message.includes(part), (e as Error).message);
      return;
    }
    assert.unreachable(`accepted ${show(o)}`);
  };
  refused({ outOfOrdernessMs: -1 }, 'outOfOrdernessMs');
  refused({ outOfOrdernessMs: 1.5 }, 'outOfOrdernessMs');
  refused({ checkpointEvery: 0 }, 'checkpointEvery');
  refused({ sourceOffset: 3 }, 'sourceOffset');
  refused({ bogus: 1 }, "unknown option 'bogus'");
  refused({ spec: { ...spec, window: { kind: 'hopping', size: 10, slide: 3 } } }, 'slide must divide size');

  // A null key rejects the batch with 'invalid' and errors both sides of the stream.
  const s = windowedAggregation({ backend, name: 'y', spec });
  const reading = s.readable.pipeTo(new WritableStream()).then(() => null, (e: unknown) => e);
  const w = s.writable.getWriter();
  let writeError: unknown = null;
  await w.write({ k: [1, null], t: [1, 2] }).catch((e: unknown) => (writeError = e));
  assert.instance(writeError, CairnError);
  assert.is((writeError as CairnError).kind, 'invalid');
  assert.instance(await reading, CairnError);

  // checkpointEvery on a backend without checkpoint storage: the first checkpoint fails the stream.
  const s2 = windowedAggregation({ backend, name: 'z', spec, checkpointEvery: 2 });
  const r2 = s2.readable.pipeTo(new WritableStream()).then(() => null, (e: unknown) => e);
  const w2 = s2.writable.getWriter();
  await w2.write({ k: [1, 2], t: [1, 2] }).catch(() => undefined);
  const e2 = await r2;
  assert.instance(e2, CairnError);
  assert.ok((e2 as Error).message.includes('without checkpoint storage'), (e2 as Error).message);
  // A second stream taking checkpoints of the same backend would overwrite the first one's position
  // in every checkpoint's meta: refused, with or without checkpointEvery, and declaring nothing.
  for (const o of [{ checkpointEvery: 5 }, { checkpointOnClose: true }]) {
    refused({ ...o, name: 'second' }, "already taken by stream 'z'");
  }
  // 'second' was not declared by the refused calls: declaring it now with another spec works.
  backend.aggregate('second', { key: { field: 'k', type: 'utf8' }, aggregates: { n: { fn: 'count' } } });
  windowedAggregation({ backend, name: 'no-checkpoints', spec });
  await backend.close();
});

test.run();
