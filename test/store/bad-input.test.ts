// Proves that bad input gets a typed `invalid` error that names the problem, and that the state is
// exactly as it was before the call (compared through a full export before and after). Also covers
// the closed backend (`closed`), the memory cap (`unavailable`, state still usable), value state
// against a Map model, and Arrow input (Table, RecordBatch, Dictionary keys, nulls).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tableFromArrays, tableFromJSON, vectorFromArray, makeData, makeVector, Table, Vector, type Data, Dictionary, Utf8, Int32, Int64, Uint64, TimestampSecond, TimestampMillisecond, TimestampMicrosecond, TimestampNanosecond, makeTable } from 'apache-arrow';
import { StateBackend, CairnError, MemoryCheckpointStorage, FsCheckpointStorage, hashKey } from '../../src/index.js';
import { rowsOf, show } from '../helpers.js';
import { WasmCore, MEM_CAP_MAX_BYTES } from '../../bindings/core.js';
import { normalizeAggregateSpec, storeConfigOf } from '../../src/store/spec.js';

const SPEC = {
  key: { field: 'user', type: 'utf8' as const },
  aggregates: { n: { fn: 'count' as const }, spend: { fn: 'sum' as const, field: 'amount' }, top: { fn: 'max' as const, field: 'amount' } },
};

/** An Arrow table from vectors or Data (makeTable takes typed arrays only). */
function arrowTable(cols: Record<string, Data | Vector>): Table {
  return new Table(Object.fromEntries(Object.entries(cols).map(([k, v]) => [k, v instanceof Vector ? v : makeVector(v)])));
}

