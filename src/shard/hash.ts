/**
 * The key-group hash, TypeScript twin of assembly/hash.ts: MurmurHash3 x86_32, seed 0, over the
 * key's bytes (int64 as 8 little-endian bytes, utf8 as UTF-8). It is part of the checkpoint format
 * (key groups are hash % keyGroups) and must never change; test/shard/hash.test.ts pins values.
 */
import { CairnError } from '../errors.js';

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function mixK(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

function mixH(h: number, k: number): number {
  h ^= mixK(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** MurmurHash3's 32-bit finalizer: a bijective mix with full avalanche (unsigned result). */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function murmur3Bytes(bytes: Uint8Array, start = 0, end = bytes.length): number {
  const len = end - start;
  let h = 0;
  let i = start;
  const blocksEnd = start + (len & ~3);
  for (; i < blocksEnd; i += 4) {
    h = mixH(h, bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
  }
  const rest = len & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= bytes[i + 2]! << 16;
    if (rest >= 2) k ^= bytes[i + 1]! << 8;
    k ^= bytes[i]!;
    h ^= mixK(k);
  }
  return fmix32(h ^ len);
}

export function murmur3Int64(key: bigint): number {
  const u = BigInt.asUintN(64, key);
  const lo = Number(u & 0xffffffffn) | 0;
  const hi = Number(u >> 32n) | 0;
  let h = mixH(0, lo);
  h = mixH(h, hi);
  return fmix32(h ^ 8);
}

const encoder = new TextEncoder();

/**
 * A key's hash, as routing computes it: a string hashes as a utf8 key, a bigint or safe-integer
 * number as an int64 key (so 42 and 42n hash alike, and "42" does not).
 */
export function hashKey(key: bigint | number | string): number {
  if (typeof key === 'string') return murmur3Bytes(encoder.encode(key));
  if (typeof key === 'number' && Number.isSafeInteger(key)) return murmur3Int64(BigInt(key));
  if (typeof key === 'bigint' && key >= -(2n ** 63n) && key < 2n ** 63n) return murmur3Int64(key);
  const found = typeof key === 'bigint' || typeof key === 'number' ? String(key) : key === null ? 'null' : typeof key;
  throw new CairnError('invalid', `hashKey: expected a string (utf8 key) or an int64 as a bigint or safe-integer number, found ${found}`);
}

export function keyGroupOf(hash: number, keyGroups: number): number {
  return hash % keyGroups;
}
