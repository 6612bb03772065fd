/**
 * Progress reporting on stderr.
 *
 * - On a terminal: one line, redrawn in place at most every `TTY_REDRAW_MS`, with a bar (when the
 *   total is known), the percentage, events so far, the event rate and the estimated time left.
 * - Not a terminal (a log file, CI): a plain line at most every `PLAIN_LINE_MS`, so logs stay short.
 * - Both end with one summary line from `finish()`. Quiet mode writes nothing at all.
 *
 * Rates are averages since the start, which are steady and need no history. The clock is injectable,
 * so tests drive time by hand.
 */

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  /** Terminal width; lines are cut to fit. */
  columns?: number;
}

export interface ProgressOptions {
  /** Total input size in bytes, if known; enables the bar, the percentage and the ETA. */
  total?: number;
  stream: ProgressStream;
  mode: 'auto' | 'quiet';
  /** Milliseconds from any fixed origin; defaults to `performance.now`. */
  now?: () => number;
}

export const TTY_REDRAW_MS = 100;
export const PLAIN_LINE_MS = 2000;
const BAR_CHARS = 24;
/** Lines are cut to the terminal width, or to this when the width is unknown. */
const LINE_CHARS_MAX = 200;

export class Progress {
  private readonly style: 'tty' | 'plain' | 'quiet';
  private readonly now: () => number;
  private readonly started: number;
  private lastDraw: number;
  private bytes = 0;
  private events = 0;
  private drawn = false;
  private finished = false;

  constructor(private readonly options: ProgressOptions) {
    this.style = options.mode === 'quiet' ? 'quiet' : options.stream.isTTY === true ? 'tty' : 'plain';
    this.now = options.now ?? (() => performance.now());
    this.started = this.now();
    this.lastDraw = this.started;
  }

  /** Records progress: `bytes` of input consumed and `events` processed so far (both cumulative). */
  update(bytes: number, events: number): void {
    this.bytes = bytes;
    this.events = events;
    if (this.style === 'quiet' || this.finished) return;
    const t = this.now();
    const interval = this.style === 'tty' ? TTY_REDRAW_MS : PLAIN_LINE_MS;
    if (t - this.lastDraw < interval) return;
    this.lastDraw = t;
    if (this.style === 'tty') this.redraw(this.statusLine(t));
    else this.options.stream.write(this.fit(`progress: ${this.statusLine(t)}`) + '\n');
  }

  /** Prints a message on its own line without garbling the bar. */
  note(message: string): void {
    if (this.style === 'quiet') return;
    if (this.style === 'tty' && this.drawn) {
      this.options.stream.write(`\r\x1b[K${message}\n`);
      this.drawn = false;
    } else {
      this.options.stream.write(message + '\n');
    }
  }

  /** Writes the final summary line. Later updates are ignored. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.style === 'quiet') return;
    const seconds = Math.max(0, (this.now() - this.started) / 1000);
    const rate = seconds > 0 ? `, ${formatCount(this.events / seconds)} events/s` : '';
    const summary = `done: ${formatCount(this.events)} events in ${formatSeconds(seconds)}${rate}`;
    if (this.style === 'tty') this.options.stream.write(`\r${this.fit(summary)}\x1b[K\n`);
    else this.options.stream.write(this.fit(summary) + '\n');
  }

  private redraw(line: string): void {
    this.options.stream.write(`\r${this.fit(line)}\x1b[K`);
    this.drawn = true;
  }

  private fit(line: string): string {
    // A pseudo-terminal without a size reports 0 columns: treat it as unknown, not as zero width.
    const columns = this.options.stream.columns;
    const width = Math.min(LINE_CHARS_MAX, (columns !== undefined && columns > 0 ? columns : LINE_CHARS_MAX + 1) - 1);
    return line.length > width ? line.slice(0, Math.max(0, width)) : line;
  }

  private statusLine(t: number): string {
    const seconds = (t - this.started) / 1000;
    const parts: string[] = [];
    const total = this.options.total;
    if (total !== undefined && total > 0) {
      const fraction = Math.min(1, Math.max(0, this.bytes / total));
      if (this.style === 'tty') {
        const filled = Math.round(fraction * BAR_CHARS);
        parts.push(`[${'#'.repeat(filled)}${'-'.repeat(BAR_CHARS - filled)}]`);
      }
      parts.push(`${(fraction * 100).toFixed(1)}%`);
    }
    parts.push(`${formatCount(this.events)} events`);
    if (seconds > 0) parts.push(`${formatCount(this.events / seconds)} events/s`);
    if (total !== undefined && total > 0 && this.bytes > 0 && seconds > 0) {
      const left = Math.max(0, total - this.bytes);
      parts.push(`ETA ${formatSeconds((seconds * left) / this.bytes)}`);
    } else {
      parts.push(`elapsed ${formatSeconds(seconds)}`);
    }
    return parts.join('  ');
  }
}

/** 3 significant digits with k/M/G: 999, 1.23k, 45.6k, 789k, 1.23M. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '?';
  if (n < 1000) return String(Math.round(n));
  const units = ['k', 'M', 'G', 'T'];
  let value = n;
  let unit = -1;
  while (value >= 999.5 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  const digits = value >= 99.95 ? 0 : value >= 9.995 ? 1 : 2;
  return value.toFixed(digits) + units[unit];
}

/** 12.3s, 59s, 1m05s, 2h03m. */
export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
  return `${Math.floor(whole / 3600)}h${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')}m`;
}
