// Proves the checkpoint decoders reject damaged and hostile input with a CairnError and nothing else.
// How: real checkpoint bytes come from a backend with five operators (hopping windows, running
// aggregates over utf8 and int64 keys, session windows, value state) that took a full checkpoint and
// then a delta with updates and deletes (tombstones). fast-check then mutates them (bit flips, byte
// and u32 writes, cuts, insertions, deletions, several at once) and feeds them to each decoder:
//  - data files to decodeChunked, and through StateBackend.restore (chunk checks, then Wasm);
//  - manifests to decodeManifest and through restore, plus manifests whose JSON is changed
//    structurally (values replaced by other JSON values, fields removed) and re-sealed with a valid
//    checksum, as a buggy or foreign writer would produce them;
//  - raw snapshot payloads, mutated (header counts and lengths especially) and re-encoded with
//    encodeChunked, with the manifest's length and crc32c fixed up, so they pass every checksum and
//    reach the Wasm snapshot validator (assembly/snapshot.ts loadSnapshot).
// Only a CairnError may escape any of them (never a TypeError, RangeError or a Wasm trap), a decoder
// that accepts damaged container bytes must return the original contents, and a snapshot the
// validator rejects must surface as kind 'corruption' (an 'internal' error would mean a trap or a
// broken invariant), on the first call that touches the restored operator.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { StateBackend, MemoryCheckpointStorage, CairnError, NoneCodec, type AggregateOperator, type ValueState } from '../../src/index.js';
import { decodeChunked, encodeChunked } from '../../src/codec/chunked.js';
import { crc32c } from '../../src/codec/crc32c.js';
import { decodeManifest, manifestName, referencedFiles, type Manifest } from '../../src/checkpoint/manifest.js';
import { AGGS, WINDOW, LATENESS, twoCheckpoints } from '../checkpoint/scenario.js';
import { genEvents, toColumns } from '../oracle/gen.js';
import { tier, coverage } from './harness.js';

// Failures print the seed, the shrunk counterexample and the error itself.
fc.configureGlobal({ includeErrorInReport: true });

const RUNS = tier(1000, 20000);
const RESTORE_RUNS = tier(400, 6000);
const END_OF_TIME = 10_000_000;

const figures = { chunked: 0, chunkedRestores: 0, manifests: 0, manifestJson: 0, snapshots: 0, snapshotRejected: 0, snapshotAccepted: 0 };

// -------------------------------------------------------------------------------------------------
// The corpus: one real checkpoint with every operator kind, full base plus a delta with tombstones.

const SPECS = {
  w: { key: { field: 'user', type: 'utf8' }, time: 'ts', window: WINDOW, aggregates: AGGS, allowedLateness: LATENESS },
  r: { key: { field: 'user', type: 'utf8' }, time: 'ts', aggregates: AGGS },
  i: { key: { field: 'id', type: 'int64' }, aggregates: { n: { fn: 'count' }, m: { fn: 'mean', field: 'amount' }, hi: { fn: 'max', field: 'amount' } } },
  s: { key: { field: 'user', type: 'utf8' }, time: 'ts', window: { kind: 'session', gap: 50 }, aggregates: { n: { fn: 'count' }, f: { fn: 'first', field: 'amount' }, hi: { fn: 'max', field: 'amount' } } },
} as const;

interface Declared {
  aggs: [string, AggregateOperator][];
  v: ValueState;
}

function declareAll(b: StateBackend): Declared {
  const aggs = Object.entries(SPECS).map(([name, spec]) => [name, b.aggregate(name, spec as never)] as [string, AggregateOperator]);
  return { aggs, v: b.values('v', { key: { type: 'utf8' } }) };
}

async function ingestRound(d: Declared, seed: number): Promise<void> {
  const rows = genEvents({ seed, n: 120, keys: 20, keyType: 'utf8', disorderMs: 60, timeSpread: 600, timeStart: seed * 300, nullRate: 0.1, multibyte: true });
  const cols = toColumns(rows, { keyType: 'utf8' });
  const ids = BigInt64Array.from(rows, (_, i) => BigInt(((i * 7919) % 37) - 18));
  for (const [name, op] of d.aggs) await op.ingest(name === 'i' ? { id: ids, amount: cols['amount']! } : cols);
  for (let i = 0; i < 10; i++) await d.v.put(`k${(seed * 3 + i) % 20}`, Uint8Array.from({ length: i * 3 }, (_, j) => j * seed));
}

