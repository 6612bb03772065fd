/**
 * Parsers for what a user types: durations, window specs, aggregate lists, key specs, integers,
 * formats, timestamps, and the argument vector itself.
 *
 * Every parser is strict (it accepts exactly the documented grammar and nothing "close enough") and
 * every rejection is a `UsageError` (or, for `parseTime`, a `ValueError`) whose message says what was
 * expected and quotes what was found. Parsers never consult the clock, the locale or the time zone, so
 * the same text gives the same value on every machine.
 */
import { parseArgs as nodeParseArgs } from 'node:util';
import { UsageError, ValueError, quote } from './errors.js';

// ---------------------------------------------------------------------------------------------------
// Limits

/**
 * Longest accepted duration: 100 years. Far beyond any useful window, gap or lateness, and small enough
 * that `time + duration` stays an exact integer in a double for every time within `TIME_MS_ABS_MAX`.
 */
export const DURATION_MS_MAX = 100 * 365 * 24 * 3600 * 1000;

/**
 * Most windows one event may belong to with a hopping window (size / slide). A hopping window assigns
 * every event to size/slide windows, so `hopping:1d,1ms` would multiply the input by 86 million; the CLI
 * refuses that up front rather than running out of memory later.
 */
export const HOPPING_WINDOWS_PER_EVENT_MAX = 10_000;

/** Most aggregates in one `--agg` list. Each one is a state column per key and window. */
export const AGGREGATES_MAX = 64;

/** Largest magnitude of a timestamp in ms: the range of a JavaScript `Date` (±100,000,000 days). */
export const TIME_MS_ABS_MAX = 8_640_000_000_000_000;

// ---------------------------------------------------------------------------------------------------
// Durations

