/**
 * Where checkpoint bytes go. Every implementation follows the same contract (test/storage/contract.ts):
 *
 * - `put` is atomic: a reader sees the whole new object or the previous state, never a part. A failed
 *   put rejects with 'unavailable' and leaves the name holding its old object or the new one, whole.
 * - `get` of a missing name rejects with CairnError 'unavailable' (retryable: a tiered store may find it
 *   elsewhere, an eventually consistent one later), best made with `notFound(name, where)`: restore
 *   then knows at once that a file is missing, not failing to read. (For any other 'unavailable' it
 *   asks `list` whether the name exists.) Errors that are not CairnErrors count as 'unavailable'.
 * - `list(prefix)` returns the names that start with `prefix`, sorted ascending by UTF-16 code unit
 *   (the same as byte order for the ASCII names allowed here), including every put that has
 *   resolved (read-after-write: restore and checkpoint ids depend on it).
 * - `delete` of a missing name succeeds.
 * - Bytes are copied in and out; no caller can change stored bytes through an array it holds.
 *
 * Names are validated by `validateName` in every implementation, so the same names work everywhere.
 */
import { CairnError } from '../errors.js';

export interface CheckpointStorage {
  /** Atomic: readers see all of it or none. */
  put(name: string, bytes: Uint8Array): Promise<void>;
  /** Missing: CairnError kind 'unavailable'. */
  get(name: string): Promise<Uint8Array>;
  /** Sorted ascending, names only. */
  list(prefix: string): Promise<string[]>;
  /** Deleting a missing name is not an error. */
  delete(name: string): Promise<void>;
}

/** Longest object name, in bytes (names are ASCII, so also characters). */
export const NAME_BYTES_MAX = 512;
/** Longest segment between slashes; file systems allow 255 and temp names need a few more. */
export const NAME_SEGMENT_BYTES_MAX = 200;

const SEGMENT_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
const PREFIX_PATTERN = /^[A-Za-z0-9._\/-]*$/;

/**
 * Checks an object name: relative path segments of [A-Za-z0-9._-] separated by single '/'. A segment
 * may not start with '.', which excludes '.' and '..' and reserves dot-names for implementations (the
 * file system store's temp files). Throws CairnError 'invalid'.
 */
export function validateName(name: string): void {
  if (typeof name !== 'string') {
    throw new CairnError('invalid', `storage name: expected a string, found ${typeof name}`);
  }
  if (name.length === 0 || name.length > NAME_BYTES_MAX) {
    throw new CairnError('invalid', `storage name length: expected 1..${NAME_BYTES_MAX} characters, found ${name.length}`);
  }
  for (const segment of name.split('/')) {
    if (segment.length > NAME_SEGMENT_BYTES_MAX) {
      throw new CairnError(
        'invalid',
        `storage name segment length: expected at most ${NAME_SEGMENT_BYTES_MAX} characters, found ${segment.length} (name=${JSON.stringify(name)})`,
      );
    }
    if (!SEGMENT_PATTERN.test(segment)) {
      throw new CairnError(
        'invalid',
        `storage name segment: expected [A-Za-z0-9._-] not starting with '.', found ${JSON.stringify(segment)} (name=${JSON.stringify(name)})`,
      );
    }
  }
}

/**
 * Checks a list prefix: empty, or name characters where everything up to the last '/' is a valid name
 * (so a prefix never reaches outside the store).
 */
export function validatePrefix(prefix: string): void {
  if (typeof prefix !== 'string' || prefix.length > NAME_BYTES_MAX || !PREFIX_PATTERN.test(prefix)) {
    throw new CairnError('invalid', `storage list prefix: expected up to ${NAME_BYTES_MAX} characters of [A-Za-z0-9._/-], found ${JSON.stringify(prefix)}`);
  }
  const slash = prefix.lastIndexOf('/');
  if (slash >= 0) validateName(prefix.slice(0, slash));
}

/** A storage's failure as a CairnError: anything else (a custom storage's plain Error) is 'unavailable'. */
export function storageFailure(e: unknown, what: string): CairnError {
  if (e instanceof CairnError) return e;
  return new CairnError('unavailable', `storage ${what} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

/** `f()` (a call into a storage), its failures as storageFailure makes them. */
export async function storageCall<T>(what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw storageFailure(e, what);
  }
}

/**
 * Whether `e`, from `storage.get(name)`, means the object is missing: notFound's error, or another
 * 'unavailable' while a listing of the name succeeds without it.
 */
export async function missingObject(storage: CheckpointStorage, name: string, e: unknown): Promise<boolean> {
  if (!(e instanceof CairnError) || e.kind !== 'unavailable') return false;
  if (isNotFound(e)) return true;
  try {
    return !(await storage.list(name)).includes(name);
  } catch {
    return false;
  }
}

/** The error every implementation raises for a missing object. */
export function notFound(name: string, where: string): CairnError {
  return new CairnError('unavailable', `storage object not found: expected an object named ${JSON.stringify(name)}, found none (${where})`);
}

/** Whether `e` is notFound's error (a missing object, not a failing storage). */
export function isNotFound(e: CairnError): boolean {
  return e.kind === 'unavailable' && e.message.startsWith('storage object not found');
}
