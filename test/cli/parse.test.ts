// Proves the CLI's text parsers (src/cli/parse.ts) accept exactly their documented grammars and reject
// everything else with a UsageError (or ValueError for times) that quotes the bad text. Fixed tables
// cover good and bad cases; property tests compare parseDuration with integer arithmetic and parseTime
// with an independent oracle (Date's own ISO formatting and offsets applied by hand); parseArgs is checked
// against the real command specs of usage.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { UsageError, ValueError } from '../../src/cli/errors.js';
import {
  DURATION_MS_MAX,
  HELP_COLUMNS,
  HOPPING_WINDOWS_PER_EVENT_MAX,
  TIME_MS_ABS_MAX,
  formatHelp,
  formatOf,
  formatTime,
  parseAggs,
  parseArgs,
  parseDuration,
  parseInteger,
  parseKey,
  parseTime,
  parseWindow,
} from '../../src/cli/parse.js';
import { CHECKPOINTS_COMMAND, GENERATE_COMMAND, RUN_COMMAND, RUN_HELP } from '../../src/cli/usage.js';

/** Asserts that `f` throws an error of class `kind` whose message contains every `parts`. */
function throwsWith(f: () => unknown, kind: new (...args: never[]) => Error, ...parts: string[]): void {
  try {
    f();
  } catch (e) {
    assert.instance(e, kind, `expected ${kind.name}, got ${String(e)}`);
    for (const p of parts) assert.ok((e as Error).message.includes(p), `message ${JSON.stringify((e as Error).message)} lacks ${JSON.stringify(p)}`);
    return;
  }
  assert.unreachable(`expected ${kind.name} with ${parts.join(', ')}`);
}

test('parseDuration: units, bare integers and exact fractions', () => {
  const cases: [string, number][] = [
    ['0', 0],
    ['250', 250],
    ['250ms', 250],
    ['5s', 5000],
    ['1m', 60_000],
    ['2h', 7_200_000],
    ['1.5s', 1500],
    ['0.001s', 1],
    ['1.1s', 1100],
    ['0.5m', 30_000],
    ['1.000s', 1000],
    ['5.00ms', 5],
  ];
  for (const [text, ms] of cases) assert.is(parseDuration(text), ms, text);
});

test('parseDuration: rejects negatives, NaN, unknown units, non-whole ms, empty, too large', () => {
  for (const text of ['', '-1', '-5s', 'NaN', 'abc', '5x', '5 s', ' 5s', '1.5ms', '1.5', '0.0001s', '0.0000005h', '1e3', '5S', '.5s', '5.s', '1d']) {
    throwsWith(() => parseDuration(text), UsageError, JSON.stringify(text));
  }
  throwsWith(() => parseDuration(String(DURATION_MS_MAX + 1)), UsageError, '100 years');
  assert.is(parseDuration(String(DURATION_MS_MAX)), DURATION_MS_MAX);
});

test('parseDuration agrees with integer arithmetic on generated inputs', () => {
  const units: [string, bigint][] = [['ms', 1n], ['s', 1000n], ['m', 60_000n], ['h', 3_600_000n]];
  fc.assert(
    fc.property(fc.nat({ max: 100_000 }), fc.nat({ max: 999_999 }), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 3 }), (whole, frac, fracDigits, u) => {
      const [unit, factor] = units[u]!;
      const fracText = fracDigits === 0 ? '' : String(frac % 10 ** fracDigits).padStart(fracDigits, '0');
      const text = `${whole}${fracText === '' ? '' : '.' + fracText}${unit}`;
      // Oracle: value in units of 10^-fracDigits ms, computed in BigInt.
      const scaled = (BigInt(whole) * 10n ** BigInt(fracDigits) + BigInt(fracText === '' ? 0 : Number(fracText))) * factor;
      const denominator = 10n ** BigInt(fracDigits);
      if (scaled % denominator !== 0n) {
        throwsWith(() => parseDuration(text), UsageError, 'whole milliseconds');
      } else {
        assert.is(parseDuration(text), Number(scaled / denominator), text);
      }
    }),
    { numRuns: 500 },
  );
});

test('parseWindow: the four kinds', () => {
  assert.equal(parseWindow('tumbling:1m'), { kind: 'tumbling', size: 60_000 });
  assert.equal(parseWindow('hopping:10m,1m'), { kind: 'hopping', size: 600_000, slide: 60_000 });
  assert.equal(parseWindow('hopping:1m,1m'), { kind: 'hopping', size: 60_000, slide: 60_000 });
  assert.equal(parseWindow('session:30s'), { kind: 'session', gap: 30_000 });
  assert.equal(parseWindow('none'), { kind: 'none' });
});

