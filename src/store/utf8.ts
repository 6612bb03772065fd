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
