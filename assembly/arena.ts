// A byte arena for variable-length data (utf8 keys, opaque values, output key bytes). Bytes are
// appended; replaced or deleted entries become garbage that `compact` reclaims by rewriting only the
// live entries. One arena is one block, so it holds at most blockBytesMax bytes (mem.ts).
import { growZeroed, release, growTransient, releaseTransient, blockBytesMax } from './mem';

export class ByteArena {
  base: usize = 0;
  capBytes: u32 = 0;
  usedBytes: u32 = 0;
  garbageBytes: u32 = 0;
  /** Transient arenas (output keys) are not limited by the state memory cap. */
  transient: bool = false;

  /**
   * The bytes reserve(extra) would allocate (the new arena, allocated before the old one is freed),
   * 0 when `extra` fits, u64.MAX_VALUE past blockBytesMax.
   */
  growthBytes(extra: u32): u64 {
    const need = <u64>this.usedBytes + <u64>extra;
    if (need <= <u64>this.capBytes) return 0;
    if (need > <u64>blockBytesMax) return u64.MAX_VALUE;
    return this.nextCap(need);
  }

  /** The capacity a growth to hold `need` bytes allocates. */
  private nextCap(need: u64): u64 {
    // State arenas grow by a quarter (their slack is memory per key), transient ones by a half.
    let next = <u64>max<u32>(this.capBytes, 4096);
    while (next < need) next = this.transient ? next * 3 / 2 : next * 5 / 4;
    return next > <u64>blockBytesMax ? <u64>blockBytesMax : next;
  }

  /** Makes room for `extra` more bytes. Returns false when the cap or blockBytesMax is hit. */
  reserve(extra: u32): bool {
    const need = <u64>this.usedBytes + <u64>extra;
    if (need <= <u64>this.capBytes) return true;
    if (need > <u64>blockBytesMax) return false;
    const next = this.nextCap(need);
    const p = this.transient ? growTransient(this.base, this.capBytes, <usize>next) : growZeroed(this.base, this.capBytes, <usize>next);
    if (p == 0) return false;
    this.base = p;
    this.capBytes = <u32>next;
    return true;
  }

  /** Appends bytes (room must be reserved) and returns their offset. */
  @inline append(src: usize, len: u32): u32 {
    const off = this.usedBytes;
    memory.copy(this.base + off, src, len);
    this.usedBytes = off + len;
    return off;
  }

  clear(): void {
    this.usedBytes = 0;
    this.garbageBytes = 0;
  }

  free(): void {
    if (this.transient) releaseTransient(this.base, this.capBytes);
    else release(this.base, this.capBytes);
    this.base = 0;
    this.capBytes = 0;
    this.usedBytes = 0;
    this.garbageBytes = 0;
  }
}