test('parseWindow: rejects malformed specs with a reason', () => {
  const bad: [string, string][] = [
    ['', 'expected a window'],
    ['tumbling', 'expected a window'],
    ['tumbling:', 'size'],
    ['tumbling:0', 'greater than 0'],
    ['tumbling:-1m', 'size'],
    ['sliding:1m', 'unknown window kind'],
    ['hopping:10m', 'SIZE,SLIDE'],
    ['hopping:10m,1m,1s', 'SIZE,SLIDE'],
    ['hopping:1m,10m', 'no longer than its size'],
    ['hopping:10m,3m', 'divides its size'],
    ['hopping:10m,0', 'greater than 0'],
    ['session:0s', 'greater than 0'],
    ['none:1m', 'unknown window kind'],
    [`hopping:${HOPPING_WINDOWS_PER_EVENT_MAX + 1}ms,1ms`, 'windows per event'],
  ];
  for (const [text, part] of bad) throwsWith(() => parseWindow(text), UsageError, part);
  assert.equal(parseWindow(`hopping:${HOPPING_WINDOWS_PER_EVENT_MAX}ms,1ms`).kind, 'hopping');
});

test('parseAggs: the documented example, order kept, count with and without a field', () => {
  const aggs = parseAggs('n=count,spend=sum(amount),top=max(amount)');
  assert.equal(aggs, { n: { fn: 'count' }, spend: { fn: 'sum', field: 'amount' }, top: { fn: 'max', field: 'amount' } });
  assert.equal(Object.keys(aggs), ['n', 'spend', 'top']);
  assert.equal(parseAggs(' c = count( user ) , lo=min(x),hi=max(x),avg_x=mean(x),f=first(y),l=last(y)'), {
    c: { fn: 'count', field: 'user' },
    lo: { fn: 'min', field: 'x' },
    hi: { fn: 'max', field: 'x' },
    avg_x: { fn: 'mean', field: 'x' },
    f: { fn: 'first', field: 'y' },
    l: { fn: 'last', field: 'y' },
  });
  // Output names that shadow Object.prototype members are ordinary own keys.
  assert.equal(Object.keys(parseAggs('constructor=count,toString=count')), ['constructor', 'toString']);
});

test('parseAggs: rejects duplicates, empty names, unknown functions, missing fields', () => {
  const bad: [string, string][] = [
    ['', 'empty item'],
    ['n=count,', 'empty item'],
    ['n=count,,m=count', 'empty item'],
    ['count', 'without NAME='],
    ['=count', 'output name'],
    ['n=count,n=sum(x)', 'distinct output names'],
    ['n=avg(x)', 'use mean'],
    ['n=median(x)', 'expected one of count, sum, min, max, mean, first, last'],
    ['n=sum', 'sum(FIELD)'],
    ['n=sum()', 'one field name'],
    ['n=count()', 'one field name'],
    ['n=sum(a b)', 'one field name'],
    ['n=sum(x', 'expected an aggregate'],
    ['1n=count', 'output name'],
    ['__proto__=count', 'output name'],
    ['my-name=count', 'output name'],
  ];
  for (const [text, part] of bad) throwsWith(() => parseAggs(text), UsageError, part);
  throwsWith(() => parseAggs(Array.from({ length: 65 }, (_, i) => `a${i}=count`).join(',')), UsageError, 'at most 64');
});

test('parseKey: default utf8, explicit types, bad types', () => {
  assert.equal(parseKey('user'), { field: 'user', type: 'utf8' });
  assert.equal(parseKey('user:utf8'), { field: 'user', type: 'utf8' });
  assert.equal(parseKey('auction:int64'), { field: 'auction', type: 'int64' });
  throwsWith(() => parseKey('user:int32'), UsageError, 'utf8 or int64', '"int32"');
  throwsWith(() => parseKey(''), UsageError, 'expected a key');
  throwsWith(() => parseKey(':int64'), UsageError, 'expected a key');
  throwsWith(() => parseKey('a b'), UsageError, 'expected a key');
});

test('parseInteger and formatOf', () => {
  assert.is(parseInteger('100000', '--checkpoint-every', { min: 1, max: 1e9 }), 100_000);
  assert.is(parseInteger('1_000_000', '--events', { min: 0, max: 1e12 }), 1_000_000);
  assert.is(parseInteger('1e6', '--events', { min: 0, max: 1e12 }), 1_000_000);
  throwsWith(() => parseInteger('-1', '--shards', { min: 1, max: 64 }), UsageError, '--shards', 'whole number');
  throwsWith(() => parseInteger('0', '--shards', { min: 1, max: 64 }), UsageError, 'between 1 and 64');
  throwsWith(() => parseInteger('1.5', '--shards', { min: 1, max: 64 }), UsageError, 'whole number');
  throwsWith(() => parseInteger('', '--shards', { min: 1, max: 64 }), UsageError, 'whole number');
  assert.is(formatOf('a/b.CSV'), 'csv');
  assert.is(formatOf('x.jsonl'), 'ndjson');
  assert.is(formatOf('x.ndjson'), 'ndjson');
  assert.is(formatOf('x.arrows'), 'arrow');
  assert.is(formatOf('x.txt', 'csv'), 'csv');
  throwsWith(() => formatOf('x.txt'), UsageError, '--format');
  throwsWith(() => formatOf('x.csv', 'parquet'), UsageError, 'csv, ndjson, arrow');
});