const DURATION_RE = /^(\d+)(?:\.(\d+))?(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_EXPECTED = 'expected a duration like 250ms, 5s, 1m or 2h (a bare integer means ms)';

/**
 * Parses `250ms`, `5s`, `1m`, `2h`, `1.5s` or a bare integer (milliseconds) into whole milliseconds.
 * Rejects negatives, unknown units, and fractions that do not come to a whole millisecond (`1.5ms`).
 */
export function parseDuration(text: string): number {
  const m = DURATION_RE.exec(text);
  if (m === null) throw new UsageError(`${DURATION_EXPECTED}, found ${quote(text)}`);
  const [, whole, fraction, unit] = m as unknown as [string, string, string | undefined, string | undefined];
  if (fraction !== undefined && unit === undefined) {
    throw new UsageError(`${DURATION_EXPECTED}, found ${quote(text)} (a fraction needs a unit, as in 1.5s)`);
  }
  const unitMs = UNIT_MS[unit ?? 'ms']!;
  // 16 digits is more than DURATION_MS_MAX has; the check keeps Number(whole) exact.
  if (whole.length > 16) throw new UsageError(`${DURATION_EXPECTED} of at most 100 years, found ${quote(text)}`);
  let ms = Number(whole) * unitMs;
  if (fraction !== undefined) {
    // Exact integer arithmetic: fraction/10^k * unitMs must be a whole number of ms. Trailing zeros are
    // dropped first; after that more than 9 digits can never come to whole ms (unitMs <= 2^7 * 3^2 * 5^5).
    const digits = fraction.replace(/0+$/, '');
    if (digits.length > 9) throw new UsageError(`${DURATION_EXPECTED} in whole milliseconds, found ${quote(text)}`);
    if (digits.length > 0) {
      const scaled = Number(digits) * unitMs;
      const denominator = 10 ** digits.length;
      if (scaled % denominator !== 0) {
        throw new UsageError(`${DURATION_EXPECTED} in whole milliseconds, found ${quote(text)}`);
      }
      ms += scaled / denominator;
    }
  }
  if (ms > DURATION_MS_MAX) throw new UsageError(`${DURATION_EXPECTED} of at most 100 years, found ${quote(text)}`);
  return ms;
}

// ---------------------------------------------------------------------------------------------------
// Windows

export type WindowSpec =
  | { kind: 'tumbling'; size: number }
  | { kind: 'hopping'; size: number; slide: number }
  | { kind: 'session'; gap: number }
  | { kind: 'none' };

const WINDOW_EXPECTED = 'expected a window like tumbling:1m, hopping:10m,1m, session:30s or none';

/** Parses `tumbling:SIZE`, `hopping:SIZE,SLIDE`, `session:GAP` or `none`. Durations must be positive. */
export function parseWindow(text: string): WindowSpec {
  if (text === 'none') return { kind: 'none' };
  const colon = text.indexOf(':');
  if (colon < 0) throw new UsageError(`${WINDOW_EXPECTED}, found ${quote(text)}`);
  const kind = text.slice(0, colon);
  const args = text.slice(colon + 1);
  const positive = (part: string, what: string): number => {
    let ms: number;
    try {
      ms = parseDuration(part);
    } catch (e) {
      throw new UsageError(`${WINDOW_EXPECTED}, found ${quote(text)} (${what}: ${(e as Error).message})`);
    }
    if (ms === 0) throw new UsageError(`${WINDOW_EXPECTED}, found ${quote(text)} (${what} must be greater than 0)`);
    return ms;
  };
  switch (kind) {
    case 'tumbling':
      return { kind, size: positive(args, 'size') };
    case 'session':
      return { kind, gap: positive(args, 'gap') };
    case 'hopping': {
      const parts = args.split(',');
      if (parts.length !== 2) {
        throw new UsageError(`${WINDOW_EXPECTED}, found ${quote(text)} (hopping takes SIZE,SLIDE)`);
      }
      const size = positive(parts[0]!, 'size');
      const slide = positive(parts[1]!, 'slide');
      if (slide > size) {
        throw new UsageError(`expected a hopping slide no longer than its size, found size ${size} ms and slide ${slide} ms (${quote(text)})`);
      }
      if (size % slide !== 0) {
        throw new UsageError(`expected a hopping slide that divides its size, found size ${size} ms and slide ${slide} ms (${quote(text)})`);
      }
      if (size / slide > HOPPING_WINDOWS_PER_EVENT_MAX) {
        throw new UsageError(
          `expected at most ${HOPPING_WINDOWS_PER_EVENT_MAX} windows per event (size / slide), found ${size / slide} (${quote(text)})`,
        );
      }
      return { kind, size, slide };
    }
    default:
      throw new UsageError(`${WINDOW_EXPECTED}, found ${quote(text)} (unknown window kind ${quote(kind)})`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Aggregates

export const AGGREGATE_FUNCTIONS = ['count', 'sum', 'min', 'max', 'mean', 'first', 'last'] as const;
export type AggregateFunction = (typeof AGGREGATE_FUNCTIONS)[number];
export interface AggregateSpec {
  fn: AggregateFunction;
  /** The input field; absent only for a bare `count`. */
  field?: string;
}

/** Output names become column names in CSV headers and JSON keys, so they are plain identifiers. */
const OUTPUT_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Input field names come from files; anything without blanks or the list's own punctuation. */
const FIELD_NAME_RE = /^[^\s(),=:]+$/;
const CALL_RE = /^([A-Za-z_]+)\s*(?:\((.*)\))?$/;
const AGG_EXPECTED = 'expected an aggregate like n=count or spend=sum(amount)';

/**
 * Parses `"n=count,spend=sum(amount),top=max(amount)"` into `{ n: { fn: 'count' }, spend: { fn: 'sum',
 * field: 'amount' }, ... }`, keeping the order written. `count` and `count(field)` are both allowed; every
 * other function needs a field.
 */
export function parseAggs(text: string): Record<string, AggregateSpec> {
  const items = text.split(',');
  if (items.length > AGGREGATES_MAX) {
    throw new UsageError(`expected at most ${AGGREGATES_MAX} aggregates, found ${items.length}`);
  }
  const out: Record<string, AggregateSpec> = {};
  const seen = new Set<string>();
  items.forEach((raw, index) => {
    const item = raw.trim();
    const where = `(aggregate ${index + 1} of ${quote(text)})`;
    if (item === '') throw new UsageError(`${AGG_EXPECTED}, found an empty item ${where}`);
    const eq = item.indexOf('=');
    if (eq < 0) throw new UsageError(`${AGG_EXPECTED}, found ${quote(item)} without NAME= ${where}`);
    const name = item.slice(0, eq).trim();
    const call = item.slice(eq + 1).trim();
    if (name === '') throw new UsageError(`expected an output name before '=', found ${quote(item)} ${where}`);
    // '__proto__' is an identifier but would not become an own key of a plain object.
    if (!OUTPUT_NAME_RE.test(name) || name === '__proto__') {
      throw new UsageError(`expected an output name of letters, digits and '_', found ${quote(name)} ${where}`);
    }
    if (seen.has(name)) throw new UsageError(`expected distinct output names, found ${quote(name)} twice ${where}`);
    seen.add(name);
    const m = CALL_RE.exec(call);
    if (m === null) throw new UsageError(`${AGG_EXPECTED}, found ${quote(item)} ${where}`);
    const fnName = m[1]!;
    const argument = m[2];
    if (!(AGGREGATE_FUNCTIONS as readonly string[]).includes(fnName)) {
      const hint = fnName === 'avg' ? '; for the average use mean' : '';
      throw new UsageError(`expected one of ${AGGREGATE_FUNCTIONS.join(', ')}, found ${quote(fnName)}${hint} ${where}`);
    }
    const fn = fnName as AggregateFunction;
    if (argument === undefined) {
      if (fn !== 'count') throw new UsageError(`expected ${fn}(FIELD), found ${quote(call)} ${where}`);
      out[name] = { fn };
      return;
    }
    const field = argument.trim();
    if (!FIELD_NAME_RE.test(field)) {
      throw new UsageError(`expected one field name inside ${fn}(...), found ${quote(argument)} ${where}`);
    }
    out[name] = { fn, field };
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Keys

export type KeyType = 'utf8' | 'int64';
export interface KeySpec {
  field: string;
  type: KeyType;
}

/** Parses `user` (a utf8 key) or `user:int64` / `user:utf8`. */
export function parseKey(text: string): KeySpec {
  const colon = text.indexOf(':');
  const field = colon < 0 ? text : text.slice(0, colon);
  const type = colon < 0 ? 'utf8' : text.slice(colon + 1);
  if (!FIELD_NAME_RE.test(field)) {
    throw new UsageError(`expected a key like user or user:int64, found ${quote(text)}`);
  }
  if (type !== 'utf8' && type !== 'int64') {
    throw new UsageError(`expected key type utf8 or int64, found ${quote(type)} (in ${quote(text)})`);
  }
  return { field, type };
}

// ---------------------------------------------------------------------------------------------------
// Plain values

const INTEGER_RE = /^(?:\d+(?:_\d+)*|\d+e\d+)$/;

/**
 * Parses a non-negative integer option such as `--events 1_000_000` or `--events 1e6` and checks it
 * against `[min, max]`. `what` names the option in the message.
 */
export function parseInteger(text: string, what: string, range: { min: number; max: number }): number {
  const value = INTEGER_RE.test(text) ? Number(text.replaceAll('_', '')) : NaN;
  if (!Number.isSafeInteger(value)) {
    throw new UsageError(`expected ${what} to be a whole number, found ${quote(text)}`);
  }
  if (value < range.min || value > range.max) {
    throw new UsageError(`expected ${what} between ${range.min} and ${range.max}, found ${value}`);
  }
  return value;
}

/** Checks that `text` is one of `choices` (for example a `--format`). */
export function parseChoice<C extends string>(text: string, what: string, choices: readonly C[]): C {
  if (!(choices as readonly string[]).includes(text)) {
    throw new UsageError(`expected ${what} to be one of ${choices.join(', ')}, found ${quote(text)}`);
  }
  return text as C;
}

export type InputFormat = 'csv' | 'ndjson' | 'arrow';
export type OutputFormat = 'csv' | 'ndjson';
export const INPUT_FORMATS: readonly InputFormat[] = ['csv', 'ndjson', 'arrow'];

const EXTENSION_FORMATS: Record<string, InputFormat> = {
  '.csv': 'csv',
  '.ndjson': 'ndjson',
  '.jsonl': 'ndjson',
  '.arrow': 'arrow',
  '.arrows': 'arrow',
  '.ipc': 'arrow',
  '.feather': 'arrow',
};

/**
 * The format of `path`: `explicit` if given (from `--format`), else from the file extension
 * (.csv; .ndjson or .jsonl; .arrow, .arrows, .ipc or .feather).
 */
export function formatOf(path: string, explicit?: string): InputFormat {
  if (explicit !== undefined) return parseChoice(explicit, '--format', INPUT_FORMATS);
  const dot = path.lastIndexOf('.');
  const format = dot < 0 ? undefined : EXTENSION_FORMATS[path.slice(dot).toLowerCase()];
  if (format === undefined) {
    throw new UsageError(
      `expected a file ending in .csv, .ndjson, .jsonl, .arrow, .arrows, .ipc or .feather, found ${quote(path)} (pass --format csv|ndjson|arrow)`,
    );
  }
  return format;
}

// ---------------------------------------------------------------------------------------------------
// Timestamps

const TIME_EXPECTED =
  'expected a time as integer milliseconds since the epoch or ISO 8601 like 2024-01-02T03:04:05.678Z';

/**
 * Converts an event time to milliseconds since the Unix epoch.
 *
 * Accepts integers (numbers, bigints, or strings of digits with an optional '-') and ISO 8601 text:
 * `YYYY-MM-DD`, optionally followed by `T` (or a space) and `hh:mm`, `:ss`, and a fraction `.f` of 1 to
 * 9 digits, and then `Z` or an offset `±hh:mm`, `±hhmm` or `±hh`. Text without an offset is taken as
 * UTC (never local time, so results do not depend on the machine). Fractions finer than a millisecond
 * are truncated toward earlier times. Anything else, and any time beyond ±`TIME_MS_ABS_MAX`, throws a
 * `ValueError`.
 */
export function parseTime(value: string | number | bigint): number {
  if (typeof value === 'number') {
    if (Number.isInteger(value) && Math.abs(value) <= TIME_MS_ABS_MAX) return value === 0 ? 0 : value;
    throw new ValueError(`${TIME_EXPECTED}, found ${value}`);
  }
  if (typeof value === 'bigint') {
    if (value <= BigInt(TIME_MS_ABS_MAX) && value >= -BigInt(TIME_MS_ABS_MAX)) return Number(value);
    throw new ValueError(`${TIME_EXPECTED}, found ${value}`);
  }
  const ms = parseIntegerTime(value);
  if (ms !== undefined) return ms;
  return parseIsoTime(value);
}

/** Integer milliseconds written as digits; undefined when `text` is not a plain integer. */
function parseIntegerTime(text: string): number | undefined {
  const n = text.length;
  let i = text.charCodeAt(0) === 45 /* - */ ? 1 : 0;
  // 17 characters covers "-8640000000000000"; longer digit runs are out of range (and not exact).
  if (i === n || n > 17) return n > 17 && /^-?\d+$/.test(text) ? rangeError(text) : undefined;
  let v = 0;
  for (; i < n; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    v = v * 10 + d;
  }
  if (v > TIME_MS_ABS_MAX) return rangeError(text);
  return text.charCodeAt(0) === 45 && v !== 0 ? -v : v;
}

function rangeError(text: string): never {
  throw new ValueError(`${TIME_EXPECTED} within ±${TIME_MS_ABS_MAX}, found ${quote(text)}`);
}

/** Two ASCII digits at `i` as a number, or -1. */
function twoDigits(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

function parseIsoTime(s: string): number {
  const bad = (why: string): never => {
    throw new ValueError(`${TIME_EXPECTED}, found ${quote(s)}${why === '' ? '' : ` (${why})`}`);
  };
  const n = s.length;
  if (n < 10 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) bad('');
  const y1 = twoDigits(s, 0);
  const y2 = twoDigits(s, 2);
  const month = twoDigits(s, 5);
  const day = twoDigits(s, 8);
  if (y1 < 0 || y2 < 0 || month < 0 || day < 0) bad('');
  const year = y1 * 100 + y2;
  if (month < 1 || month > 12) bad('month out of range');
  if (day < 1 || day > daysInMonth(year, month)) bad('day out of range');
  let i = 10;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let milli = 0;
  const sep = s.charCodeAt(i);
  if (sep === 84 /* T */ || sep === 116 /* t */ || sep === 32 /* space */) {
    hour = twoDigits(s, i + 1);
    minute = s.charCodeAt(i + 3) === 58 /* : */ ? twoDigits(s, i + 4) : -1;
    if (hour < 0 || minute < 0) bad('');
    if (hour > 23) bad('hour out of range');
    if (minute > 59) bad('minute out of range');
    i += 6;
    if (s.charCodeAt(i) === 58 /* : */) {
      second = twoDigits(s, i + 1);
      if (second < 0) bad('');
      if (second > 59) bad('second out of range');
      i += 3;
      const dot = s.charCodeAt(i);
      if (dot === 46 /* . */ || dot === 44 /* , */) {
        i++;
        const start = i;
        while (i < n && i - start < 10) {
          const d = s.charCodeAt(i) - 48;
          if (d < 0 || d > 9) break;
          if (i - start < 3) milli = milli * 10 + d;
          i++;
        }
        const digits = i - start;
        if (digits === 0 || digits > 9) bad('expected 1 to 9 fraction digits');
        if (digits < 3) milli *= digits === 1 ? 100 : 10;
      }
    }
  }
  let offsetMinutes = 0;
  if (i < n) {
    const c = s.charCodeAt(i);
    if ((c === 90 /* Z */ || c === 122 /* z */) && i + 1 === n) {
      i++;
    } else if (c === 43 /* + */ || c === 45 /* - */) {
      const oh = twoDigits(s, i + 1);
      let om = 0;
      let end = i + 3;
      if (end < n) {
        const colon = s.charCodeAt(end) === 58 ? 1 : 0;
        om = twoDigits(s, end + colon);
        end += colon + 2;
      }
      if (oh < 0 || om < 0 || end !== n) bad('');
      if (oh > 23 || om > 59) bad('offset out of range');
      offsetMinutes = (c === 45 ? -1 : 1) * (oh * 60 + om);
      i = n;
    } else {
      bad('');
    }
  }
  if (i !== n) bad('');
  const days = daysFromCivil(year, month, day);
  const ms = days * 86_400_000 + hour * 3_600_000 + minute * 60_000 + second * 1000 + milli - offsetMinutes * 60_000;
  if (Math.abs(ms) > TIME_MS_ABS_MAX) bad('out of range');
  return ms;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function daysInMonth(year: number, month: number): number {
  return month === 2 ? (isLeapYear(year) ? 29 : 28) : [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
}

/** Days from 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/** Formats ms since the epoch as ISO 8601 UTC with milliseconds (`2024-01-02T03:04:05.678Z`). */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString();
}

// ---------------------------------------------------------------------------------------------------
// Argument vectors

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** Placeholder shown in help, e.g. FILE. String options only. */
  valueName?: string;
  required?: boolean;
  /** Used when the option is absent. String options only; booleans default to false. */
  default?: string;
  description: string;
}

export interface PositionalSpec {
  name: string;
  description: string;
  /** When given, the positional must be one of these. */
  choices?: readonly string[];
}

export interface CommandSpec {
  /** As typed, e.g. `cairn run`. */
  name: string;
  summary: string;
  /** All positionals are required. */
  positionals?: readonly PositionalSpec[];
  options: Readonly<Record<string, OptionSpec>>;
  examples?: readonly string[];
}

type OptionValue<O extends OptionSpec> = O extends { type: 'boolean' }
  ? boolean
  : O extends { required: true }
    ? string
    : O extends { default: string }
      ? string
      : string | undefined;

export type OptionValues<S extends CommandSpec> = { -readonly [K in keyof S['options']]: OptionValue<S['options'][K]> };

export type ParsedArgs<S extends CommandSpec> =
  | { help: true }
  | { help: false; values: OptionValues<S>; positionals: string[] };

/** Most arguments accepted on one command line; a guard against a runaway shell expansion. */
export const ARGUMENTS_MAX = 1000;

/**
 * Parses `argv` (without the program and command names) against `spec`, with `node:util` parseArgs in
 * strict mode (available in Node 20 and Deno 2). `--help`/`-h` anywhere returns `{ help: true }` and
 * skips every other check. Otherwise unknown options, missing values, repeated options, missing
 * required options and wrong positionals become `UsageError`s that end with a pointer to `--help`.
 */
export function parseArgs<S extends CommandSpec>(argv: readonly string[], spec: S): ParsedArgs<S> {
  const fail = (message: string): never => {
    throw new UsageError(`${message} (see ${spec.name} --help)`);
  };
  if (argv.length > ARGUMENTS_MAX) fail(`expected at most ${ARGUMENTS_MAX} arguments, found ${argv.length}`);
  if (argv.includes('--help') || argv.includes('-h')) return { help: true };
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = o.short === undefined ? { type: o.type } : { type: o.type, short: o.short };
  }
  let parsed: ReturnType<typeof nodeParseArgs>;
  try {
    parsed = nodeParseArgs({ args: [...argv], options, strict: true, allowPositionals: true, tokens: true });
  } catch (e) {
    // Node's messages are clear ("Unknown option '--x'"); keep them and drop the stack.
    const message = (e as Error).message.split('\n')[0]!;
    return fail(message);
  }
  const counts = new Map<string, number>();
  for (const token of parsed.tokens ?? []) {
    if (token.kind !== 'option') continue;
    const count = (counts.get(token.name) ?? 0) + 1;
    counts.set(token.name, count);
    if (count === 2) fail(`expected --${token.name} at most once, found it repeated`);
  }
  const values: Record<string, string | boolean | undefined> = {};
  for (const [name, o] of Object.entries(spec.options)) {
    const v = parsed.values[name] as string | boolean | undefined;
    if (o.type === 'boolean') {
      values[name] = v === true;
    } else if (v === undefined) {
      if (o.required === true) fail(`expected --${name} ${o.valueName ?? 'VALUE'}, found it missing`);
      values[name] = o.default;
    } else {
      values[name] = v;
    }
  }
  const wanted = spec.positionals ?? [];
  const positionals = parsed.positionals;
  if (positionals.length !== wanted.length) {
    const names = wanted.map((p) => p.name).join(' ');
    fail(
      `expected ${wanted.length === 0 ? 'no arguments' : names} after ${spec.name}, found ${
        positionals.length === 0 ? 'none' : positionals.map((p) => quote(p)).join(' ')
      }`,
    );
  }
  wanted.forEach((p, i) => {
    if (p.choices !== undefined && !p.choices.includes(positionals[i]!)) {
      fail(`expected ${p.name} to be one of ${p.choices.join(', ')}, found ${quote(positionals[i]!)}`);
    }
  });
  return { help: false, values: values as OptionValues<S>, positionals };
}

/** Help lines are wrapped to this width. */
export const HELP_COLUMNS = 100;

/** Help text for `spec`: synopsis, summary, positionals, options (with defaults) and examples. */
export function formatHelp(spec: CommandSpec): string {
  const flag = (name: string, o: OptionSpec): string =>
    `${o.short === undefined ? '' : `-${o.short}, `}--${name}${o.type === 'string' ? ` ${o.valueName ?? 'VALUE'}` : ''}`;
  const required = Object.entries(spec.options).filter(([, o]) => o.required === true);
  const synopsis = [
    spec.name,
    ...(spec.positionals ?? []).map((p) => (p.choices === undefined ? p.name : p.choices.join('|'))),
    ...required.map(([name, o]) => flag(name, o)),
    '[options]',
  ].join(' ');
  const positionalRows: [string, string][] = (spec.positionals ?? []).map((p) => [p.name, p.description]);
  const optionRows: [string, string][] = Object.entries(spec.options).map(([name, o]) => {
    const suffix = o.required === true ? ' (required)' : o.default !== undefined ? ` (default: ${o.default})` : '';
    return [flag(name, o), o.description + suffix];
  });
  optionRows.push(['-h, --help', 'Show this help.']);
  const width = Math.min(32, Math.max(...[...positionalRows, ...optionRows].map(([left]) => left.length)) + 2);
  const section = (title: string, rows: [string, string][]): string[] => {
    const out = ['', title];
    for (const [left, right] of rows) {
      const wrapped = wrap(right, HELP_COLUMNS - 2 - width);
      if (left.length + 2 > width) out.push(`  ${left}`);
      else out.push(`  ${left.padEnd(width)}${wrapped.shift()!}`);
      for (const rest of wrapped) out.push(`  ${' '.repeat(width)}${rest}`);
    }
    return out;
  };
  const lines = [`Usage: ${synopsis}`, '', ...wrap(spec.summary, HELP_COLUMNS)];
  if (positionalRows.length > 0) lines.push(...section('Arguments:', positionalRows));
  lines.push(...section('Options:', optionRows));
  if (spec.examples !== undefined && spec.examples.length > 0) {
    lines.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`));
  }
  return lines.join('\n') + '\n';
}

/** Splits `text` into lines of at most `columns` characters at spaces (a longer word gets its own line). */
function wrap(text: string, columns: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > columns) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines;
}
