// Reference key-group hash: MurmurHash3_x86_32 (Austin Appleby, SMHasher) written from the published
// algorithm, not from Cairn's code, so tests can check Cairn's key-group and shard routing against it.
// int64 keys hash their 8 little-endian two's-complement bytes; utf8 keys hash their UTF-8 bytes.

import { CairnError } from '../../src/errors.js';
import { normalizeKey } from './keys.js';

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function rotl32(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/** MurmurHash3_x86_32 of `bytes` with `seed`, as an unsigned 32-bit integer. */
export function murmur3(bytes: Uint8Array, seed = 0): number {
  let h = seed | 0;
  const blocks = Math.floor(bytes.length / 4);
  for (let b = 0; b < blocks; b++) {
    const i = b * 4;
    // Blocks are read little-endian, as the reference implementation does on x86.
    let k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    k = Math.imul(k, C1);
    k = rotl32(k, 15);
    k = Math.imul(k, C2);
    h ^= k;
    h = rotl32(h, 13);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = blocks * 4;
  let k1 = 0;
  // The 1-3 trailing bytes, little-endian (the reference's switch falls through 3 -> 2 -> 1).
  const rest = bytes.length & 3;
  if (rest >= 3) k1 ^= bytes[tail + 2] << 16;
  if (rest >= 2) k1 ^= bytes[tail + 1] << 8;
  if (rest >= 1) {
    k1 ^= bytes[tail];
    k1 = Math.imul(k1, C1);
    k1 = rotl32(k1, 15);
    k1 = Math.imul(k1, C2);
    h ^= k1;
  }
  h ^= bytes.length;
  // fmix32: the final avalanche.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const encoder = new TextEncoder();

/** The bytes Cairn hashes for a key: 8 bytes little-endian for int64, UTF-8 for utf8. */
export function keyBytes(key: string | bigint | number): Uint8Array {
  if (typeof key === 'string') return encoder.encode(key);
  const k = normalizeKey(key, 'int64') as bigint;
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigInt64(0, k, true);
  return bytes;
}

/** Unsigned murmur3 (seed 0) of a key's bytes. */
export function hashKey(key: string | bigint | number): number {
  return murmur3(keyBytes(key), 0);
}

/** Key group of a key: unsigned hash modulo the number of key groups. */
export function keyGroupOf(key: string | bigint | number, keyGroups: number): number {
  if (!Number.isInteger(keyGroups) || keyGroups < 1) {
    throw new CairnError('invalid', `expected a positive integer keyGroups, found ${keyGroups}`);
  }
  return hashKey(key) % keyGroups;
}

/** Shard that owns a key group: key groups are split into `shards` contiguous ranges. */
export function shardOf(keyGroup: number, keyGroups: number, shards: number): number {
  if (!Number.isInteger(keyGroup) || keyGroup < 0 || keyGroup >= keyGroups) {
    throw new CairnError('invalid', `expected a key group in [0, ${keyGroups}), found ${keyGroup}`);
  }
  if (!Number.isInteger(shards) || shards < 1) {
    throw new CairnError('invalid', `expected a positive integer shard count, found ${shards}`);
  }
  // keyGroup * shards stays far below 2^53 for any sane configuration, so this is exact.
  return Math.floor((keyGroup * shards) / keyGroups);
}
