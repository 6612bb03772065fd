// Proves retention keeps one history and the durable tier a whole checkpoint of it, under the
// failures a probe found: restoring an older checkpoint leaves newer ones behind (deleted by the
// next checkpoint, also across a restart and when the first deletes failed); a durable tier whose
// gets fail, whose deletes are still queued, or that holds a failed checkpoint's files under a reused
// id never loses its only whole checkpoint; plain Errors from a custom storage are retried as
// 'unavailable' by tiered copies and reads.
//
// How: storages over Maps whose put/get/list/delete can be made to fail (CairnError 'unavailable'
// or a plain Error) or held; each value state checkpoint holds a distinct value, so the oracle is
// which value a restore from one tier, or both, brings back.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateBackend, TieredCheckpointStorage, CairnError, notFound, type CheckpointStorage } from '../../src/index.js';
import { manifestIdOf } from '../../src/checkpoint/manifest.js';

type Op = 'put' | 'get' | 'list' | 'delete';

/** A Map storage with switchable faults, and puts that can be held back. */
class Ctl implements CheckpointStorage {
  readonly m = new Map<string, Uint8Array>();
  readonly fail: Record<Op, boolean> = { put: false, get: false, list: false, delete: false };
  plain = false;
  filter: ((op: Op, name: string) => boolean) | null = null;
  holdPuts = false;
  readonly held: { name: string; go: () => void }[] = [];
  constructor(readonly name: string) {}
  private check(op: Op, n: string): void {
    if (!this.fail[op] || (this.filter && !this.filter(op, n))) return;
    const msg = `${this.name} ${op} ${n} down`;
    throw this.plain ? new Error(msg) : new CairnError('unavailable', msg);
  }
  async put(n: string, b: Uint8Array): Promise<void> {
    if (this.holdPuts) await new Promise<void>((go) => this.held.push({ name: n, go }));
    this.check('put', n);
    this.m.set(n, b.slice());
  }
  async get(n: string): Promise<Uint8Array> {
    this.check('get', n);
    const b = this.m.get(n);
    if (!b) throw notFound(n, this.name);
    return b.slice();
  }
  async list(p: string): Promise<string[]> {
    this.check('list', p);
    return [...this.m.keys()].filter((k) => k.startsWith(p)).sort();
  }
  async delete(n: string): Promise<void> {
    this.check('delete', n);
    this.m.delete(n);
  }
  down(...ops: Op[]): this {
    for (const o of ops) this.fail[o] = true;
    return this;
  }
  up(): this {
    for (const o of Object.keys(this.fail) as Op[]) this.fail[o] = false;
    this.filter = null;
    return this;
  }
  release(pick: (name: string) => boolean = () => true): void {
    for (let i = this.held.length - 1; i >= 0; i--) {
      if (pick(this.held[i]!.name)) this.held.splice(i, 1)[0]!.go();
    }
  }
  manifests(): number[] {
    return [...this.m.keys()].map(manifestIdOf).filter((x): x is number => x !== null).sort((a, b) => a - b);
  }
}

const tiered = (local: CheckpointStorage, durable: CheckpointStorage, copyAttempts = 2) =>
  new TieredCheckpointStorage({ local, durable, copyAttempts, retryDelayMs: 1 });
const SPEC = { key: { type: 'utf8' as const } };
const enc = new TextEncoder();
const dec = new TextDecoder();
const setv = async (b: StateBackend, v: string) => b.values('kv', SPEC).put('x', enc.encode(v));

/** The value a restore from `storage` brings back, or the error's kind. */
async function restored(storage: CheckpointStorage): Promise<string> {
  let b: StateBackend;
  try {
    b = await StateBackend.restore({ storage });
  } catch (e) {
    return `error ${(e as CairnError).kind}`;
  }
  const v = await b.values('kv', SPEC).get('x');
  await b.close();
  return v ? dec.decode(v) : 'none';
}

test('restoring an older checkpoint: the newer ones go with the next checkpoint, also after failed deletes and a restart', async () => {
  const S = new Ctl('S');
  let b = await StateBackend.open({ checkpoints: { storage: S, retain: 3 } });
  for (const v of ['c1', 'c2', 'c3']) {
    await setv(b, v);
    await b.checkpoint();
  }
  await b.close();
  b = await StateBackend.restore({ storage: S, checkpointId: 1, retain: 3 });
  S.down('delete');
  await setv(b, 'n4');
  await b.checkpoint();
  await b.close();
  S.up();
  b = await StateBackend.restore({ storage: S, retain: 3 });
  await setv(b, 'n5');
  await b.checkpoint();
  await b.close();
  assert.equal(S.manifests(), [1, 4, 5], 'checkpoints of the abandoned history outlived a restart');
  // With 5 and 4 damaged, restore falls back along the history, to 1.
  for (const id of [5, 4]) S.m.get(manifestNameFor(id))![10]! ^= 1;
  assert.is(await restored(S), 'c1');
});

