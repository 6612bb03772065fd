// Key rules of the reference models, from the semantics: int64 keys are bigints (safe-integer numbers
// are accepted and normalized), utf8 keys are strings identified by their UTF-8 bytes, a null key is
// invalid, and keys order numerically (int64) or by unsigned UTF-8 bytes (utf8).

import { CairnError } from '../../src/errors.js';

export type KeyType = 'utf8' | 'int64';
export type Key = string | bigint;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Returns the canonical form of a key or throws an `invalid` CairnError.
 *
 * A utf8 key is identified by its UTF-8 bytes. A string holding a lone surrogate has no UTF-8 form;
 * TextEncoder writes U+FFFD for it, so the model treats such a string as the string those bytes
 * decode to (the same key Cairn sees if it encodes with TextEncoder).
 */
export function normalizeKey(key: unknown, keyType: KeyType): Key {
  if (key === null || key === undefined) {
    throw new CairnError('invalid', `expected a ${keyType} key, found ${key === null ? 'null' : 'undefined'}`);
  }
  if (keyType === 'int64') {
    if (typeof key === 'bigint') {
      if (key < INT64_MIN || key > INT64_MAX) {
        throw new CairnError('invalid', `expected an int64 key, found ${key} (outside the int64 range)`);
      }
      return key;
    }
    if (typeof key === 'number') {
      if (!Number.isSafeInteger(key)) {
        throw new CairnError('invalid', `expected an int64 key as bigint or safe integer, found ${key}`);
      }
      return BigInt(key);
    }
    throw new CairnError('invalid', `expected an int64 key, found ${typeof key}`);
  }
  if (typeof key !== 'string') {
    throw new CairnError('invalid', `expected a utf8 key, found ${typeof key}`);
  }
  return decoder.decode(encoder.encode(key));
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return a.length - b.length < 0 ? -1 : a.length > b.length ? 1 : 0;
}

/** Semantic key order: signed numeric for int64, unsigned UTF-8 bytes for utf8 (a prefix first). */
export function compareKeys(a: Key, b: Key): number {
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'string' && typeof b === 'string') return compareBytes(encoder.encode(a), encoder.encode(b));
  throw new CairnError('internal', `expected keys of one type, found ${typeof a} and ${typeof b}`);
}

/** A string that identifies a canonical key inside a JS Map (bigint and string keys never clash). */
export function keyId(key: Key): string {
  return typeof key === 'bigint' ? `i${key}` : `s${key}`;
}
