/**
 * Worker-thread entry: runs one ShardHost and answers requests in order. Errors travel back as
 * { kind, message } and become CairnError again on the caller's side.
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
import { batchBuffers } from './buffers.js';
import { adoptCompiledModule } from '../../bindings/module.js';

const port = parentPort;
if (!port) throw new Error('worker.ts must run in a worker thread');
const data = workerData as { memCapBytes?: number; module?: WebAssembly.Module } | undefined;
if (data?.module instanceof WebAssembly.Module) adoptCompiledModule(data.module);
const host = new ShardHost(data?.memCapBytes);

port.on('message', (msg: { seq: number; req: ShardRequest }) => {
  if (msg.req.op === 'crash') {
    // Test hook: die the way a crashed worker does, without answering.
    process.exit(70);
  }
  const back = msg.req.op === 'ingest' ? batchBuffers(msg.req.batch) : [];
  try {
    const value = host.handle(msg.req);
    port.postMessage({ seq: msg.seq, ok: true, value, back }, [...back, ...ownedBuffers(value)]);
  } catch (e) {
    const kind = e instanceof CairnError ? e.kind : 'internal';
    const message = e instanceof Error ? e.message : String(e);
    port.postMessage({ seq: msg.seq, ok: false, kind, message, back }, back);
  }
});

/** The ArrayBuffers behind an answer's typed arrays (answers are at most two levels deep). */
function ownedBuffers(value: unknown, depth = 0): ArrayBuffer[] {
  if (value === null || typeof value !== 'object' || depth > 3) return [];
  // Empty arrays (most watermark advances fire nothing) clone for less than a transfer costs.
  if (ArrayBuffer.isView(value)) return value.buffer instanceof ArrayBuffer && value.byteLength > 0 ? [value.buffer] : [];
  const out = new Set<ArrayBuffer>();
  for (const v of Object.values(value)) for (const b of ownedBuffers(v, depth + 1)) out.add(b);
  return [...out];
}
