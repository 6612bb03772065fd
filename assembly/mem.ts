// Raw allocation with an accounted memory cap. Every buffer a store owns goes through here, so the
// cap is checked before anything is changed and an over-cap request fails with E_MEMORY_CAP instead
// of trapping. Buffers are raw (unmanaged) memory: the hot path never touches the GC.

/** Bytes of state (stores): what the cap limits. */
export let memUsedBytes: usize = 0;
/** Bytes of transient buffers (scratch, output, sort and snapshot space): counted, not capped, so a
 *  store at its cap can still be read, exported and checkpointed. */
export let transientBytes: usize = 0;
export let memCapBytes: usize = 1 << 31;

export function setMemCap(bytes: usize): void {
  memCapBytes = bytes;
}

/**
 * The largest buffer a store may allocate in one piece. The runtime's allocator (TLSF) traps on a
 * block above 1 GiB, so every buffer of a store (rows, index, arenas) stays below this, and the
 * worst-case checks refuse a batch whole before a growth would need more (Store.worstCaseExtra).
 * Lowered only by tests (setBlockMax), to reach the limit with small tables.
 */
export let blockBytesMax: usize = (1 << 30) - 256;

export function setBlockMax(bytes: usize): void {
  blockBytesMax = min<usize>(bytes, (1 << 30) - 256);
}

/** True when `extra` more bytes fit under the cap (in u64: near 4 GiB the u32 sum would wrap). */
@inline export function fits(extra: usize): bool {
  return <u64>memUsedBytes + <u64>extra <= <u64>memCapBytes;
}

/** Allocates `size` zeroed bytes of state, or returns 0 when the cap or blockBytesMax would be passed. */
export function allocZeroed(size: usize): usize {
  if (size == 0) size = 8;
  if (!fits(size) || size > blockBytesMax) return 0;
  const p = heap.alloc(size);
  memory.fill(p, 0, size);
  memUsedBytes += size;
  return p;
}

/** Grows a state buffer from `oldSize` to `newSize` bytes, zeroing the new tail; 0 on cap or past blockBytesMax. */
export function growZeroed(p: usize, oldSize: usize, newSize: usize): usize {
  if (newSize <= oldSize) return p;
  if (!fits(newSize - oldSize) || newSize > blockBytesMax) return 0;
  const q = p == 0 ? heap.alloc(newSize) : heap.realloc(p, newSize);
  memory.fill(q + oldSize, 0, newSize - oldSize);
  memUsedBytes += newSize - oldSize;
  return q;
}

/** growZeroed without zeroing the new tail, for buffers whose users write before they read. */
export function growState(p: usize, oldSize: usize, newSize: usize): usize {
  if (newSize <= oldSize) return p;
  if (!fits(newSize - oldSize) || newSize > blockBytesMax) return 0;
  const q = p == 0 ? heap.alloc(newSize) : heap.realloc(p, newSize);
  memUsedBytes += newSize - oldSize;
  return q;
}

export function release(p: usize, size: usize): void {
  if (p == 0) return;
  heap.free(p);
  memUsedBytes -= size == 0 ? 8 : size;
}

/**
 * Transient twins of the above: counted in transientBytes, never refused by the cap, and not
 * zeroed (every user writes before it reads; zeroing large sort and output buffers was a real cost).
 */
export function allocTransient(size: usize): usize {
  if (size == 0) size = 8;
  const p = heap.alloc(size);
  transientBytes += size;
  return p;
}

export function growTransient(p: usize, oldSize: usize, newSize: usize): usize {
  if (newSize <= oldSize) return p;
  const q = p == 0 ? heap.alloc(newSize) : heap.realloc(p, newSize);
  transientBytes += newSize - oldSize;
  return q;
}

export function releaseTransient(p: usize, size: usize): void {
  if (p == 0) return;
  heap.free(p);
  transientBytes -= size == 0 ? 8 : size;
}
