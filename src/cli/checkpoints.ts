/**
 * `cairn checkpoints list|verify|inspect|dump DIR`: the admin side of a checkpoint directory.
 *
 * - list: one line per checkpoint: id, parent, full or incremental, files and bytes it wrote, total
 *   bytes it needs, its chain (base and deltas), durability, and what its meta says about a
 *   `cairn run` (events, input position, complete). A plain directory is one local tier, so every
 *   checkpoint shows durable = local.
 * - verify: checks every checksum: the manifest's, then every data file's length, whole-file CRC-32C
 *   and chunk checksums (by decoding it). Prints one line per checkpoint and each bad file with the
 *   reason; exits 1 if anything does not verify.
 * - inspect: one checkpoint's manifest: key groups and their shards, operators with their specs,
 *   watermarks and chains, and the meta.
 * - dump: restores one operator of one checkpoint into an in-memory backend and writes its state
 *   (`toArrow()`) as CSV, NDJSON or an Arrow IPC file.
 *
 * Every action only reads: the directory is opened through a read-only storage, so running these
 * while `cairn run` writes to the same directory disturbs nothing (FsCheckpointStorage would remove
 * the writer's temp files as stale). Such a run's retention may remove a checkpoint while it is being
 * read. Retention deletes a checkpoint's manifest before the data files it alone references, so a
 * file found missing while the manifest is also gone means "removed", not "damaged" (see removed):
 * list leaves such a checkpoint out, verify reports it as removed and skipped, and inspect and dump
 * without --id move on to the newest checkpoint. Naming a checkpoint with --id that gets removed is
 * an error that says so.
 */
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tableToIPC } from 'apache-arrow';
import { StateBackend } from '../backend.js';
import { decodeManifest, manifestName, referencedFiles, type Manifest, type OperatorEntry } from '../checkpoint/manifest.js';
import { listCheckpointIds } from '../checkpoint/restore.js';
import { decodeChunked } from '../codec/chunked.js';
import { crc32c, formatCrc } from '../codec/crc32c.js';
import { CairnError } from '../errors.js';
import { type CheckpointStorage, isNotFound, notFound, validateName, validatePrefix } from '../storage/storage.js';
import type { AggregateSpec, NormalizedSpec } from '../store/spec.js';
import { UsageError, quote } from './errors.js';
import type { CliIo } from './main.js';
import { parseArgs, parseInteger } from './parse.js';
import { formatBytes, outputColumnsOf } from './run.js';
import { CHECKPOINTS_COMMAND, CHECKPOINTS_HELP } from './usage.js';
import { OutputWriter, outputFormatOf } from './writers.js';

/** Most checkpoints one command looks at (retention keeps far fewer). */
export const CHECKPOINTS_MAX = 100_000;
/**
 * How many times verify, inspect and dump look again for the newest checkpoints when a running
 * writer's retention removed every one they were reading.
 */
export const REMOVED_RETRIES_MAX = 10;
const ARROW_EXTENSIONS = ['.arrow', '.arrows', '.ipc', '.feather'];

/** A CheckpointStorage over a directory that reads and never writes. */
export class ReadOnlyDirStorage implements CheckpointStorage {
  constructor(readonly dir: string) {}

  put(name: string): Promise<void> {
    return Promise.reject(new CairnError('invalid', `read-only checkpoint storage: cannot put ${quote(name)} (dir=${this.dir})`));
  }

  delete(name: string): Promise<void> {
    return Promise.reject(new CairnError('invalid', `read-only checkpoint storage: cannot delete ${quote(name)} (dir=${this.dir})`));
  }

  async get(name: string): Promise<Uint8Array> {
    validateName(name);
    try {
      return new Uint8Array(await readFile(join(this.dir, name)));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') throw notFound(name, `dir=${this.dir}`);
      throw new CairnError('unavailable', `cannot read ${quote(name)}: ${code ?? (e as Error).message} (dir=${this.dir})`, { cause: e });
    }
  }

