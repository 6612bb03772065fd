/**
 * The one public error class. `kind` is coarse on purpose, so callers can decide what to do:
 *
 * - `invalid`: the caller passed something wrong (bad batch, unknown field, spec mismatch). Not retryable
 *   with the same input; state is exactly as it was before the call.
 * - `corruption`: bytes read back do not verify (checksum, framing, truncation). Not retryable; restore
 *   an older checkpoint.
 * - `unavailable`: storage or a worker could not do the operation now (EIO, ENOSPC, missing object).
 *   Retryable; nothing partial is visible. One exception: a checkpoint that found another writer on
 *   its storage ("another writer") fails on that backend for good; restart from a checkpoint.
 * - `closed`: the backend or operator was closed. Not retryable.
 * - `internal`: a broken invariant inside Cairn (a bug). Not retryable; the shard should be discarded.
 */
export type CairnErrorKind = 'invalid' | 'corruption' | 'unavailable' | 'closed' | 'internal';

export const RETRYABLE_KINDS: ReadonlySet<CairnErrorKind> = new Set(['unavailable']);

export class CairnError extends Error {
  readonly kind: CairnErrorKind;

  constructor(kind: CairnErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CairnError';
    this.kind = kind;
  }

  get retryable(): boolean {
    return RETRYABLE_KINDS.has(this.kind);
  }
}

/** Throws an `internal` error when an invariant does not hold. Kept on in release builds. */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new CairnError('internal', `invariant violated: ${message}`);
}

export function isCairnError(e: unknown, kind?: CairnErrorKind): e is CairnError {
  return e instanceof CairnError && (kind === undefined || e.kind === kind);
}
