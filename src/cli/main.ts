/**
 * The `cairn` command: dispatches to a command and turns every failure into one line on stderr and an
 * exit code.
 *
 * Exit codes: 0 success; 1 a failure that is not the user's doing (storage trouble, a checkpoint that
 * does not verify, a bug), one line, with the stack only when CAIRN_DEBUG=1; 2 a usage error (bad
 * flag, missing file, unknown field, malformed row, mismatched resume), one line, never a stack.
 */
import process from 'node:process';
import { CairnError } from '../errors.js';
import { USAGE_EXIT_CODE, UsageError, quote } from './errors.js';
import type { ProgressStream } from './progress.js';
import { MAIN_HELP } from './usage.js';

export const COMMANDS = ['run', 'checkpoints', 'generate', 'demo'] as const;
export const FAILURE_EXIT_CODE = 1;
/** Longest error line printed; the rest is cut (a pathological message should not flood a terminal). */
export const ERROR_CHARS_MAX = 2000;

/** Where a command writes, and the environment it reads; tests pass their own. */
export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: ProgressStream;
  env: Record<string, string | undefined>;
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

/** Runs `cairn ARGV` and returns the exit code. Never throws. */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  try {
    const [command, ...rest] = argv;
    switch (command) {
      case undefined:
        io.stderr.write(MAIN_HELP);
        return USAGE_EXIT_CODE;
      case '--help':
      case '-h':
      case 'help':
        io.stdout.write(MAIN_HELP);
        return 0;
      case 'run':
        return await (await import('./run.js')).runCommand(rest, io);
      case 'checkpoints':
        return await (await import('./checkpoints.js')).checkpointsCommand(rest, io);
      case 'generate':
        return await (await import('./generate.js')).generateCommand(rest, io);
      case 'demo':
        return await (await import('./demo.js')).demoCommand(rest, io);
      default:
        throw new UsageError(`expected a command (${COMMANDS.join(', ')}), found ${quote(command)} (see cairn --help)`);
    }
  } catch (e) {
    return reportError(e, io);
  }
}

/** Prints `e` as one line (plus, unless it is a usage error, the stack under CAIRN_DEBUG=1) and returns the exit code. */
export function reportError(e: unknown, io: CliIo): number {
  const user = e instanceof UsageError || (e instanceof CairnError && e.kind === 'invalid');
  const message = e instanceof Error ? e.message : String(e);
  const label = user ? 'error' : e instanceof CairnError ? `${e.kind} error` : 'internal error';
  const hint = user || io.env['CAIRN_DEBUG'] === '1' ? '' : ' (CAIRN_DEBUG=1 shows the stack)';
  const line = `cairn: ${label}: ${message}`.replace(/\s*\n\s*/g, ' ');
  io.stderr.write((line.length > ERROR_CHARS_MAX ? line.slice(0, ERROR_CHARS_MAX) + '…' : line) + hint + '\n');
  if (!user && io.env['CAIRN_DEBUG'] === '1') {
    for (let c: unknown = e; c !== undefined && c !== null; c = c instanceof Error ? c.cause : undefined) {
      io.stderr.write(`${c instanceof Error ? c.stack ?? c.message : String(c)}\n`);
    }
  }
  return user ? USAGE_EXIT_CODE : FAILURE_EXIT_CODE;
}
