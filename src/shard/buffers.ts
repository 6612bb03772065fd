/** The buffers behind a batch or an output, for transfer lists and for giving them back to a pool. */
import type { EncodedBatch, OutColumns } from '../../bindings/types.js';

/** The distinct ArrayBuffers a batch's columns are views into (SharedArrayBuffers excluded). */
export function batchBuffers(b: EncodedBatch): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  const add = (a: ArrayBufferView | null) => { if (a && a.buffer instanceof ArrayBuffer) out.add(a.buffer); };
  if (b.keys.type === 'int64') add(b.keys.values);
  else { add(b.keys.offsets); add(b.keys.bytes); }
  add(b.times);
  b.values.forEach(add);
  return [...out];
}

/** Key bytes of a batch (0 for int64 keys): what a shard's capacity check needs besides the count. */
export function batchKeyBytes(b: EncodedBatch): number {
  return b.keys.type === 'utf8' ? b.keys.offsets[b.n]! - b.keys.offsets[0]! : 0;
}

/** The distinct ArrayBuffers an output's columns are views into (SharedArrayBuffers excluded). */
export function outBuffers(o: OutColumns): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  const add = (a: ArrayBufferView) => { if (a.buffer instanceof ArrayBuffer) out.add(a.buffer); };
  if (o.keys.type === 'int64') add(o.keys.values);
  else { add(o.keys.offsets); add(o.keys.bytes); }
  add(o.start);
  add(o.end);
  o.values.forEach(add);
  o.valid.forEach(add);
  return [...out];
}