  async list(prefix: string): Promise<string[]> {
    validatePrefix(prefix);
    const out: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(join(this.dir, rel), { withFileTypes: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw new CairnError('unavailable', `cannot list ${quote(rel)}: ${(e as Error).message} (dir=${this.dir})`, { cause: e });
      }
      for (const entry of entries) {
        if (entry.name.startsWith('.')) continue; // temp files of a writer
        const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
        if (entry.isFile() && path.startsWith(prefix)) out.push(path);
        else if (entry.isDirectory() && (prefix.startsWith(path + '/') || (path + '/').startsWith(prefix))) await walk(path);
      }
    };
    await walk('');
    return out.sort();
  }
}

/**
 * `cairn checkpoints ARGV`. `open` gives the storage over the directory; tests pass one that
 * changes the directory mid-read, as a running writer would.
 */
export async function checkpointsCommand(
  argv: readonly string[],
  io: CliIo,
  open: (dir: string) => ReadOnlyDirStorage = (dir) => new ReadOnlyDirStorage(dir),
): Promise<number> {
  const parsed = parseArgs(argv, CHECKPOINTS_COMMAND);
  if (parsed.help) {
    io.stdout.write(CHECKPOINTS_HELP);
    return 0;
  }
  const [action, dir] = parsed.positionals as [string, string];
  const v = parsed.values;
  const id = v.id === undefined ? undefined : parseInteger(v.id, '--id', { min: 0, max: Number.MAX_SAFE_INTEGER });
  const misplaced = (flag: string, allowed: string[]) => {
    if (!allowed.includes(action)) throw new UsageError(`expected --${flag} only with ${allowed.join(' or ')}, found it with ${action} (see cairn checkpoints --help)`);
  };
  if (v.operator !== undefined) misplaced('operator', ['dump']);
  if (v.output !== undefined) misplaced('output', ['dump']);
  if (v.json) misplaced('json', ['list', 'inspect']);
  if (id !== undefined) misplaced('id', ['verify', 'inspect', 'dump']);
  let isDir = false;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) throw new UsageError(`expected a checkpoint directory, found no directory at ${quote(dir)}`);
  const storage = open(dir);
  const ids = (await listCheckpointIds(storage)).slice(-CHECKPOINTS_MAX);
  if (ids.length === 0) {
    if (action === 'list') {
      io.stdout.write(v.json ? '[]\n' : `no checkpoints in ${dir}\n`);
      return 0;
    }
    throw new UsageError(`expected checkpoints in ${quote(dir)}, found none`);
  }
  if (id !== undefined && !ids.includes(id)) {
    throw new UsageError(`expected --id to name a checkpoint in ${quote(dir)} (${ids.join(', ')}), found ${id}`);
  }
  switch (action) {
    case 'list':
      return list(storage, ids, v.json, io);
    case 'verify':
      return verify(storage, ids, id, io);
    case 'inspect':
      return newest(storage, ids, id, (at) => inspect(storage, at, v.json, io));
    default: {
      const output = v.output;
      if (output === undefined) throw new UsageError('expected --output FILE with dump, found it missing (see cairn checkpoints --help)');
      return newest(storage, ids, id, (at) => dump(storage, at, v.operator, output, io));
    }
  }
}

/**
 * Whether checkpoint `id` is gone: its manifest is not found. Retention deletes manifests before
 * data files, so a data file missing while its manifest stays is damage, never a removal.
 */
async function removed(storage: CheckpointStorage, id: number): Promise<boolean> {
  try {
    await storage.get(manifestName(id));
    return false;
  } catch (e) {
    return e instanceof CairnError && isNotFound(e);
  }
}

function removedError(id: number, dir: string, cause: unknown): CairnError {
  return new CairnError(
    'unavailable',
    `checkpoint ${id} was removed while it was being read (a run writing to ${dir} keeps only its newest checkpoints); run the command again, or name a newer checkpoint with --id`,
    { cause },
  );
}

