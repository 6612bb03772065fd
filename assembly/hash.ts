// MurmurHash3 x86_32 with seed 0: the stable key hash of Cairn. Key groups are `hash % keyGroups`,
// so this function is part of the checkpoint format and must never change. int64 keys hash as their
// 8 little-endian bytes; utf8 keys hash as their UTF-8 bytes. The TypeScript twin lives in
// src/shard/hash.ts and a test pins known keys to known values in both.

const C1: u32 = 0xcc9e2d51;
const C2: u32 = 0x1b873593;

@inline function mixK(k: u32): u32 {
  k *= C1;
  k = rotl<u32>(k, 15);
  return k * C2;
}

@inline function mixH(h: u32, k: u32): u32 {
  h ^= mixK(k);
  h = rotl<u32>(h, 13);
  return h * 5 + 0xe6546b64;
}

@inline export function fmix32(h: u32): u32 {
  h ^= h >>> 16;
  h *= 0x85ebca6b;
  h ^= h >>> 13;
  h *= 0xc2b2ae35;
  h ^= h >>> 16;
  return h;
}

@inline export function hashI64(key: i64): u32 {
  let h: u32 = 0;
  h = mixH(h, <u32>key);
  h = mixH(h, <u32>(key >>> 32));
  return fmix32(h ^ 8);
}

export function hashBytes(ptr: usize, len: i32): u32 {
  return hashBytesInline(ptr, len);
}

/** hashBytes, inlined into a hot loop. */
@inline export function hashBytesInline(ptr: usize, len: i32): u32 {
  let h: u32 = 0;
  const blocks = len >> 2;
  for (let i = 0; i < blocks; i++) {
    h = mixH(h, load<u32>(ptr + (<usize>i << 2)));
  }
  const tail = ptr + (<usize>blocks << 2);
  let k: u32 = 0;
  const rest = len & 3;
  if (rest == 3) k ^= <u32>load<u8>(tail, 2) << 16;
  if (rest >= 2) k ^= <u32>load<u8>(tail, 1) << 8;
  if (rest >= 1) {
    k ^= <u32>load<u8>(tail);
    h ^= mixK(k);
  }
  return fmix32(h ^ <u32>len);
}

/**
 * The probe hash of an int64 key in a store's index: one multiply (Fibonacci hashing of the key
 * folded onto itself), much cheaper per event than MurmurHash3. Internal to the index, never
 * persisted: key groups always use the MurmurHash3 above.
 */
@inline export function probeHashI64(key: i64): u32 {
  const x = <u64>key ^ (<u64>key >>> 29);
  return <u32>((x * 0x9e3779b97f4a7c15) >>> 32);
}

/** The index hash of a (key, namespace) pair: the key hash mixed with the window namespace. */
@inline export function hashWithNs(keyHash: u32, ns: i64): u32 {
  return hashWithMix(keyHash, nsMix(ns));
}

/** The namespace's part of hashWithNs, for reuse across the events of one pane. */
@inline export function nsMix(ns: i64): u32 {
  return mixK(<u32>ns) ^ rotl<u32>(mixK(<u32>(ns >>> 32)), 7);
}

/** hashWithNs given nsMix(ns). */
@inline export function hashWithMix(keyHash: u32, mix: u32): u32 {
  return fmix32(keyHash ^ mix);
}