async function expectError(p: Promise<unknown> | (() => unknown), kind: string, re: RegExp): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.instance(e, CairnError, `expected CairnError, got ${String(e)}`);
    assert.is((e as CairnError).kind, kind, (e as Error).message);
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected a ${kind} error matching ${re}`);
}

test('bad batches are rejected whole and leave state untouched', async () => {
  const b = await StateBackend.open({ shards: 2 });
  const op = b.aggregate('t', SPEC);
  await op.ingest({ user: ['alice', 'bob', 'alice'], amount: [10, 5, 20] });
  const before = show(rowsOf(await op.toArrow(), 'user'));
  const cases: [unknown, RegExp][] = [
    [{ user: ['a', 'b'], amount: [1] }, /column 'amount' has length 1, expected 2/],
    [{ user: ['a', 'b'] }, /missing field 'amount'/],
    [{ user: ['a', null], amount: [1, 2] }, /row 1 is null/],
    [{ user: ['a', undefined], amount: [1, 2] }, /row 1 is null/],
    [{ user: [1, 2], amount: [1, 2] }, /expected a string for a utf8 key/],
    [{ user: ['a', 'b'], amount: ['x', 2] }, /expected a number/],
    [{ user: ['a'], amount: [1], extra: [1, 2] }, /column 'extra' has length 2/],
    // Columns the spec does not read are checked as columns too.
    [{ user: ['a'], amount: [1], note: null }, /column 'note' must be an array, .*found null/],
    [{ user: ['a'], amount: [1], note: undefined }, /column 'note' must be an array, .*found undefined/],
    [{ user: ['a'], amount: [1], note: 5 }, /column 'note' must be an array, .*found number/],
    [null, /expected an Arrow Table/],
    [{ user: 'ab', amount: [1, 2] }, /column 'user' must be an array, a typed array or an Arrow vector, found string/],
    [{ user: ['a', 'b'], amount: 7 }, /column 'amount' must be an array/],
    // Objects with a length that are not columns would read as all nulls.
    [{ user: ['a', 'b'], amount: vectorFromArray([1, 2]).data[0] }, /column 'amount' must be an array, .*found an object \(Data\): pass the Arrow vector/],
    [{ user: ['a', 'b'], amount: { length: 2, 0: 1, 1: 2 } }, /column 'amount' must be an array, .*found an object \(Object\)/],
    [{ user: ['a', 'b'], amount: new DataView(new ArrayBuffer(16)) }, /column 'amount' must be an array/],
    [{ user: vectorFromArray(['a', 'b'], new Utf8()).data[0], amount: [1, 2] }, /column 'user' must be an array/],
    // A 64-bit dictionary index outside the dictionary.
    [arrowTable({ user: makeData({ type: new Dictionary(new Utf8(), new Int64() as never), data: BigInt64Array.of(0n, 1n << 60n) as never, dictionary: vectorFromArray(['a'], new Utf8()) }), amount: vectorFromArray([1, 2]) }), /row 1: dictionary index 1152921504606846976 is outside/],
    // Dictionary indices outside the dictionary (Arrow does not check them).
    [arrowTable({ user: makeData({ type: new Dictionary(new Utf8(), new Int32()), data: new Int32Array([0, 5]), dictionary: vectorFromArray(['a'], new Utf8()) }), amount: vectorFromArray([1, 2]) }), /row 1: dictionary index 5 is outside the dictionary's 1 entries/],
    [arrowTable({ user: makeData({ type: new Dictionary(new Utf8(), new Int32()), data: new Int32Array([0, -1]), dictionary: vectorFromArray(['a'], new Utf8()) }), amount: vectorFromArray([1, 2]) }), /row 1: dictionary index -1 is outside/],
  ];
  for (const [batch, re] of cases) {
    await expectError(op.ingest(batch as never), 'invalid', re);
    assert.is(show(rowsOf(await op.toArrow(), 'user')), before, `state changed after ${show(batch)}`);
  }
  // A Table or RecordBatch of another copy of apache-arrow (same shape, other classes: what an
  // application on another arrow version passes) is named as such, not read as plain columns.
  const real = arrowTable({ user: vectorFromArray(['a']), amount: vectorFromArray([1]) });
  for (const name of ['Table', 'RecordBatch']) {
    const Foreign = { [name]: class { schema = real.schema; getChild(f: string) { return real.getChild(f); } } }[name]!;
    await expectError(op.ingest(new Foreign() as never), 'invalid', new RegExp(`an Arrow ${name} of another copy of apache-arrow.*npm dedupe`));
    assert.is(show(rowsOf(await op.toArrow(), 'user')), before);
  }
  // Unknown checkpoint options are refused by open and resume alike, whatever storage holds.
  const storage = new MemoryCheckpointStorage();
  await expectError(StateBackend.open({ checkpoints: { storage, bogus: 1 } as never }), 'invalid', /open: checkpoints: unknown option 'bogus'/);
  await expectError(StateBackend.resume({ checkpoints: { storage, bogus: 1 } as never }), 'invalid', /resume: checkpoints: unknown option 'bogus'/);
  // A storage or codec that is not one, or retain out of range, is refused before anything starts
  // (it was an 'unavailable' failure of the first list or of every checkpoint, which callers retry).
  for (const [bad, re] of [
    [{}, /storage: expected a CheckpointStorage .* found undefined/],
    [{ storage: 'ckpt' }, /storage: expected a CheckpointStorage .* found "ckpt"/],
    [{ storage: { put() {}, get() {}, list() {} } }, /storage: expected a CheckpointStorage/],
    [{ storage, codec: 'zstd' }, /codec: expected a Codec .* found "zstd"/],
    [{ storage, codec: { name: 'lz4', compress() {}, decompress() {} } }, /codec: expected a Codec/],
    [{ storage, retain: 0 }, /retain: expected an integer in \[1, 1000\], found 0/],
    [{ storage, maxDeltaRatio: NaN }, /maxDeltaRatio: expected a number >= 0, found NaN/],
  ] as [object, RegExp][]) {
    await expectError(StateBackend.open({ workers: true, checkpoints: bad as never }), 'invalid', re);
    if (Object.keys(bad).length === 0) continue; // resume and restore say "storage is required"
    await expectError(StateBackend.resume({ checkpoints: { storage, ...bad } as never }), 'invalid', re);
    await expectError(StateBackend.restore({ storage, ...bad } as never), 'invalid', re);
  }
  assert.equal(await storage.list(''), [], 'nothing written by refused options');
  await expectError(() => new FsCheckpointStorage(undefined as never), 'invalid', /FsCheckpointStorage: expected a directory path, found undefined/);
  // Options that are not an object are refused as such.
  for (const o of [null, 5, 'x', [1]]) {
    await expectError(StateBackend.open(o as never), 'invalid', /open: expected an options object/);
    await expectError(StateBackend.restore(o as never), 'invalid', /restore: expected an options object/);
  }
  await b.close();
});

test('bad int64 keys are rejected whole and leave state untouched; Int32 and Uint64 Arrow keys are read exactly', async () => {
  const spec = { key: { field: 'k', type: 'int64' as const }, aggregates: { n: { fn: 'count' as const }, s: { fn: 'sum' as const, field: 'v' } } };
  const b = await StateBackend.open({ shards: 2 });
  const op = b.aggregate('i', spec);
  await op.ingest(arrowTable({ k: makeData({ type: new Int32(), data: new Int32Array([-7, 2147483647, -7]) }), v: vectorFromArray([1, 2, 3]) }));
  await op.ingest(arrowTable({ k: makeData({ type: new Uint64(), data: new BigUint64Array([2n ** 63n - 1n, 0n]) }), v: vectorFromArray([4, 5]) }));
  const expected = [
    { key: -7n, n: 2, s: 4 },
    { key: 0n, n: 1, s: 5 },
    { key: 2147483647n, n: 1, s: 2 },
    { key: 2n ** 63n - 1n, n: 1, s: 4 },
  ];
  const now = async () => rowsOf(await op.toArrow(), 'k').sort((x, y) => ((x['key'] as bigint) < (y['key'] as bigint) ? -1 : 1));
  assert.equal(await now(), expected);
  const cases: [unknown, RegExp][] = [
    [{ k: [1, 1.5], v: [1, 2] }, /row 1: expected an integer/],
    [{ k: [1, NaN], v: [1, 2] }, /row 1: expected an integer/],
    [{ k: [1, 2 ** 53], v: [1, 2] }, /row 1: expected an integer/],
    [{ k: [1, 2n ** 63n], v: [1, 2] }, /row 1: 9223372036854775808 does not fit int64/],
    [{ k: [1, -(2n ** 63n) - 1n], v: [1, 2] }, /does not fit int64/],
    [{ k: [1, null], v: [1, 2] }, /row 1 is null/],
    [{ k: [1, '2'], v: [1, 2] }, /row 1: expected an integer/],
    [arrowTable({ k: makeData({ type: new Uint64(), data: new BigUint64Array([1n, 2n ** 64n - 1n]) }), v: vectorFromArray([1, 2]) }), /row 1: 18446744073709551615 does not fit int64/],
    [arrowTable({ k: vectorFromArray([1, null], new Int32()), v: vectorFromArray([1, 2]) }), /1 null keys/],
    [arrowTable({ k: vectorFromArray([1.5, 2]), v: vectorFromArray([1, 2]) }), /must be an integer column/],
  ];
  for (const [batch, re] of cases) {
    await expectError(op.ingest(batch as never), 'invalid', re);
    assert.equal(await now(), expected, `state changed after ${show(batch)}`);
  }
  await b.close();
});

test('Arrow utf8 keys that are not valid UTF-8 are refused whole, naming the row; state unchanged', async () => {
  // Keys given as bytes: an invalid sequence would be a key of its own that toArrow() decodes to
  // the same text as another key (U+FFFD), and that no string could name in get or delete.
  const enc = new TextEncoder();
  const utf8 = (keys: Uint8Array[]) => {
    const offsets = new Int32Array(keys.length + 1);
    keys.forEach((k, i) => (offsets[i + 1] = offsets[i]! + k.length));
    const bytes = new Uint8Array(offsets[keys.length]!);
    keys.forEach((k, i) => bytes.set(k, offsets[i]!));
    return makeData({ type: new Utf8(), length: keys.length, valueOffsets: offsets, data: bytes });
  };
  const batch = (keys: Uint8Array[]) => arrowTable({ user: utf8(keys), amount: makeData({ type: new Int32(), data: Int32Array.from(keys, (_, i) => i + 1) }) });
  const cases: [string, Uint8Array[], number][] = [
    ['a lone 0xFF', [enc.encode('ok'), new Uint8Array([0x61, 0xff])], 1],
    ['an encoded surrogate', [new Uint8Array([0xed, 0xa0, 0x80]), enc.encode('é')], 0],
    ['a truncated last character', [enc.encode('é'), new Uint8Array([0x61, 0xc3])], 1],
    // Valid when concatenated (C3 A9 is "é"), not key by key.
    ['a character split over two keys', [new Uint8Array([0x61, 0xc3]), new Uint8Array([0xa9])], 1],
    ['a character split over two keys around an empty one', [new Uint8Array([0xe6, 0x97]), new Uint8Array(0), new Uint8Array([0xa5])], 2],
  ];
  for (const shards of [1, 3]) {
    const b = await StateBackend.open({ shards });
    const op = b.aggregate('t', SPEC);
    await op.ingest(batch([enc.encode('é'), enc.encode('日本'), new Uint8Array(0), enc.encode('a\uFFFD')]));
    const before = show(rowsOf(await op.toArrow(), 'user'));
    for (const [what, keys, row] of cases) {
      await expectError(op.ingest(batch(keys)), 'invalid', new RegExp(`key field 'user' row ${row}: expected UTF-8 text`));
      assert.is(show(rowsOf(await op.toArrow(), 'user')), before, `${what}: state changed`);
    }
    // Dictionary<Utf8> keys whose dictionary holds invalid bytes: refused the same way.
    const dict = makeData({ type: new Dictionary(new Utf8(), new Int32()), data: new Int32Array([0, 1]), dictionary: makeVector(utf8([enc.encode('x'), new Uint8Array([0xc0, 0x80])])) });
    await expectError(op.ingest(arrowTable({ user: dict, amount: makeData({ type: new Int32(), data: new Int32Array([1, 2]) }) })), 'invalid', /row 1: expected UTF-8 text, found the bytes c0 80/);
    assert.is(show(rowsOf(await op.toArrow(), 'user')), before, 'dictionary: state changed');
    // The same with a null entry in the dictionary (a layout decoded row by row).
    const withNull = makeData({ type: new Utf8(), length: 3, nullCount: 1, nullBitmap: new Uint8Array([0b011]), valueOffsets: new Int32Array([0, 1, 3, 3]), data: new Uint8Array([0x78, 0x61, 0xff]) });
    const dict2 = makeData({ type: new Dictionary(new Utf8(), new Int32()), data: new Int32Array([0, 1]), dictionary: makeVector(withNull) });
    await expectError(op.ingest(arrowTable({ user: dict2, amount: makeData({ type: new Int32(), data: new Int32Array([1, 2]) }) })), 'invalid', /row 1: expected UTF-8 text, found the bytes 61 ff/);
    assert.is(show(rowsOf(await op.toArrow(), 'user')), before, 'dictionary with a null entry: state changed');
    assert.equal(rowsOf(await op.toArrow(), 'user').map((r) => r['key']).sort(), ['', 'a\uFFFD', 'é', '日本'].sort());
    await b.close();
  }
});

test('Arrow timestamp times are read in their unit and rounded down to ms', async () => {
  const b = await StateBackend.open();
  const window = { kind: 'tumbling' as const, size: 1000 };
  const cases: [string, unknown, bigint[], number[]][] = [
    ['s', new TimestampSecond(), [1n, 5n], [1000, 5000]],
    ['ms', new TimestampMillisecond(), [1500n, 5000n], [1000, 5000]],
    ['us', new TimestampMicrosecond(), [1_999_999n, -1n], [1000, -1000]],
    ['ns', new TimestampNanosecond(), [2_000_000_000n, -1_000_000_001n], [2000, -2000]],
  ];
  for (const [unit, type, raw, starts] of cases) {
    const op = b.aggregate(`t${unit}`, { key: { field: 'k', type: 'int64' }, time: 't', window, aggregates: { n: { fn: 'count' } } });
    await op.ingest(arrowTable({ k: makeData({ type: new Int64(), data: new BigInt64Array([1n, 2n]) }), t: makeData({ type: type as TimestampSecond, data: BigInt64Array.from(raw) }) }));
    const got = rowsOf(await op.toArrow(), 'k').map((r) => r['window_start']).sort((x, y) => (x as number) - (y as number));
    assert.equal(got, [...starts].sort((x, y) => x - y), `Timestamp[${unit}]`);
  }
  // Out of range once in ms: the message gives the value in its unit and in ms.
  const op = b.aggregate('tover', { key: { field: 'k', type: 'int64' }, time: 't', window, aggregates: { n: { fn: 'count' } } });
  const over = 9_007_199_254_741n; // seconds: within ±2^53 itself, beyond it as ms
  await expectError(
    op.ingest(arrowTable({ k: makeData({ type: new Int64(), data: new BigInt64Array([1n]) }), t: makeData({ type: new TimestampSecond(), data: BigInt64Array.from([over]) }) })),
    'invalid', /time field 't' row 0: 9007199254741 s is 9007199254741000 ms, outside ±2\^53 ms/,
  );
  assert.is((await op.toArrow()).numRows, 0);
  await b.close();
});

test('bad event times are rejected whole, as typed and plain arrays, and leave state untouched', async () => {
  // Float64Array times take their own path (checked in TypeScript, converted to int64 in Wasm).
  const b = await StateBackend.open({ shards: 2 });
  const op = b.aggregate('w', { ...SPEC, time: 'ts', window: { kind: 'tumbling', size: 10 } });
  await op.ingest({ user: ['alice', 'bob'], ts: new Float64Array([3, 2 ** 53]), amount: [10, 5] });
  await op.ingest({ user: ['alice', 'bob'], ts: [-(2 ** 53), 14], amount: [1, 2] });
  const before = show(rowsOf(await op.toArrow(), 'user'));
  const bad = [NaN, 1.5, -0.25, Infinity, -Infinity, 2 ** 53 + 2, -(2 ** 53) - 2];
  for (const v of bad) {
    for (const ts of [new Float64Array([7, v]), [7, v]]) {
      await expectError(op.ingest({ user: ['carol', 'dave'], ts, amount: [1, 2] }), 'invalid', /time field 'ts' row 1: expected an integer number of ms within ±2\^53/);
      assert.is(show(rowsOf(await op.toArrow(), 'user')), before, `state changed after ts ${show([...ts])}`);
    }
  }
  // Both forms give the same windows (starts are multiples of 10 at or below each time).
  const fired = rowsOf(await op.advanceWatermark(2n ** 53n + 100n), 'user');
  assert.equal(fired.map((r) => [r['key'], r['window_start'], r['n']]), [
    ['alice', -9_007_199_254_741_000, 1], ['alice', 0, 1], ['bob', 10, 1], ['bob', 9_007_199_254_740_990, 1],
  ]);
  await b.close();
});

test('bad specs: unknown aggregate, unknown fields, missing field, reused name', async () => {
  const b = await StateBackend.open();
  await expectError(() => b.aggregate('x', { ...SPEC, aggregates: { n: { fn: 'median' as never } } }), 'invalid', /unknown function "median"/);
  // Names of Object.prototype are not functions (they were taken as such, with garbage results).
  for (const fn of ['toString', 'constructor', 'hasOwnProperty', 'valueOf', '__proto__']) {
    await expectError(() => b.aggregate('x', { ...SPEC, aggregates: { n: { fn: fn as never, field: 'amount' } } }), 'invalid', new RegExp(`unknown function "${fn}"`));
  }
  await expectError(() => b.aggregate('x', { ...SPEC, aggregates: { n: { fn: 1n as never } } }), 'invalid', /unknown function a bigint/);
  await expectError(() => b.aggregate('x', { ...SPEC, window: { kind: Symbol('w') as never } } as never), 'invalid', /window.kind: .* found a symbol/);
  await expectError(() => b.aggregate('x', { ...SPEC, aggregates: { s: { fn: 'sum' } } }), 'invalid', /sum needs a field/);
  await expectError(() => b.aggregate('x', { ...SPEC, colour: 1 } as never), 'invalid', /unknown field 'colour'/);
  await expectError(() => b.aggregate('x', { ...SPEC, key: { field: 'user', type: 'string' as never } }), 'invalid', /key type/);
  await expectError(() => b.aggregate('bad name!', SPEC), 'invalid', /operator name/);
  // A name is a segment of its checkpoint files' names, which storage refuses when it starts with '.'.
  for (const name of ['.', '..', '.hidden']) {
    await expectError(() => b.aggregate(name, SPEC), 'invalid', /operator name: .*not starting with '\.'/);
    await expectError(() => b.values(name, { key: { type: 'utf8' } }), 'invalid', /operator name/);
  }
  // A utf8 key column holds strings, which no aggregate reads (each batch would be refused); nor is
  // it a time field.
  for (const fn of ['count', 'sum', 'min', 'max', 'mean', 'first', 'last'] as const) {
    await expectError(() => b.aggregate('x', { ...SPEC, aggregates: { v: { fn, field: 'user' } } }), 'invalid', new RegExp(`${fn} of the utf8 key field 'user'`));
  }
  await expectError(() => b.aggregate('x', { ...SPEC, time: 'user', window: { kind: 'tumbling', size: 10 } }), 'invalid', /time field 'user' is the utf8 key field/);
  // An int64 key is a number: its sum is allowed.
  const ids = b.aggregate('ids', { key: { field: 'id', type: 'int64' }, aggregates: { s: { fn: 'sum', field: 'id' } } });
  await ids.ingest({ id: [5n, 5n] });
  assert.equal(await ids.get(5n), { s: 10 });
  b.aggregate('a.b-c_1', SPEC); // a dot elsewhere is fine
  b.aggregate('t', SPEC);
  await expectError(() => b.aggregate('t', { ...SPEC, aggregates: { n: { fn: 'count' } } }), 'invalid', /different spec: names/);
  // A field named after an Object.prototype member, absent from a batch of plain columns, is missing.
  const proto = b.aggregate('p', { key: { field: 'user', type: 'utf8' }, aggregates: { s: { fn: 'sum', field: 'constructor' }, t: { fn: 'max', field: 'toString' } } });
  await expectError(proto.ingest({ user: ['a'] }), 'invalid', /missing field 'constructor'/);
  await expectError(proto.ingest({ user: ['a'], constructor: [1] }), 'invalid', /missing field 'toString'/);
  await proto.ingest({ user: ['a'], constructor: [1], toString: [2] });
  assert.equal(await proto.get('a'), { s: 1, t: 2 });
  await expectError(() => StateBackend.open({ shards: 0 }), 'invalid', /shards/);
  await expectError(() => StateBackend.open({ keyGroups: 40000 }), 'invalid', /keyGroups/);
  await expectError(() => StateBackend.open({ colour: 1 } as never), 'invalid', /unknown option 'colour'/);
  await expectError(() => StateBackend.open({ workers: 'yes' } as never), 'invalid', /workers: expected true or false, found yes/);
  await expectError(() => StateBackend.open({ workers: Object.create(null) } as never), 'invalid', /workers: expected true or false, found object/);
  await b.close();
});

test('a closed backend answers with kind closed', async () => {
  const b = await StateBackend.open();
  const op = b.aggregate('t', SPEC);
  await b.close();
  await expectError(() => op.ingest({ user: ['a'], amount: [1] }), 'closed', /closed/);
  await expectError(() => b.aggregate('u', SPEC), 'closed', /closed/);
  await expectError(() => b.metrics(), 'closed', /closed/);
  await expectError(() => op.lateEvents(), 'closed', /closed/);
  await expectError(() => op.advanceWatermark(1), 'closed', /closed/);
  await expectError(() => op.toArrow(), 'closed', /closed/);
});

test('the memory cap gives a clear error, changes nothing, and the state stays usable', async () => {
  const b = await StateBackend.open({ memoryCapBytes: 8 * 1024 * 1024 });
  const op = b.aggregate('t', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
  let next = 0;
  let failed = false;
  const model = new Map<number, number>();
  while (!failed && next < 10_000_000) {
    const k = new BigInt64Array(20_000).map((_, i) => BigInt(next + i));
    const before = (await b.metrics()).shards[0]!.rows;
    try {
      await op.ingest({ k });
      for (let i = 0; i < k.length; i++) model.set(next + i, 1);
      next += k.length;
    } catch (e) {
      assert.instance(e, CairnError);
      assert.is((e as CairnError).kind, 'unavailable');
      assert.match((e as Error).message, /memory cap/);
      assert.is((await b.metrics()).shards[0]!.rows, before, 'rows changed by a failed batch');
      assert.is((await b.metrics()).shards[0]!.events, next, 'a failed batch is not counted as events');
      failed = true;
    }
  }
  assert.ok(failed, 'cap never reached');
  assert.is((await op.toArrow()).numRows, model.size);
  // Still usable: existing keys update, deletes free room.
  await op.ingest({ k: new BigInt64Array([0n, 1n]) });
  assert.equal(await op.get(0), { n: 2 });
  assert.ok(await op.delete(5));
  assert.is(await op.get(5), undefined);
  await b.close();
});

test('the memory cap with utf8 keys and value state: refused calls change nothing, the state stays usable', async () => {
  const b = await StateBackend.open({ memoryCapBytes: 6 * 1024 * 1024 });
  try {
    const op = b.aggregate('t', { key: { field: 'k', type: 'utf8' }, aggregates: { n: { fn: 'count' }, s: { fn: 'sum', field: 'v' } } });
    const kv = b.values('kv', { key: { type: 'utf8' } });
    const keyOf = (i: number) => `key-${i}-${'x'.repeat(i % 40)}`;
    let next = 0;
    let refused = false;
    while (!refused && next < 1_000_000) {
      const k = Array.from({ length: 4000 }, (_, j) => keyOf(next + j));
      const before = show(rowsOf(await op.toArrow(), 'k'));
      try {
        await op.ingest({ k, v: new Float64Array(k.length).fill(1) });
        next += k.length;
      } catch (e) {
        assert.instance(e, CairnError);
        assert.is((e as CairnError).kind, 'unavailable');
        assert.is(show(rowsOf(await op.toArrow(), 'k')), before, 'a refused utf8 batch changed state');
        refused = true;
      }
    }
    assert.ok(refused, 'cap never reached with utf8 keys');
    assert.is((await op.toArrow()).numRows, next);
    // Usable: existing keys update; deletes make room for new and re-inserted keys.
    await op.ingest({ k: [keyOf(0)], v: [5] });
    assert.equal(await op.get(keyOf(0)), { n: 2, s: 6 });
    for (let d = 1; d < 3000; d++) assert.ok(await op.delete(keyOf(d)));
    await op.ingest({ k: ['brand-new', keyOf(1)], v: [1, 3] });
    assert.equal(await op.get(keyOf(1)), { n: 1, s: 3 });
    // Value state at the cap: the refused put leaves no key, and earlier values stay intact.
    let puts = 0;
    let vrefused: unknown = null;
    while (vrefused === null && puts < 100_000) {
      try {
        await kv.put(`v${puts}`, new Uint8Array(2000).fill(puts & 255));
        puts++;
      } catch (e) {
        vrefused = e;
      }
    }
    assert.instance(vrefused, CairnError);
    assert.is((vrefused as CairnError).kind, 'unavailable');
    assert.is(await kv.get(`v${puts}`), undefined);
    assert.equal(await kv.get('v1'), new Uint8Array(2000).fill(1));
    // A bigger overwrite that does not fit leaves the old value.
    await expectError(kv.put('v1', new Uint8Array(4_000_000)), 'unavailable', /memory cap/);
    assert.equal(await kv.get('v1'), new Uint8Array(2000).fill(1));
    assert.ok(await kv.delete('v0'));
    await kv.put('v0', new Uint8Array(10));
    assert.equal(await kv.get('v0'), new Uint8Array(10));
  } finally {
    await b.close();
  }
});

test('tiny memory caps: every call is applied or refused unavailable, changing nothing; never internal', async () => {
  // Caps around a store's first allocations, where an arena's minimum growth (4 KiB) is larger than
  // the bytes a call asks for: once seen as 'internal' (an assertion after a reservation passed).
  let applied = 0;
  let refusedCalls = 0;
  for (const kind of ['values-utf8', 'values-int64', 'agg-utf8', 'agg-int64'] as const) {
    const utf8 = kind.endsWith('utf8');
    for (let cap = 4000; cap <= 16_000; cap += 250) {
      const b = await StateBackend.open({ memoryCapBytes: cap });
      try {
        const values = kind.startsWith('values') ? b.values('v', { key: { type: utf8 ? 'utf8' : 'int64' } }) : null;
        const agg = values ? null : b.aggregate('a', { key: { field: 'k', type: utf8 ? 'utf8' : 'int64' }, aggregates: { n: { fn: 'count' } } });
        const model = new Map<string, number>();
        for (let i = 0; i < 6; i++) {
          const key = utf8 ? `key-${i}-${'y'.repeat(i * 7)}` : BigInt(i * 1000);
          const bytes = async () => (await b.metrics()).shards[0]!.stateBytes;
          let before: number;
          try {
            before = await bytes();
          } catch (e) {
            // The operator itself could not open under this cap: that is the error every call gets.
            assert.is((e as CairnError).kind, 'unavailable', `${kind} cap ${cap}: ${(e as Error).message}`);
            assert.match((e as Error).message, /failed to open or restore: open store: shard memory cap reached/);
            break;
          }
          try {
            if (values) await values.put(key, new Uint8Array(10 + i * 300).fill(i));
            else await agg!.ingest({ k: typeof key === 'string' ? [key] : [key] });
            model.set(String(key), i);
            applied++;
          } catch (e) {
            assert.instance(e, CairnError, `${kind} cap ${cap}: ${String(e)}`);
            assert.is((e as CairnError).kind, 'unavailable', `${kind} cap ${cap} call ${i}: ${(e as Error).message}`);
            assert.match((e as Error).message, /memory cap reached.*of memoryCapBytes \d+\); nothing was changed/);
            assert.is(await bytes(), before, `${kind} cap ${cap}: a refused call changed the state bytes`);
            refusedCalls++;
          }
        }
        // What was applied is there, and nothing else.
        if (values) {
          for (let i = 0; i < 6; i++) {
            const key = utf8 ? `key-${i}-${'y'.repeat(i * 7)}` : BigInt(i * 1000);
            const got = await values.get(key).catch(() => 'failed');
            if (model.has(String(key))) assert.equal(got, new Uint8Array(10 + i * 300).fill(i));
            else if (got !== 'failed') assert.is(got, undefined);
          }
        } else if (model.size > 0) {
          assert.is((await agg!.toArrow()).numRows, model.size);
        }
      } finally {
        await b.close();
      }
    }
  }
  assert.ok(applied > 0 && refusedCalls > 0, `the sweep should both apply and refuse calls (${applied}, ${refusedCalls})`);
});

test('a batch split over shards that hits one shard\'s memory cap is refused on every shard', async () => {
  for (const [shards, workers] of [[2, false], [3, false], [2, true]] as const) {
    const keyGroups = 128;
    const b = await StateBackend.open({ shards, workers, keyGroups, memoryCapBytes: 8 * 1024 * 1024 });
    try {
      const op = b.aggregate('t', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
      // Keys by the shard that owns them (contiguous key-group ranges).
      const shardOf = (k: bigint) => Math.floor(((hashKey(k) % keyGroups) * shards) / keyGroups);
      let probe = 0n;
      const keysFor = (shard: number, n: number): bigint[] => {
        const out: bigint[] = [];
        while (out.length < n) { if (shardOf(probe) === shard) out.push(probe); probe++; }
        return out;
      };
      const model = new Map<bigint, number>();
      const apply = async (keys: bigint[]): Promise<boolean> => {
        try {
          await op.ingest({ k: BigInt64Array.from(keys) });
        } catch (e) {
          assert.instance(e, CairnError);
          assert.is((e as CairnError).kind, 'unavailable');
          assert.match((e as Error).message, /memory cap/);
          return false;
        }
        for (const k of keys) model.set(k, (model.get(k) ?? 0) + 1);
        return true;
      };
      // Fill shard 0 until it refuses; every other shard holds a few keys.
      const others = Array.from({ length: shards - 1 }, (_, i) => keysFor(i + 1, 5)).flat();
      assert.ok(await apply(others));
      let filled = false;
      for (let i = 0; i < 400 && !filled; i++) filled = !(await apply(keysFor(0, 20_000)));
      assert.ok(filled, 'shard 0 never reached its cap');
      // A batch with new keys for every shard, too many for shard 0: refused on all of them.
      const before = await b.metrics();
      assert.not.ok(await apply([...others, ...keysFor(1, 50), ...keysFor(0, 20_000)]), 'the mixed batch was accepted');
      // A batch for shard 0 alone is refused too.
      assert.not.ok(await apply(keysFor(0, 20_000)), 'the batch for shard 0 alone was accepted');
      const after = await b.metrics();
      assert.equal(after.shards.map((x) => x.rows), before.shards.map((x) => x.rows), `rows per shard after the refused batches (shards ${shards}, workers ${workers})`);
      assert.equal(after.keyGroups.map((g) => g.events), before.keyGroups.map((g) => g.events), 'refused batches are not counted as routed events');
      const rows = rowsOf(await op.toArrow(), 'k');
      assert.is(rows.length, model.size);
      for (const r of rows) assert.is(r['n'], model.get(r['key'] as bigint), `count of key ${r['key']}`);
      // Still usable, on every shard.
      assert.ok(await apply(others));
      assert.equal(await op.get(others[0]!), { n: model.get(others[0]!)! });
    } finally {
      await b.close();
    }
  }
});

test('a worst case of 4 GiB or more never fits, and memory caps out of range are refused', async () => {
  // The capacity check adds in 64 bits: a sum past 2^32 must not wrap round to "fits".
  const core = new WasmCore(64 * 1024 * 1024);
  const h = core.openStore(storeConfigOf(normalizeAggregateSpec({ key: { field: 'k', type: 'utf8' }, aggregates: { n: { fn: 'count' } } })));
  assert.ok(core.ingestFits(h, 1000, 1000), 'a small batch fits');
  for (const keyBytes of [40_000_000, 2_200_000_000, 4_000_000_000]) {
    assert.ok(core.ex.ingestWorstBytes(h, 1000, keyBytes) > 64 * 1024 * 1024, `worst case of ${keyBytes} key bytes`);
    assert.not.ok(core.ingestFits(h, 1000, keyBytes), `${keyBytes} key bytes do not fit under 64 MiB`);
  }
  for (const cap of [0, -1, 1.5, 2 ** 32, MEM_CAP_MAX_BYTES + 1, NaN]) {
    for (const workers of [false, true]) {
      try {
        const b = await StateBackend.open({ shards: 2, workers, memoryCapBytes: cap });
        await b.close();
        assert.unreachable(`memoryCapBytes ${cap} was accepted`);
      } catch (e) {
        assert.instance(e, CairnError);
        assert.is((e as CairnError).kind, 'invalid', `memoryCapBytes ${cap}`);
      }
    }
  }
  const b = await StateBackend.open({ shards: 1, memoryCapBytes: MEM_CAP_MAX_BYTES });
  await b.close();
});

test('value state matches a Map model under random puts, gets and deletes', async () => {
  for (const keyType of ['utf8', 'int64'] as const) {
    const b = await StateBackend.open({ shards: 3 });
    const kv = b.values('v', { key: { type: keyType } });
    const model = new Map<string, Uint8Array>();
    let x = 99;
    const rand = (m: number) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) % m);
    for (let i = 0; i < 3000; i++) {
      const raw = rand(300);
      const key = keyType === 'utf8' ? `k${raw}é` : BigInt(raw - 150);
      const id = String(key);
      const r = rand(10);
      if (r < 5) {
        const v = new Uint8Array(rand(64)).map(() => rand(256));
        await kv.put(key, v);
        model.set(id, v);
      } else if (r < 8) {
        assert.equal(await kv.get(key), model.get(id), `get ${id}`);
      } else {
        assert.is(await kv.delete(key), model.delete(id), `delete ${id}`);
      }
    }
    await expectError(kv.put(keyType === 'utf8' ? 'a' : 1, 'str' as never), 'invalid', /Uint8Array/);
    await expectError(kv.get(keyType === 'utf8' ? (1 as never) : ('x' as never)), 'invalid', /key/);
    await b.close();
  }
});

test('Arrow input: Table, RecordBatch, Dictionary<Utf8> keys, Int32 values, null values skipped, null keys rejected', async () => {
  const b = await StateBackend.open();
  const op = b.aggregate('t', SPEC);
  await op.ingest(tableFromArrays({ user: ['a', 'b', 'a'], amount: Float64Array.from([1, 2, 3]) }));
  const dict = vectorFromArray(['b', 'c', 'b'], new Dictionary(new Utf8(), new Int32()));
  const t2 = makeTable({ user: dict.data[0]!, amount: vectorFromArray([10, null, 30], new Int32()).data[0]! } as never);
  await op.ingest(t2.batches[0]! as never);
  await op.ingest(tableFromJSON([{ user: 'c', amount: 5 }, { user: 'a', amount: null }]).slice(0, 2));
  assert.equal(rowsOf(await op.toArrow(), 'user'), [
    { key: 'a', n: 3, spend: 4, top: 3 },
    { key: 'b', n: 3, spend: 42, top: 30 },
    { key: 'c', n: 2, spend: 5, top: 5 },
  ]);
  await expectError(op.ingest(tableFromJSON([{ user: 'a', amount: 1 }, { user: null, amount: 2 }])), 'invalid', /null keys/);
  await expectError(op.ingest(tableFromArrays({ user: Float64Array.from([1]), amount: Float64Array.from([1]) })), 'invalid', /Utf8/);
  await b.close();
});

test('a utf8 key with an unpaired surrogate is encoded as TextEncoder encodes it (U+FFFD), on every input path', async () => {
  const enc = new TextEncoder();
  const keys = ['a\uD800', 'a\uFFFD', 'a\uDBFF', 'b\uD83D\uDE00', 'b\uD83D'];
  const b = await StateBackend.open({ shards: 2 });
  const op = b.aggregate('s', SPEC);
  await op.ingest({ user: keys, amount: [1, 2, 3, 4, 5] });
  await op.ingest(new Table({ user: vectorFromArray(keys, new Utf8()), amount: vectorFromArray(Float64Array.of(10, 20, 30, 40, 50)) }));
  // The model: the keys as TextEncoder's bytes.
  const want = new Map<string, number>();
  keys.forEach((k, i) => {
    const id = new TextDecoder().decode(enc.encode(k));
    want.set(id, (want.get(id) ?? 0) + (i + 1) * 11);
  });
  const got = rowsOf(await op.toArrow(), 'user');
  assert.equal(new Map(got.map((r) => [r['key'] as string, r['spend'] as number])), want);
  assert.equal(await op.get('a\uDBFF'), await op.get('a\uFFFD'), 'point reads take the same bytes');
  await b.close();
});

test.run();