test('tiered: an abandoned history in the durable tier is never its anchor, across a restart', async () => {
  const L = new Ctl('L');
  const D = new Ctl('D');
  let T = tiered(L, D);
  let b = await StateBackend.open({ checkpoints: { storage: T, retain: 3 } });
  for (const v of ['c1', 'c2', 'c3']) {
    await setv(b, v);
    await b.checkpoint();
  }
  await T.flush();
  await b.close();
  b = await StateBackend.restore({ storage: T, checkpointId: 1, retain: 1 });
  D.down('put', 'delete');
  await setv(b, 'n4');
  await b.checkpoint();
  await T.flush().catch(() => undefined);
  await b.close();
  T = tiered(L, D);
  b = await StateBackend.restore({ storage: T, retain: 1 });
  D.up().down('put');
  await setv(b, 'n5');
  await b.checkpoint();
  await T.flush().catch(() => undefined);
  D.up();
  await b.close();
  assert.is(await restored(D), 'c1', 'the durable tier alone restores the abandoned history');
  assert.is(await restored(tiered(L, D)), 'n5');
});

test('tiered: durable gets failing, or deletes still queued, never cost the durable tier its only whole checkpoint', async () => {
  {
    const D = new Ctl('D');
    let T = tiered(new Ctl('L0'), D);
    let b = await StateBackend.open({ checkpoints: { storage: T, retain: 1 } });
    await setv(b, 'c1');
    await b.checkpoint();
    await T.flush();
    await b.close();
    const L = new Ctl('L'); // the local disk is lost
    T = tiered(L, D);
    b = await StateBackend.restore({ storage: T, retain: 1 });
    D.down('put');
    await setv(b, 'c2');
    await b.checkpoint();
    await T.flush().catch(() => undefined);
    await b.close();
    T = tiered(L, D);
    b = await StateBackend.restore({ storage: T, retain: 1 });
    D.down('get');
    await setv(b, 'c3');
    await b.checkpoint();
    await T.flush().catch(() => undefined);
    D.up();
    await b.close();
    assert.is(await restored(D), 'c1', 'durable gets failing: the durable tier lost its checkpoint');
  }
  {
    const L = new Ctl('L');
    const D = new Ctl('D');
    const T = tiered(L, D);
    const b = await StateBackend.open({ checkpoints: { storage: T, retain: 1 } });
    await setv(b, 'c1');
    await b.checkpoint();
    await T.flush();
    D.holdPuts = true;
    await setv(b, 'c2');
    await b.checkpoint();
    await setv(b, 'c3');
    await b.checkpoint(); // drops 2: its durable deletes queue behind its held copies
    D.release((n) => n.includes('000000000002'));
    await new Promise((r) => setTimeout(r, 20));
    await setv(b, 'c4');
    await b.checkpoint();
    D.down('put');
    D.holdPuts = false;
    D.release();
    await T.flush().catch(() => undefined);
    D.up();
    assert.is(await restored(D), 'c1', 'a durable checkpoint with its delete queued became the anchor');
    assert.is(await restored(tiered(L, D)), 'c4');
    await b.close();
  }
});

test('a failed checkpoint\'s id is never reused, so its durable files never pass for a later checkpoint\'s', async () => {
  const L = new Ctl('L');
  const D = new Ctl('D');
  let T = tiered(L, D);
  let b = await StateBackend.open({ checkpoints: { storage: T, retain: 1 } });
  for (const v of ['c1', 'c2']) {
    await setv(b, v);
    await b.checkpoint();
  }
  await T.flush();
  // Checkpoint 3's data reach both tiers; its manifest fails locally.
  L.filter = (_op, n) => n.startsWith('manifests/');
  L.down('put');
  await setv(b, 'c3');
  assert.instance(await b.checkpoint().then(() => null, (e: unknown) => e), CairnError);
  await T.flush().catch(() => undefined);
  L.up();
  await b.close();
  T = tiered(L, D);
  b = await StateBackend.restore({ storage: T, retain: 1 });
  D.filter = (op, n) => op === 'put' && n.startsWith('data/');
  D.down('put');
  await setv(b, 'n3');
  const next = await b.checkpoint();
  assert.ok(next.id > 3, `checkpoint id ${next.id} reuses the failed checkpoint 3's names`);
  await T.flush().catch(() => undefined);
  await setv(b, 'n4');
  await b.checkpoint();
  await T.flush().catch(() => undefined);
  D.up();
  await b.close();
  assert.is(await restored(D), 'c2', 'the durable tier lost its whole checkpoint');
  assert.is(await restored(tiered(L, D)), 'n4');
});

test('tiered: a custom storage\'s plain Errors are retried as unavailable, and a local one falls back to durable', async () => {
  for (const plain of [false, true]) {
    const D = new Ctl('D');
    D.plain = plain;
    const seen = new Set<string>();
    D.filter = (op, n) => !seen.has(op + n) && seen.add(op + n) !== undefined;
    D.down('put');
    const T = tiered(new Ctl('L'), D, 4);
    const b = await StateBackend.open({ checkpoints: { storage: T, retain: 1 } });
    await setv(b, 'c1');
    await b.checkpoint();
    await T.flush(); // rejects if a copy failed for good
    await b.close();
    assert.is(await restored(D), 'c1', `plain ${plain}`);
  }
  const L = new Ctl('L');
  const T = tiered(L, new Ctl('D'));
  await T.put('manifests/x', new Uint8Array([7]));
  await T.flush();
  L.plain = true;
  L.down('get');
  assert.equal(await T.get('manifests/x'), new Uint8Array([7]));
  L.m.delete('manifests/x');
  L.up().down('get');
  const e = await T.get('data/none').then(() => null, (x: unknown) => x);
  assert.instance(e, CairnError, 'a plain Error came out of the tiered storage');
});

function manifestNameFor(id: number): string {
  return `manifests/${String(id).padStart(12, '0')}.cmf`;
}

test.run();
