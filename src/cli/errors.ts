/**
 * Errors of the command-line front end.
 *
 * The SDK reports its own failures with `CairnError` (see ../errors.ts). The CLI adds two classes that
 * never leave `src/cli`:
 *
 * - `UsageError`: the user asked for something that cannot work (a bad flag, a malformed duration, a
 *   row that does not parse, a missing input file). The CLI prints its message on one line and exits
 *   with status 2. Messages follow the house form "expected X, found Y (context)".
 * - `ValueError`: one value could not be converted (a timestamp, an integer). It carries no file or
 *   line, because the converters do not know them; the readers catch it and rethrow a `UsageError`
 *   that starts with `<file>:<line>:`.
 */

export const USAGE_EXIT_CODE = 2;

export class UsageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UsageError';
  }
}

export class ValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ValueError';
  }
}

/** Shows a user-supplied value in a message: quoted, escaped, and cut to a readable length. */
export function quote(text: string, lengthMax: number = QUOTED_CHARS_MAX): string {
  const cut = text.length > lengthMax ? text.slice(0, lengthMax) + '…' : text;
  return JSON.stringify(cut);
}

/** Values longer than this are abbreviated in messages, so one bad 10 MB field does not flood a terminal. */
export const QUOTED_CHARS_MAX = 60;