interface Corpus {
  storage: MemoryCheckpointStorage;
  newest: number;
  manifest: Manifest;
  manifestBytes: Uint8Array;
  /** Every data file the newest checkpoint references: stored and decoded bytes. */
  files: { name: string; stored: Uint8Array; raw: Uint8Array }[];
}

async function buildCorpus(): Promise<Corpus> {
  const storage = new MemoryCheckpointStorage();
  const b = await StateBackend.open({ shards: 1, keyGroups: 8, checkpoints: { storage, retain: 5 } });
  const d = declareAll(b);
  await ingestRound(d, 1);
  for (const [, op] of d.aggs) if (op.windowed) await op.advanceWatermark(400);
  await b.checkpoint();
  await ingestRound(d, 2);
  for (const [, op] of d.aggs) {
    for (const k of ['k1', 'k4', 'k7é', 'k9']) await op.delete(op.name === 'i' ? 3 : k);
    if (op.windowed) await op.advanceWatermark(700);
  }
  for (const k of ['k2', 'k5']) await d.v.delete(k);
  const c2 = await b.checkpoint();
  await b.close();
  assert.ok(c2.incremental, 'the newest checkpoint is a delta');
  const manifestBytes = await storage.get(manifestName(c2.id));
  const manifest = decodeManifest(manifestBytes, 'corpus');
  const files = [];
  for (const f of referencedFiles(manifest)) {
    const stored = await storage.get(f.name);
    files.push({ name: f.name, stored, raw: await decodeChunked(stored, { file: f.name }) });
  }
  return { storage, newest: c2.id, manifest, manifestBytes, files };
}

let corpusPromise: Promise<Corpus> | null = null;
function corpus(): Promise<Corpus> {
  corpusPromise ??= buildCorpus();
  return corpusPromise;
}

async function cloneStorage(from: MemoryCheckpointStorage): Promise<MemoryCheckpointStorage> {
  const to = new MemoryCheckpointStorage();
  for (const name of await from.list('')) await to.put(name, await from.get(name));
  return to;
}

/** A manifest file around `json`, with a valid checksum, whatever the JSON says. */
function sealManifest(json: string): Uint8Array {
  const body = new TextEncoder().encode(json);
  const out = new Uint8Array(12 + body.length);
  out.set(new TextEncoder().encode('CAIRNMF1'), 0);
  new DataView(out.buffer).setUint32(8, crc32c(body), true);
  out.set(body, 12);
  return out;
}

// -------------------------------------------------------------------------------------------------
// Mutations

type Mutation =
  | { t: 'flip'; pos: number; bit: number }
  | { t: 'set'; pos: number; value: number }
  | { t: 'u32'; pos: number; value: number }
  | { t: 'cut'; pos: number }
  | { t: 'insert'; pos: number; bytes: Uint8Array }
  | { t: 'delete'; pos: number; len: number };

const INTERESTING_U32 = [0, 1, 2, 7, 8, 63, 64, 65, 255, 256, 0x7fff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('flip' as const), pos: fc.nat(), bit: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('set' as const), pos: fc.nat(), value: fc.nat(255) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('u32' as const), pos: fc.nat(), value: fc.oneof(fc.constantFrom(...INTERESTING_U32), fc.nat()) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('cut' as const), pos: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('insert' as const), pos: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('delete' as const), pos: fc.nat(), len: fc.integer({ min: 1, max: 64 }) }) },
);
const mutationsArb = fc.array(mutationArb, { minLength: 1, maxLength: 4 });

