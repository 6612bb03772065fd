/**
 * Worker-thread entry: runs one ShardHost and answers requests in order. Errors travel back as
 * { kind, message } and become CairnError again on the caller's side.
 *
 * A batch split over several worker shards, or broadcast to them (`owned`), applies on every shard
 * or on none: each slice comes with `hold`, and the shards vote on it in shared memory before
 * applying it (votes.ts); or, for a broadcast batch, it comes on credit (credit.ts), without
 * `hold`, and every shard applies it. After every request the shard publishes its credit.
 *
 * Buffers move rather than copy in both directions: an ingest's batch buffers go back with the
 * answer (`back`) once copied into Wasm memory, for the caller's pool to reuse (a broadcast batch's
 * SharedArrayBuffer is shared, never moved), and the answer's own arrays (fired windows, snapshot
 * bytes), copies out of Wasm memory that this side never touches again, are transferred instead of
 * cloned. Output buffers the caller has merged come back with a later request (`give`).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ShardHost } from './host.js';
import { CairnError } from '../errors.js';
import type { ShardRequest } from './protocol.js';
import { batchBuffers, batchKeyBytes } from './buffers.js';
import { voteAndWait, type Decision } from './votes.js';
import { REFUSED_ELSEWHERE, REFUSED_HERE } from './protocol.js';
import { adoptCompiledModule } from '../../bindings/module.js';
import { CreditWriter } from './credit.js';

if (!parentPort) throw new Error('worker.ts must run in a worker thread');
const port = parentPort;
const data = workerData as { memCapBytes?: number; module?: WebAssembly.Module; votes?: SharedArrayBuffer; credits?: SharedArrayBuffer; index?: number } | undefined;
const votes = data?.votes instanceof SharedArrayBuffer ? data.votes : null;
const credit = data?.credits instanceof SharedArrayBuffer ? new CreditWriter(data.credits, data.index ?? 0) : null;
if (data?.module instanceof WebAssembly.Module) adoptCompiledModule(data.module);
const host = new ShardHost(data?.memCapBytes);

interface Message { seq: number; req: ShardRequest; give?: ArrayBuffer[] }

// A request that cannot be read here names no call to answer: the caller gives the shard up (as
// if it had died), so that call, and every other, fails instead of waiting forever.
function unreadable(e: unknown): void {
  port.postMessage({ seq: 0, ok: false, fatal: true, message: `could not read a request (${e instanceof Error ? e.message : String(e)})` });
}
port.on('messageerror', unreadable);

port.on('message', (msg: Message) => {
  const req = msg.req;
  if (msg.give) for (const b of msg.give) host.outPool.give(b);
  if (req.op === 'crash') {
    // Test hook: die the way a crashed worker does, without answering.
    if (req.how === 'unreadable') {
      unreadable(new Error('test hook'));
      return;
    }
    if (req.how === 'throw') {
      setTimeout(() => {
        throw new Error('shard worker: uncaught exception (test hook)');
      }, 0);
      return;
    }
    process.exit(70);
  }
  try {
    handleMessage(msg);
  } finally {
    credit?.publish(msg.seq, (events, keyBytes) => host.creditFits(events, keyBytes));
  }
});

function handleMessage(msg: Message): void {
  const req = msg.req;
  const back = req.op === 'ingest' ? batchBuffers(req.batch) : [];
  if (req.op === 'ingest' && req.owned) credit?.count(req.batch.n, batchKeyBytes(req.batch));
  if (req.op === 'ingest' && req.hold) {
    // A slice of a split batch: check it, vote, wait for the other shards' votes (blocking: nothing
    // else may run in between), then apply it or drop it. The answer is the accepted events, or
    // REFUSED_HERE / REFUSED_ELSEWHERE.
    const { slot, txn } = req.hold;
    let fits = false;
    let error: unknown = null;
    try {
      // A broadcast batch is first filtered to this shard's key groups: what is left is voted on.
      fits = req.owned ? host.stage(req.id, req.batch).fits : host.handle({ op: 'fits', id: req.id, n: req.batch.n, keyBytes: batchKeyBytes(req.batch) }) as boolean;
    } catch (e) {
      error = e;
    }
    if (!votes) error ??= new CairnError('internal', 'shard: a split ingest without a vote board');
    let decision: Decision = 'abort';
    try {
      if (votes) decision = voteAndWait(votes, slot, txn, fits && error === null);
    } catch (e) {
      // Not voted: the manager sees this call fail and aborts the slot for the other shards.
      error ??= e;
    }
    if (error !== null) fail(msg.seq, error, back);
    else if (decision === 'abort') port.postMessage({ seq: msg.seq, ok: true, value: fits ? REFUSED_ELSEWHERE : REFUSED_HERE, back }, back);
    else answer(msg.seq, { ...req, hold: undefined }, back);
    return;
  }
  answer(msg.seq, req, back);
}

/** Runs a request and posts its answer, with `back` (buffers the caller gave up) going home. */
function answer(seq: number, req: ShardRequest, back: ArrayBuffer[]): void {
  let value: ReturnType<ShardHost['handle']>;
  try {
    value = host.handle(req);
  } catch (e) {
    fail(seq, e, back);
    return;
  }
  port.postMessage({ seq, ok: true, value, back }, [...back, ...ownedBuffers(value)]);
}

function fail(seq: number, e: unknown, back: ArrayBuffer[]): void {
  const kind = e instanceof CairnError ? e.kind : 'internal';
  const message = e instanceof Error ? e.message : String(e);
  port.postMessage({ seq, ok: false, kind, message, back }, back);
}

/** The ArrayBuffers behind an answer's typed arrays (answers are at most two levels deep). */
function ownedBuffers(value: unknown, depth = 0): ArrayBuffer[] {
  if (value === null || typeof value !== 'object' || depth > 3) return [];
  // Empty arrays (most watermark advances fire nothing) clone for less than a transfer costs.
  if (ArrayBuffer.isView(value)) return value.buffer instanceof ArrayBuffer && value.byteLength > 0 ? [value.buffer] : [];
  const out = new Set<ArrayBuffer>();
  for (const v of Object.values(value)) for (const b of ownedBuffers(v, depth + 1)) out.add(b);
  return [...out];
}