test('parseTime: integers and ISO 8601 forms', () => {
  const base = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
  const cases: [string | number | bigint, number][] = [
    [0, 0],
    [1704067200000, 1704067200000],
    [-1000, -1000],
    [123n, 123],
    ['1704067200000', 1704067200000],
    ['-5', -5],
    ['2024-01-02T03:04:05.678Z', base],
    ['2024-01-02t03:04:05.678z', base],
    ['2024-01-02 03:04:05.678Z', base],
    ['2024-01-02T03:04:05.678', base], // no offset: UTC
    ['2024-01-02T03:04:05.678+00:00', base],
    ['2024-01-02T04:04:05.678+01:00', base],
    ['2024-01-02T04:04:05.678+0100', base],
    ['2024-01-02T04:04:05.678+01', base],
    ['2024-01-01T21:34:05.678-05:30', base],
    ['2024-01-02T03:04:05.6789999Z', base], // truncated, not rounded
    ['2024-01-02T03:04:05.6Z', base - 78],
    ['2024-01-02T03:04:05,678Z', base],
    ['2024-01-02T03:04Z', Date.UTC(2024, 0, 2, 3, 4)],
    ['2024-01-02T03:04:05Z', Date.UTC(2024, 0, 2, 3, 4, 5)],
    ['2024-01-02', Date.UTC(2024, 0, 2)],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['0001-01-01T00:00:00Z', Date.parse('0001-01-01T00:00:00Z')],
    ['1969-12-31T23:59:59.999Z', -1],
  ];
  for (const [input, ms] of cases) assert.is(parseTime(input), ms, String(input));
});

test('parseTime: rejects anything else with a ValueError quoting the text', () => {
  const bad = [
    '',
    '-',
    '12a',
    '1.5',
    '2024-1-2',
    '2024-01-02T3:04:05Z',
    '2024-13-01',
    '2023-02-29',
    '2024-04-31',
    '2024-01-00',
    '2024-01-02T24:00:00Z',
    '2024-01-02T23:60:00Z',
    '2024-01-02T23:59:60Z',
    '2024-01-02T03:04:05.Z',
    '2024-01-02T03:04:05.1234567890Z',
    '2024-01-02T03:04:05+24:00',
    '2024-01-02T03:04:05+01:60',
    '2024-01-02T03:04:05+1',
    '2024-01-02T03:04:05ZZ',
    '2024-01-02T03:04:05 Z',
    'Tue, 02 Jan 2024 03:04:05 GMT',
    '99999999999999999999',
  ];
  for (const text of bad) throwsWith(() => parseTime(text), ValueError, JSON.stringify(text).slice(0, 20));
  throwsWith(() => parseTime(1.5), ValueError, '1.5');
  throwsWith(() => parseTime(NaN), ValueError, 'NaN');
  throwsWith(() => parseTime(TIME_MS_ABS_MAX + 1), ValueError);
  throwsWith(() => parseTime(BigInt(TIME_MS_ABS_MAX) + 1n), ValueError);
  throwsWith(() => parseTime(String(TIME_MS_ABS_MAX + 1)), ValueError, 'within');
});

test('parseTime agrees with Date on generated times and offsets', () => {
  // Years 0000 to 9999 (what four year digits can say), a day's margin for the offsets.
  const minMs = Date.parse('0000-01-01T00:00:00Z') + 86_400_000;
  const maxMs = Date.parse('9999-12-31T23:59:59.999Z') - 86_400_000;
  fc.assert(
    fc.property(fc.integer({ min: minMs, max: maxMs }), fc.integer({ min: -23 * 60 - 59, max: 23 * 60 + 59 }), (ms, offsetMinutes) => {
      const iso = new Date(ms).toISOString(); // oracle: the runtime's own formatter
      assert.is(parseTime(iso), ms, iso);
      assert.is(parseTime(String(ms)), ms);
      // The same instant written in local time at the offset: local = utc + offset.
      const local = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, 23);
      const sign = offsetMinutes < 0 ? '-' : '+';
      const abs = Math.abs(offsetMinutes);
      const offset = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
      assert.is(parseTime(local + offset), ms, local + offset);
      assert.is(formatTime(ms), iso);
    }),
    { numRuns: 1000 },
  );
});