function mutate(input: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let x = input.slice();
  for (const m of mutations) {
    const at = x.length === 0 ? 0 : m.pos % x.length;
    switch (m.t) {
      case 'flip': if (x.length) x[at]! ^= 1 << m.bit; break;
      case 'set': if (x.length) x[at] = m.value; break;
      case 'u32': for (let k = 0; k < 4 && at + k < x.length; k++) x[at + k] = (m.value >>> (8 * k)) & 0xff; break;
      case 'cut': x = x.slice(0, at); break;
      case 'insert': { const y = new Uint8Array(x.length + m.bytes.length); y.set(x.subarray(0, at)); y.set(m.bytes, at); y.set(x.subarray(at), at + m.bytes.length); x = y; break; }
      case 'delete': { const n = Math.min(m.len, x.length - at); const y = new Uint8Array(x.length - n); y.set(x.subarray(0, at)); y.set(x.subarray(at + n), at); x = y; break; }
    }
  }
  return x;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Fails unless `e` is a CairnError of one of `kinds`; names the error otherwise. */
function onlyCairn(e: unknown, kinds: readonly string[], label: string): void {
  if (!(e instanceof CairnError)) throw new Error(`${label}: expected a CairnError, found ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, { cause: e });
  if (!kinds.includes(e.kind)) {
    let cause: unknown = e.cause;
    const chain: string[] = [];
    while (cause) {
      chain.push(cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause));
      cause = (cause as { cause?: unknown }).cause;
    }
    throw new Error(`${label}: expected a CairnError of kind ${kinds.join(' or ')}, found '${e.kind}': ${e.message}${chain.length ? ` (caused by ${chain.join(' <- ')})` : ''}`, { cause: e });
  }
}

/**
 * Restores checkpoint `id` from `storage`, declares every operator again and uses each one (read
 * all state, fire every window, read values, checkpoint). Returns the first error, or null.
 */
async function restoreAndUse(storage: MemoryCheckpointStorage, id: number): Promise<unknown> {
  let b: StateBackend | null = null;
  try {
    b = await StateBackend.restore({ storage, checkpointId: id });
    const d = declareAll(b);
    for (const [, op] of d.aggs) await op.toArrow();
    for (const [, op] of d.aggs) if (op.windowed) await op.advanceWatermark(END_OF_TIME);
    for (const k of ['k0', 'k3', 'k10']) await d.v.get(k);
    await b.checkpoint();
    return null;
  } catch (e) {
    return e;
  } finally {
    await b?.close().catch(() => undefined);
  }
}

// -------------------------------------------------------------------------------------------------

test('decodeChunked on mutated real data files: a CairnError or the original contents, nothing else', async () => {
  const c = await corpus();
  await fc.assert(
    fc.asyncProperty(fc.nat(c.files.length - 1), mutationsArb, async (fi, mutations) => {
      const f = c.files[fi]!;
      const bad = mutate(f.stored, mutations);
      figures.chunked++;
      let out: Uint8Array;
      try {
        out = await decodeChunked(bad, { file: f.name });
      } catch (e) {
        onlyCairn(e, ['corruption'], `decodeChunked(${f.name})`);
        return;
      }
      assert.ok(sameBytes(out, f.raw), `${f.name}: damaged bytes decoded to other contents`);
    }),
    { numRuns: RUNS },
  );
});

test('restore with a mutated data file: a corruption error (or the original state when the bytes are unchanged)', async () => {
  const c = await corpus();
  await fc.assert(
    fc.asyncProperty(fc.nat(c.files.length - 1), mutationsArb, async (fi, mutations) => {
      const f = c.files[fi]!;
      const bad = mutate(f.stored, mutations);
      const storage = await cloneStorage(c.storage);
      await storage.put(f.name, bad);
      figures.chunkedRestores++;
      const e = await restoreAndUse(storage, c.newest);
      if (sameBytes(bad, f.stored)) assert.is(e, null, 'unchanged bytes restore');
      else {
        assert.ok(e !== null, `${f.name}: damaged data file restored`);
        onlyCairn(e, ['corruption'], `restore with damaged ${f.name}`);
      }
    }),
    { numRuns: RESTORE_RUNS },
  );
});

test('decodeManifest and restore on mutated manifests: a corruption error, nothing else', async () => {
  const c = await corpus();
  await fc.assert(
    fc.asyncProperty(mutationsArb, async (mutations) => {
      const bad = mutate(c.manifestBytes, mutations);
      figures.manifests++;
      let decoded = true;
      try {
        decodeManifest(bad, 'fuzzed');
      } catch (e) {
        onlyCairn(e, ['corruption'], 'decodeManifest');
        decoded = false;
      }
      if (decoded) assert.ok(sameBytes(bad, c.manifestBytes), 'a damaged manifest decoded');
      const storage = await cloneStorage(c.storage);
      await storage.put(manifestName(c.newest), bad);
      const e = await restoreAndUse(storage, c.newest);
      if (!decoded) onlyCairn(e, ['corruption'], 'restore with a damaged manifest');
    }),
    { numRuns: RESTORE_RUNS },
  );
});

// Structural JSON edits: replace a value anywhere in the manifest with another JSON value, or drop a
// field. The seal (magic and crc32c) is valid, so only the decoder's schema checks stand in the way.
type JsonEdit = { path: number; action: 'replace'; value: unknown } | { path: number; action: 'remove' };

const jsonValueArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1, 2, 1e300, -1e300, 0.5, 2 ** 53, 4294967296, '', 'x', '../../etc/passwd', 'data/w/000000000001-000.cks', [], {}, [null], { files: null }),
  fc.integer(),
  fc.string({ maxLength: 8 }),
);
const jsonEditArb: fc.Arbitrary<JsonEdit> = fc.oneof(
  fc.record({ path: fc.nat(), action: fc.constant('replace' as const), value: jsonValueArb }),
  fc.record({ path: fc.nat(), action: fc.constant('remove' as const) }),
);

/** Every (container, key) slot in a JSON value, depth first. */
function slotsOf(root: unknown): { holder: Record<string, unknown> | unknown[]; key: string | number }[] {
  const out: { holder: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach((x, i) => { out.push({ holder: v, key: i }); walk(x); });
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) { out.push({ holder: v as Record<string, unknown>, key: k }); walk(x); }
  };
  walk(root);
  return out;
}

function editManifest(m: Manifest, edits: readonly JsonEdit[]): string {
  const copy = JSON.parse(JSON.stringify(m)) as unknown;
  for (const e of edits) {
    const slots = slotsOf(copy);
    if (slots.length === 0) break;
    const { holder, key } = slots[e.path % slots.length]!;
    if (e.action === 'replace') (holder as Record<string | number, unknown>)[key] = e.value;
    else if (Array.isArray(holder)) holder.splice(key as number, 1);
    else delete holder[key as string];
  }
  return JSON.stringify(copy);
}

test('restore with a manifest whose JSON is structurally wrong but checksummed: only CairnError', async () => {
  const c = await corpus();
  await fc.assert(
    fc.asyncProperty(fc.array(jsonEditArb, { minLength: 1, maxLength: 3 }), async (edits) => {
      const storage = await cloneStorage(c.storage);
      await storage.put(manifestName(c.newest), sealManifest(editManifest(c.manifest, edits)));
      figures.manifestJson++;
      const e = await restoreAndUse(storage, c.newest);
      // Some edits are harmless (a changed meta, a reordered field); a harmful one must be reported.
      if (e !== null) onlyCairn(e, ['corruption', 'invalid', 'unavailable'], `restore with edited manifest ${JSON.stringify(edits)}`);
    }),
    { numRuns: RESTORE_RUNS },
  );
});

// Snapshot payloads: mutate the raw (decompressed) snapshot, re-encode it, fix the manifest.
const HEADER_U32 = [16, 20, 24, 28, 32, 36];
const HEADER_U16 = [4, 6, 12, 14];
const HEADER_U8 = [8, 9, 10, 11];

const snapshotMutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('u32' as const), pos: fc.constantFrom(...HEADER_U32), value: fc.oneof(fc.constantFrom(...INTERESTING_U32), fc.nat(4096)) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('set' as const), pos: fc.constantFrom(...HEADER_U16, ...HEADER_U8), value: fc.nat(255) }) },
  { weight: 3, arbitrary: mutationArb },
  // Key and value lengths sit right after the header for utf8 rows: hit that region harder.
  { weight: 2, arbitrary: fc.record({ t: fc.constant('u32' as const), pos: fc.integer({ min: 64, max: 400 }), value: fc.oneof(fc.constantFrom(...INTERESTING_U32), fc.nat(64)) }) },
);

test('restore of snapshot payloads that pass every checksum but are inconsistent: a corruption error, never internal', async () => {
  const c = await corpus();
  const codec = new NoneCodec();
  await fc.assert(
    fc.asyncProperty(fc.nat(c.files.length - 1), fc.array(snapshotMutationArb, { minLength: 1, maxLength: 3 }), async (fi, mutations) => {
      const f = c.files[fi]!;
      const raw = mutate(f.raw, mutations);
      if (sameBytes(raw, f.raw)) return;
      const stored = await encodeChunked(raw, codec);
      const m = JSON.parse(JSON.stringify(c.manifest)) as Manifest;
      for (const ref of referencedFiles(m)) {
        if (ref.name === f.name) {
          ref.bytes = stored.length;
          ref.crc32c = crc32c(stored);
        }
      }
      const storage = await cloneStorage(c.storage);
      await storage.put(f.name, stored);
      await storage.put(manifestName(c.newest), sealManifest(JSON.stringify(m)));
      figures.snapshots++;
      const e = await restoreAndUse(storage, c.newest);
      if (e === null) figures.snapshotAccepted++; // a consistent payload with other values: valid state
      else {
        figures.snapshotRejected++;
        onlyCairn(e, ['corruption'], `restore of ${f.name} with snapshot mutations ${JSON.stringify(mutations)}`);
      }
    }),
    { numRuns: RESTORE_RUNS },
  );
});

// Minimal reproductions of what the properties above find, kept as plain tests so a failure names
// the exact defect.

test('a checksummed manifest with a malformed operator entry is a corruption error, and restore skips it', async () => {
  const { storage, c1, c2 } = await twoCheckpoints();
  const name = manifestName(c2);
  const m = decodeManifest(await storage.get(name), name);
  (m.operators[0] as unknown as { chain: unknown }).chain = null;
  await storage.put(name, sealManifest(JSON.stringify(m)));
  let asked: unknown = null;
  await StateBackend.restore({ storage, checkpointId: c2 }).then((b) => b.close(), (e: unknown) => { asked = e; });
  onlyCairn(asked, ['corruption'], `restore of checkpoint ${c2} with operators[0].chain = null`);
  const b = await StateBackend.restore({ storage }).catch((e: unknown) => {
    throw new Error(`restore of the latest checkpoint: expected a skip to checkpoint ${c1}, found ${String(e)}`, { cause: e });
  });
  assert.is(b.restoreReport!.checkpointId, c1);
  assert.equal(b.restoreReport!.skipped.map((s) => s.id), [c2]);
  await b.close();
});

test('a checksum-valid snapshot the Wasm validator rejects fails verification: restoring it is a corruption error naming the file', async () => {
  const { storage, c2 } = await twoCheckpoints();
  const name = manifestName(c2);
  const m = decodeManifest(await storage.get(name), name);
  const ref = m.operators[0]!.chain[0]!.files[0]!;
  const raw = await decodeChunked(await storage.get(ref.name), { file: ref.name });
  new DataView(raw.buffer, raw.byteOffset).setUint32(16, 2, true); // the header says 2 rows; it holds 3
  const stored = await encodeChunked(raw, new NoneCodec());
  ref.bytes = stored.length;
  ref.crc32c = crc32c(stored);
  await storage.put(ref.name, stored);
  await storage.put(name, sealManifest(JSON.stringify(m)));
  let err: unknown = null;
  try {
    const b = await StateBackend.restore({ storage, checkpointId: c2 });
    await b.close();
  } catch (e) {
    err = e;
  }
  onlyCairn(err, ['corruption'], 'restoring a checkpoint whose snapshot the Wasm validator rejects');
  assert.match((err as Error).message, new RegExp(`file=${ref.name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
  // The damaged file is the base both checkpoints share, so restoring latest finds none that verifies.
  let latestErr: unknown = null;
  try {
    const b = await StateBackend.restore({ storage });
    await b.close();
  } catch (e) {
    latestErr = e;
  }
  onlyCairn(latestErr, ['corruption'], 'restoring latest when every checkpoint needs the bad snapshot');
  assert.match((latestErr as Error).message, /skipped 2 .*snapshot does not match/);
});

test('coverage', () => {
  assert.ok(figures.chunked > 0 && figures.snapshots > 0);
  coverage(
    'fuzz',
    `${figures.chunked} mutated data files decoded, ${figures.chunkedRestores} restored, ${figures.manifests} mutated manifests, ` +
      `${figures.manifestJson} structurally edited manifests, ${figures.snapshots} checksum-valid inconsistent snapshots ` +
      `(${figures.snapshotRejected} rejected, ${figures.snapshotAccepted} accepted as other valid state); only CairnError escaped`,
  );
});

test.run();
