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

/**
 * The probe hash of a utf8 key in a store's index: the key's bytes read as at most two 8-byte words
 * for keys of up to 16 bytes (the first and the last word, overlapping; shorter keys as two 4-byte
 * words or three bytes), each folded in with one multiply, then probeHashI64's final mix. About a
 * third of MurmurHash3's serial multiplies on short keys. Internal to the index, never persisted:
 * key groups always use MurmurHash3 (hashBytes).
 */
@inline export function probeHashBytes(ptr: usize, len: i32): u32 {
  let x: u64 = <u64>len * 0x9e3779b97f4a7c15;
  if (len >= 8) {
    let i = 0;
    for (; i + 8 < len; i += 8) x = (x ^ load<u64>(ptr + <usize>i)) * 0xbf58476d1ce4e5b9;
    x = (x ^ load<u64>(ptr + <usize>(len - 8))) * 0xbf58476d1ce4e5b9;
  } else if (len >= 4) {
    x = (x ^ ((<u64>load<u32>(ptr) << 32) | <u64>load<u32>(ptr + <usize>(len - 4)))) * 0xbf58476d1ce4e5b9;
  } else if (len > 0) {
    const w = <u64>load<u8>(ptr) | (<u64>load<u8>(ptr + <usize>(len >> 1)) << 8) | (<u64>load<u8>(ptr + <usize>(len - 1)) << 16);
    x = (x ^ w) * 0xbf58476d1ce4e5b9;
  }
  return probeHashI64(<i64>x);
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
