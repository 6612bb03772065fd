/**
 * A pool of buffers: the batch slices the router hands to shards, the SharedArrayBuffers batches
 * are broadcast in, and the columns of shard outputs that are merged. A fresh large ArrayBuffer
 * is expensive where it matters: its pages fault in on first touch, and freeing it hands them back
 * to the OS (measured on the 2-core benchmark VM: copying 1 MiB into a fresh buffer costs ~20x a
 * copy into a reused one). A shard gives a slice's buffer back once it has copied the slice into
 * its Wasm memory (a worker transfers it back with its answer), and the router fills it again.
 */
import { CairnError } from '../errors.js';

/** Buffers kept; beyond this a returned buffer is left to the garbage collector. */
export const POOL_BUFFERS_MAX = 32;
/** Bytes kept over all buffers (so one huge batch does not pin its slices forever). */
export const POOL_BYTES_MAX = 256 * 1024 * 1024;
/**
 * A free buffer that no take chose over this many takes is dropped: after a burst of large batches
 * the pool does not pin their buffers (up to POOL_BYTES_MAX per pool) while batches stay small.
 */
export const POOL_IDLE_TAKES = 256;
/** Smaller requests are cheap to allocate and are not pooled. */
export const POOL_BUFFER_BYTES_MIN = 64 * 1024;

export class BufferPool<B extends ArrayBuffer | SharedArrayBuffer = ArrayBuffer> {
  /** Free buffers, each with the take count when it was given back. */
  private readonly free: { b: B; at: number }[] = [];
  private freeBytes = 0;
  private takes = 0;

  /** `make` allocates a buffer (a SharedArrayBuffer for batches broadcast to worker shards). */
  constructor(private readonly make: (bytes: number) => B = (bytes) => new ArrayBuffer(bytes) as B) {}

  /**
   * A buffer of at least `size` bytes: the smallest free one that fits (and, when `maxRatio` is
   * given, holds at most that many times `size`), else a new one with an eighth of headroom, so
   * slices of a similar size (the same batch size split by a stable key distribution) reuse each
   * other's buffers.
   */
  take(size: number, maxRatio = Infinity): B {
    const now = ++this.takes;
    let best = -1;
    for (let i = this.free.length - 1; i >= 0; i--) {
      const e = this.free[i]!;
      if (now - e.at > POOL_IDLE_TAKES) {
        this.drop(i);
        if (best === this.free.length) best = i; // the entry moved into slot i
        continue;
      }
      const len = e.b.byteLength;
      if (len >= size && len <= size * maxRatio && (best < 0 || len < this.free[best]!.b.byteLength)) best = i;
    }
    if (best >= 0) return this.drop(best);
    if (size < POOL_BUFFER_BYTES_MIN) return this.make(size);
    return this.make(Math.ceil((size + (size >>> 3)) / POOL_BUFFER_BYTES_MIN) * POOL_BUFFER_BYTES_MIN);
  }

  /** Returns a buffer the caller no longer uses (nor any view of it). Detached buffers are ignored. */
  give(b: B): void {
    const len = b.byteLength; // 0 once transferred away
    if (len < POOL_BUFFER_BYTES_MIN) return;
    if (this.free.length >= POOL_BUFFERS_MAX || this.freeBytes + len > POOL_BYTES_MAX) return;
    // A buffer given twice would back two live slices at once: refuse loudly.
    if (this.free.some((e) => e.b === b)) throw new CairnError('internal', 'buffer pool: a buffer was given back twice');
    this.free.push({ b, at: this.takes });
    this.freeBytes += len;
  }

  /** Removes free entry i (the last one moves into its place) and returns its buffer. */
  private drop(i: number): B {
    const e = this.free[i]!;
    this.free[i] = this.free[this.free.length - 1]!;
    this.free.pop();
    this.freeBytes -= e.b.byteLength;
    return e.b;
  }

  get size(): number {
    return this.free.length;
  }

  /** Bytes held by free buffers. */
  get bytes(): number {
    return this.freeBytes;
  }
}
