/**
 * Worker-thread entry: runs one ShardHost and answers requests in order. Errors travel back as
 * { kind, message } and become CairnError again on the caller's side.
 *
 * A batch split over several worker shards arrives in two phases (`hold`, then commit or abort;
 * see `held` below), so that it applies on every shard or on none.
 *
 * Buffers move rather than copy in both directions: an ingest's batch buffers go back with the
 * answer (`back`) once copied into Wasm memory, for the caller's pool to reuse, and the answer's
 * own arrays (fired windows, snapshot bytes), which are fresh copies out of Wasm memory that this
 * side never touches again, are transferred instead of cloned.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ShardHost } from './host.js';
import { CairnError } from '../errors.js';
import type { ShardRequest } from './protocol.js';
import { batchBuffers, batchKeyBytes } from './buffers.js';
import { adoptCompiledModule } from '../../bindings/module.js';

if (!parentPort) throw new Error('worker.ts must run in a worker thread');
const port = parentPort;
const data = workerData as { memCapBytes?: number; module?: WebAssembly.Module } | undefined;
if (data?.module instanceof WebAssembly.Module) adoptCompiledModule(data.module);
const host = new ShardHost(data?.memCapBytes);

interface Message { seq: number; req: ShardRequest }

/**
 * A batch checked and held by the first phase of a split ingest ('ingest' with `hold`): until
 * 'commit' or 'abort' arrives, every other request waits in `deferred`, so nothing can change the
 * state between the check and the apply, and requests still run in the order they were posted.
 */
let held: (Message & { req: { op: 'ingest' } }) | null = null;
const deferred: Message[] = [];

port.on('message', (msg: Message) => {
  if (held !== null && msg.req.op !== 'commit' && msg.req.op !== 'abort') {
    deferred.push(msg);
    return;
  }
  handle(msg);
  while (held === null && deferred.length > 0) handle(deferred.shift()!);
});

function handle(msg: Message): void {
  const req = msg.req;
  if (req.op === 'crash') {
    // Test hook: die the way a crashed worker does, without answering.
    process.exit(70);
  }
  if (req.op === 'ingest' && req.hold) {
    const back = batchBuffers(req.batch);
    let fits: boolean;
    try {
      fits = host.handle({ op: 'fits', id: req.id, n: req.batch.n, keyBytes: batchKeyBytes(req.batch) }) as boolean;
    } catch (e) {
      fail(msg.seq, e, back);
      return;
    }
    if (fits) {
      held = { seq: msg.seq, req };
      port.postMessage({ seq: msg.seq, ok: true, value: true });
    } else {
      port.postMessage({ seq: msg.seq, ok: true, value: false, back }, back);
    }
    return;
  }
  if (req.op === 'commit' || req.op === 'abort') {
    const h = held;
    held = null;
    if (h === null) {
      fail(msg.seq, new CairnError('internal', `shard: '${req.op}' without a held batch`), []);
      return;
    }
    const back = batchBuffers(h.req.batch);
    if (req.op === 'abort') {
      port.postMessage({ seq: msg.seq, ok: true, value: null, back }, back);
      return;
    }
    answer(msg.seq, { ...h.req, hold: false }, back);
    return;
  }
  answer(msg.seq, req, req.op === 'ingest' ? batchBuffers(req.batch) : []);
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