/**
 * Runs `action` on checkpoint `id`, or without one on the newest checkpoint; if that one is removed
 * meanwhile, on the newest one then, up to REMOVED_RETRIES_MAX times.
 */
async function newest(storage: ReadOnlyDirStorage, ids: number[], id: number | undefined, action: (id: number) => Promise<number>): Promise<number> {
  let at = id ?? ids.at(-1)!;
  for (let attempt = 0; ; attempt++) {
    try {
      return await action(at);
    } catch (e) {
      if (e instanceof UsageError || !(await removed(storage, at))) throw e;
      if (id !== undefined || attempt >= REMOVED_RETRIES_MAX) throw removedError(at, storage.dir, e);
      const now = await listCheckpointIds(storage);
      if (now.length === 0) throw removedError(at, storage.dir, e);
      at = now.at(-1)!;
    }
  }
}

/** The manifest of checkpoint `id` and its stored size. */
async function readManifest(storage: CheckpointStorage, id: number): Promise<{ manifest: Manifest; bytes: number }> {
  const name = manifestName(id);
  const bytes = await storage.get(name);
  return { manifest: decodeManifest(bytes, name), bytes: bytes.length };
}

/** "base 5 + deltas 6, 7" for each distinct chain shape of the operators. */
function chainText(m: Manifest): string {
  const shapes = new Set(
    m.operators.map((o) => {
      const [base, ...deltas] = o.chain;
      if (!base) return 'empty';
      return deltas.length === 0 ? `base ${base.checkpointId}` : `base ${base.checkpointId} + deltas ${deltas.map((l) => l.checkpointId).join(',')}`;
    }),
  );
  return [...shapes].join('; ') || 'no operators';
}

/** What a `cairn run` meta says, in a few words; empty for other metas. */
function runMetaText(meta: unknown): { events: number | null; input: string; state: string } {
  const m = meta as { stream?: { events?: number; final?: boolean }; source?: { offset?: number; line?: number } | null; app?: { tool?: string; done?: boolean } } | null;
  const events = typeof m?.stream?.events === 'number' ? m.stream.events : null;
  const input = typeof m?.source?.offset === 'number' ? `byte ${m.source.offset}` : '-';
  const state = m?.app?.tool === 'cairn run' ? (m.app.done ? 'complete' : 'in progress') : m?.stream?.final ? 'closed' : '';
  return { events, input, state };
}

async function list(storage: CheckpointStorage, ids: number[], json: boolean, io: CliIo): Promise<number> {
  const rows: Record<string, unknown>[] = [];
  for (const id of ids) {
    let manifest: Manifest;
    let manifestBytes: number;
    try {
      ({ manifest, bytes: manifestBytes } = await readManifest(storage, id));
    } catch (e) {
      if (e instanceof CairnError && isNotFound(e)) continue; // removed since it was listed
      rows.push({ id, error: e instanceof Error ? e.message : String(e) });
      continue;
    }
    const files = new Map(referencedFiles(manifest).map((f) => [f.name, f.bytes]));
    const own = manifest.operators.flatMap((o) => o.chain.filter((l) => l.checkpointId === id).flatMap((l) => l.files));
    const ownBytes = own.reduce((a, f) => a + f.bytes, 0) + manifestBytes;
    const totalBytes = [...files.values()].reduce((a, b) => a + b, 0) + manifestBytes;
    const run = runMetaText(manifest.meta);
    rows.push({
      id,
      parent: manifest.parent,
      kind: manifest.incremental ? 'incremental' : 'full',
      files: own.length + 1,
      ownBytes,
      totalBytes,
      chain: chainText(manifest),
      durable: 'local',
      events: run.events,
      input: run.input,
      state: run.state,
    });
  }
  if (json) {
    io.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return 0;
  }
  const header = ['ID', 'PARENT', 'KIND', 'FILES', 'WRITTEN', 'TOTAL', 'CHAIN', 'DURABLE', 'EVENTS', 'INPUT', 'STATE'];
  const table = rows.map((r) =>
    r['error'] !== undefined
      ? [String(r['id']), '-', 'unreadable', '-', '-', '-', '-', '-', '-', '-', String(r['error'])]
      : [
          String(r['id']),
          r['parent'] === null ? '-' : String(r['parent']),
          String(r['kind']),
          String(r['files']),
          formatBytes(r['ownBytes'] as number),
          formatBytes(r['totalBytes'] as number),
          String(r['chain']),
          String(r['durable']),
          r['events'] === null ? '-' : String(r['events']),
          String(r['input']),
          String(r['state']),
        ],
  );
  io.stdout.write(formatTable(header, table));
  return 0;
}