test('parseArgs: a full run command line gives typed values and defaults', () => {
  const argv = [
    '--input', 'in.csv', '--key', 'user:int64', '--time', 'ts', '--window', 'tumbling:1m',
    '--agg', 'n=count', '--checkpoint-dir', 'ck', '--output', 'out.csv', '--workers', '-q',
  ];
  const parsed = parseArgs(argv, RUN_COMMAND);
  assert.is(parsed.help, false);
  if (parsed.help) return;
  assert.is(parsed.values.input, 'in.csv');
  assert.is(parsed.values.key, 'user:int64');
  assert.is(parsed.values['checkpoint-every'], '100000');
  assert.is(parsed.values.lateness, '0');
  assert.is(parsed.values.workers, true);
  assert.is(parsed.values.quiet, true);
  assert.is(parsed.values['skip-bad'], false);
  assert.is(parsed.values.shards, undefined);
  assert.is(parsed.values.format, undefined);
  assert.equal(parsed.positionals, []);
  const withEquals = parseArgs(['--events=10', '--output=b.csv', 'nexmark', '--seed', '3'], GENERATE_COMMAND);
  assert.equal(withEquals, {
    help: false,
    positionals: ['nexmark'],
    values: { events: '10', output: 'b.csv', seed: '3', 'events-per-second': '10000', 'out-of-orderness': '2000ms' },
  });
});

test('parseArgs: --help wins, and mistakes become UsageErrors pointing at --help', () => {
  assert.equal(parseArgs(['--help'], RUN_COMMAND), { help: true });
  assert.equal(parseArgs(['--bogus', '-h'], RUN_COMMAND), { help: true });
  const base = ['--input', 'a.csv', '--key', 'k', '--time', 't', '--window', 'none', '--agg', 'n=count', '--checkpoint-dir', 'c', '--output', 'o.csv'];
  assert.is(parseArgs(base, RUN_COMMAND).help, false);
  throwsWith(() => parseArgs([...base, '--bogus'], RUN_COMMAND), UsageError, "'--bogus'", 'cairn run --help');
  throwsWith(() => parseArgs(base.slice(2), RUN_COMMAND), UsageError, 'expected --input FILE, found it missing');
  throwsWith(() => parseArgs([...base, '--key', 'x'], RUN_COMMAND), UsageError, '--key at most once');
  throwsWith(() => parseArgs([...base, '--quiet', '-q'], RUN_COMMAND), UsageError, '--quiet at most once');
  throwsWith(() => parseArgs([...base, '--output'], RUN_COMMAND), UsageError, '--output');
  throwsWith(() => parseArgs([...base, 'extra'], RUN_COMMAND), UsageError, 'expected no arguments', '"extra"');
  throwsWith(() => parseArgs([...base, '--workers=yes'], RUN_COMMAND), UsageError, '--workers');
  throwsWith(() => parseArgs([...base, '--lateness', '-5s'], RUN_COMMAND), UsageError, '--lateness');
  assert.equal(parseArgs(['verify', 'dir'], CHECKPOINTS_COMMAND), {
    help: false,
    values: { id: undefined, operator: undefined, output: undefined, json: false },
    positionals: ['verify', 'dir'],
  });
  throwsWith(() => parseArgs(['check', 'dir'], CHECKPOINTS_COMMAND), UsageError, 'list, verify, inspect, dump', '"check"');
  throwsWith(() => parseArgs(['list'], CHECKPOINTS_COMMAND), UsageError, 'ACTION DIR', 'cairn checkpoints --help');
  throwsWith(() => parseArgs(Array.from({ length: 1001 }, () => 'x'), CHECKPOINTS_COMMAND), UsageError, 'at most 1000');
});

test('formatHelp lists every option of every command', () => {
  for (const spec of [RUN_COMMAND, CHECKPOINTS_COMMAND, GENERATE_COMMAND]) {
    const help = formatHelp(spec);
    assert.ok(help.startsWith(`Usage: ${spec.name}`));
    for (const name of Object.keys(spec.options)) assert.ok(help.includes(`--${name}`), `${spec.name} help lacks --${name}`);
    assert.ok(help.includes('--help'));
    for (const line of help.split('\n').filter((l) => !l.startsWith('Usage:') && !l.startsWith('  cairn'))) {
      assert.ok(line.length <= HELP_COLUMNS, `help line too long: ${line}`);
    }
  }
  assert.ok(RUN_HELP.includes('--checkpoint-every EVENTS') && RUN_HELP.includes('(default: 100000)'));
  assert.ok(RUN_HELP.includes('--input FILE') && RUN_HELP.includes('(required)'));
});

test.run();
