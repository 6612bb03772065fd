/** UTF-8 checks of keys given as bytes (Arrow Utf8 columns and dictionaries). */
import { isAscii, isUtf8 } from 'node:buffer';

/**
 * Calls `bad(j)` for each of the `n` keys `bytes[at(j) .. at(j + 1))` that is not valid UTF-8, in
 * order. One pass over all the keys' bytes (simdutf in Node and Deno) settles the common case:
 * valid as a whole, every key is too unless one starts inside another's character, on a
 * continuation byte (none in ASCII text).
 */
export function forEachInvalidUtf8Key(bytes: Uint8Array, at: (j: number) => number, n: number, bad: (j: number) => void): void {
  const all = bytes.subarray(at(0), at(n));
  const whole = isUtf8(all);
  if (whole && isAscii(all)) return;
  for (let j = 0; j < n; j++) {
    const s = at(j);
    const e = at(j + 1);
    if (s < e && ((bytes[s]! & 0xc0) === 0x80 || (!whole && !isUtf8(bytes.subarray(s, e))))) bad(j);
  }
}

/** The first bytes of `bytes` in hex, for error messages. */
export function hexPrefix(bytes: Uint8Array): string {
  const shown = Array.from(bytes.subarray(0, 16), (x) => x.toString(16).padStart(2, '0')).join(' ');
  return bytes.length > 16 ? `${shown} ... (${bytes.length} bytes)` : shown;
}

/**
 * Index of the first byte of `bytes` where it stops being UTF-8 (a byte that cannot start a
 * character, a sequence cut short or broken, an overlong form, a surrogate, beyond U+10FFFF), or -1
 * when it is all valid. For error messages: a plain loop, not for hot paths.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let i = 0; i < n; ) {
    const c = bytes[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80; // the second byte's range (RFC 3629, section 4)
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    if (i + need >= n) return i;
    const second = bytes[i + 1]!;
    if (second < lo || second > hi) return i;
    for (let k = 2; k <= need; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return i;
    i += need + 1;
  }
  return -1;
}