/** Left-aligned columns separated by two spaces. */
function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) => cells.map((x, c) => (c === cells.length - 1 ? x : x.padEnd(widths[c]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/**
 * Verifies checkpoint `id`, or every checkpoint in `ids`. A checkpoint removed while it is read
 * (see removed) is reported and skipped; if that leaves none verified, the newest checkpoints are
 * listed again and verified, up to REMOVED_RETRIES_MAX times. A removed `id` is a failure.
 */
async function verify(storage: ReadOnlyDirStorage, ids: number[], id: number | undefined, io: CliIo): Promise<number> {
  /** File name -> null when good, else the reason; a base shared by several checkpoints is read once. */
  const verdicts = new Map<string, { reason: string | null; missing: boolean }>();
  const seen = new Set<number>();
  let failures = 0;
  let verified = 0;
  let skipped = 0;
  let pending = id === undefined ? ids : [id];
  for (let round = 0; pending.length > 0; round++) {
    for (const at of pending) {
      seen.add(at);
      const outcome = await verifyOne(storage, at, verdicts);
      if (outcome.removed) {
        if (id !== undefined) {
          io.stdout.write(`checkpoint ${at}: FAILED: removed while it was being verified\n`);
          io.stderr.write(`cairn: ${removedError(at, storage.dir, undefined).message}\n`);
          return 1;
        }
        skipped++;
        io.stdout.write(`checkpoint ${at}: removed while it was being verified (retention of a run writing to this directory); skipped\n`);
        continue;
      }
      verified++;
      io.stdout.write(outcome.lines.join(''));
      if (!outcome.ok) failures++;
    }
    if (verified > 0 || id !== undefined || round >= REMOVED_RETRIES_MAX) break;
    pending = (await listCheckpointIds(storage)).filter((x) => !seen.has(x)).slice(-CHECKPOINTS_MAX);
  }
  if (verified === 0) {
    io.stderr.write(`cairn: no checkpoint could be verified: all ${skipped} were removed while being read (a run writing to ${storage.dir} keeps only its newest checkpoints); run the command again\n`);
    return 1;
  }
  if (failures > 0) {
    io.stderr.write(`cairn: ${failures} of ${verified} checkpoints do not verify\n`);
    return 1;
  }
  return 0;
}

/** One checkpoint's verify lines, or removed when it is gone (see removed). */
async function verifyOne(
  storage: CheckpointStorage,
  id: number,
  verdicts: Map<string, { reason: string | null; missing: boolean }>,
): Promise<{ removed: boolean; ok: boolean; lines: string[] }> {
  let manifest: Manifest;
  try {
    manifest = (await readManifest(storage, id)).manifest;
    if (manifest.id !== id) throw new CairnError('corruption', `manifest id mismatch: expected ${id}, found ${manifest.id} (file=${manifestName(id)}, offset=12)`);
  } catch (e) {
    if (e instanceof CairnError && isNotFound(e)) return { removed: true, ok: false, lines: [] };
    return { removed: false, ok: false, lines: [`checkpoint ${id}: FAILED: ${manifestName(id)}: ${messageOf(e)}\n`] };
  }
  const refs = [...new Map(referencedFiles(manifest).map((f) => [f.name, f])).values()];
  const bad: string[] = [];
  let missing = false;
  let bytes = 0;
  for (const f of refs) {
    bytes += f.bytes;
    if (!verdicts.has(f.name)) verdicts.set(f.name, await verifyFile(storage, f.name, f.bytes, f.crc32c));
    const verdict = verdicts.get(f.name)!;
    if (verdict.reason !== null) bad.push(`${f.name}: ${verdict.reason}`);
    missing ||= verdict.missing;
  }
  if (bad.length === 0) {
    return { removed: false, ok: true, lines: [`checkpoint ${id}: ok (manifest and ${refs.length} data file${refs.length === 1 ? '' : 's'}, ${formatBytes(bytes)})\n`] };
  }
  if (missing && (await removed(storage, id))) {
    // Its files went with it: a later checkpoint that still holds one must find it checked afresh.
    for (const f of refs) if (verdicts.get(f.name)?.missing) verdicts.delete(f.name);
    return { removed: true, ok: false, lines: [] };
  }
  return {
    removed: false,
    ok: false,
    lines: [`checkpoint ${id}: FAILED: ${bad.length} of ${refs.length} data files do not verify\n`, ...bad.map((b) => `  ${b}\n`)],
  };
}

/** Reason null when the stored file has the length and checksums its manifest says, else why not. */
async function verifyFile(storage: CheckpointStorage, name: string, bytes: number, crc: number): Promise<{ reason: string | null; missing: boolean }> {
  try {
    const stored = await storage.get(name);
    if (stored.length !== bytes) return { reason: `length mismatch: expected ${bytes} bytes, found ${stored.length}`, missing: false };
    const got = crc32c(stored);
    // Decoding checks the header, every chunk checksum and the footer, and locates the damage.
    await decodeChunked(stored, { file: name });
    if (got !== crc) return { reason: `checksum mismatch: expected ${formatCrc(crc)}, found ${formatCrc(got)}`, missing: false };
    return { reason: null, missing: false };
  } catch (e) {
    return { reason: messageOf(e), missing: e instanceof CairnError && isNotFound(e) };
  }
}

function messageOf(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, ' ');
}

/** "0-63 on shard 0, 64-127 on shard 1". */
function assignmentText(assignment: number[]): string {
  const parts: string[] = [];
  let start = 0;
  for (let kg = 1; kg <= assignment.length; kg++) {
    if (kg === assignment.length || assignment[kg] !== assignment[start]) {
      parts.push(`${start === kg - 1 ? start : `${start}-${kg - 1}`} on shard ${assignment[start]}`);
      start = kg;
    }
  }
  return parts.length > 8 ? `${parts.slice(0, 8).join(', ')}, and ${parts.length - 8} more ranges` : parts.join(', ');
}

function windowText(s: NormalizedSpec): string {
  const w = s.window;
  switch (w.kind) {
    case 'tumbling':
      return `tumbling, size ${w.size} ms`;
    case 'hopping':
      return `hopping, size ${w.size} ms, slide ${w.slide} ms`;
    case 'session':
      return `session, gap ${w.gap} ms`;
    default:
      return w.ttl ? `none (running aggregates), ttl ${w.ttl} ms` : 'none (running aggregates)';
  }
}

function watermarkText(w: string): string {
  const n = BigInt(w);
  if (n <= -(2n ** 62n)) return 'none yet';
  if (n >= 2n ** 62n) return 'end of time (every window fired)';
  const ms = Number(n);
  return Math.abs(ms) <= 8.64e15 ? `${w} (${new Date(ms).toISOString()})` : w;
}

async function inspect(storage: CheckpointStorage, id: number, json: boolean, io: CliIo): Promise<number> {
  const { manifest: m, bytes } = await readManifest(storage, id);
  if (json) {
    io.stdout.write(JSON.stringify(m, null, 2) + '\n');
    return 0;
  }
  const out = [
    `checkpoint ${m.id}: ${m.incremental ? 'incremental' : 'full'}, parent ${m.parent ?? '-'}`,
    `  manifest     ${manifestName(m.id)} (${formatBytes(bytes)})`,
    `  key groups   ${m.keyGroups} over ${m.shards} shard${m.shards === 1 ? '' : 's'}: ${assignmentText(m.assignment)}`,
  ];
  for (const o of m.operators) {
    const s = o.spec;
    out.push(`  operator ${o.name} (${s.kind})`);
    out.push(`    key          ${s.keyField} (${s.keyType})`);
    if (s.kind === 'aggregate') {
      out.push(`    time         ${s.timeField ?? '-'}`);
      out.push(`    window       ${windowText(s)}`);
      out.push(`    lateness     ${s.lateness} ms`);
      out.push(`    aggregates   ${s.aggs.map((a) => `${a.name}=${a.fn}${a.field === null ? '' : `(${a.field})`}`).join(', ')}`);
      out.push(`    watermark    ${watermarkText(o.watermark)}`);
      out.push(`    late events  ${o.lateEvents}`);
      out.push(`    events       ${o.seq}`);
    }
    const layers = o.chain.map((l) => `${l.full ? 'base' : 'delta'} ${l.checkpointId} (${l.files.length} file${l.files.length === 1 ? '' : 's'}, ${formatBytes(l.bytes)})`);
    out.push(`    chain        ${layers.join(', ') || 'empty'}`);
  }
  out.push(`  meta         ${JSON.stringify(m.meta)}`);
  io.stdout.write(out.join('\n') + '\n');
  return 0;
}

/** The spec a user would declare to get `s` back. */
function aggregateSpecOf(s: NormalizedSpec): AggregateSpec {
  return {
    key: { field: s.keyField, type: s.keyType },
    ...(s.timeField === null ? {} : { time: s.timeField }),
    window: s.window,
    aggregates: Object.fromEntries(s.aggs.map((a) => [a.name, a.field === null ? { fn: a.fn } : { fn: a.fn, field: a.field }])),
    allowedLateness: s.lateness,
  };
}

async function dump(storage: CheckpointStorage, id: number, operator: string | undefined, output: string, io: CliIo): Promise<number> {
  const lower = output.toLowerCase();
  const arrow = ARROW_EXTENSIONS.some((e) => lower.endsWith(e));
  if (!arrow) {
    try {
      outputFormatOf(output);
    } catch {
      throw new UsageError(`expected --output ending in .csv, .ndjson, .jsonl or .arrow, found ${quote(output)}`);
    }
  }
  const { manifest } = await readManifest(storage, id);
  const names = manifest.operators.map((o) => o.name);
  let entry: OperatorEntry | undefined;
  if (operator === undefined) {
    if (manifest.operators.length !== 1) {
      throw new UsageError(`expected --operator with one of ${names.map((n) => quote(n)).join(', ')} (checkpoint ${id} has ${names.length} operators)`);
    }
    entry = manifest.operators[0];
  } else {
    entry = manifest.operators.find((o) => o.name === operator);
    if (!entry) throw new UsageError(`expected --operator to be one of ${names.map((n) => quote(n)).join(', ')}, found ${quote(operator)}`);
  }
  if (entry!.spec.kind !== 'aggregate') {
    throw new UsageError(`expected an aggregate operator, found value state ${quote(entry!.name)} (dump exports aggregates only)`);
  }
  const backend = await StateBackend.restore({ storage, checkpointId: id });
  let rows = 0;
  try {
    const table = await backend.aggregate(entry!.name, aggregateSpecOf(entry!.spec)).toArrow();
    rows = table.numRows;
    if (arrow) {
      await writeFile(output, tableToIPC(table, 'file'));
    } else {
      const writer = await OutputWriter.open(output);
      try {
        await writer.writeRows(Object.fromEntries(table.schema.fields.map((f) => [f.name, []])), 0);
        for (const batch of table.batches) await writer.writeRows(outputColumnsOf(batch), batch.numRows);
      } finally {
        await writer.close();
      }
    }
  } finally {
    await backend.close();
  }
  io.stdout.write(`cairn checkpoints dump: operator ${entry!.name} of checkpoint ${id}: ${rows} rows written to ${output}\n`);
  return 0;
}
