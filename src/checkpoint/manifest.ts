/**
 * The checkpoint manifest: the last file written, and the one that makes a checkpoint exist.
 *
 * Layout: "CAIRNMF1" (8 bytes) | u32 LE crc32c of the JSON | UTF-8 JSON (Manifest below).
 * Names: manifests/<id as 12 digits>.cmf and data/<operator>/<checkpoint id>-<shard>-<writer>.cks,
 * where <writer> (8 hex digits) is random per coordinator, so two backends that checkpoint to one
 * storage at once never write the same data file (checkpoints before 2026-11-28 have no <writer>).
 */
import { CairnError } from '../errors.js';
import { crc32c, formatCrc } from '../codec/crc32c.js';
import { normalizeAggregateSpec, normalizeValueSpec, specDifference, type NormalizedSpec } from '../store/spec.js';
import { validateName } from '../storage/storage.js';

export const MANIFEST_FORMAT_VERSION = 1;
export const MANIFEST_BYTES_MAX = 64 * 1024 * 1024;
const MAGIC = new TextEncoder().encode('CAIRNMF1');

export interface DataFileRef {
  name: string;
  /** Shard whose store wrote it (informational: restore routes rows by key group). */
  shard: number;
  bytes: number;
  crc32c: number;
}

/** One checkpoint's files for one operator. */
export interface Layer {
  checkpointId: number;
  full: boolean;
  files: DataFileRef[];
  /** Stored (compressed) bytes of this layer. */
  bytes: number;
}

export interface OperatorEntry {
  name: string;
  spec: NormalizedSpec;
  watermark: string;
  lateEvents: string;
  seq: string;
  /** Base layer first, then deltas in order. */
  chain: Layer[];
}

export interface Manifest {
  format: number;
  id: number;
  parent: number | null;
  incremental: boolean;
  keyGroups: number;
  shards: number;
  /** Key group -> shard at capture time. */
  assignment: number[];
  operators: OperatorEntry[];
  meta: unknown;
}

export function manifestName(id: number): string {
  return `manifests/${String(id).padStart(12, '0')}.cmf`;
}

export function manifestIdOf(name: string): number | null {
  const m = /^manifests\/(\d{12})\.cmf$/.exec(name);
  return m ? Number(m[1]) : null;
}

/** The checkpoint id in a data file's name (see dataFileName), or null for another name. */
export function dataFileIdOf(name: string): number | null {
  const m = /^data\/.+\/(\d{12})-\d{3}(?:-[0-9a-f]{8})?\.cks$/.exec(name);
  return m ? Number(m[1]) : null;
}

export function dataFileName(op: string, checkpointId: number, shard: number, writer: string): string {
  return `data/${op}/${String(checkpointId).padStart(12, '0')}-${String(shard).padStart(3, '0')}-${writer}.cks`;
}

/** A writer token for data file names: 8 random hex digits. */
export function newWriterToken(): string {
  const b = globalThis.crypto.getRandomValues(new Uint8Array(4));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Every data file a manifest references. */
export function referencedFiles(m: Manifest): DataFileRef[] {
  return m.operators.flatMap((o) => o.chain.flatMap((l) => l.files));
}

export function encodeManifest(m: Manifest): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(m));
  const out = new Uint8Array(12 + json.length);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(8, crc32c(json), true);
  out.set(json, 12);
  // Paired assertion at the persistence boundary: what we write must read back.
  decodeManifest(out, 'manifest (self-check)');
  return out;
}

export function decodeManifest(bytes: Uint8Array, file: string): Manifest {
  const corrupt = (what: string, offset: number) => new CairnError('corruption', `manifest ${what} (file=${file}, offset=${offset})`);
  if (bytes.length > MANIFEST_BYTES_MAX) throw corrupt(`too large: expected at most ${MANIFEST_BYTES_MAX} bytes, found ${bytes.length}`, 0);
  if (bytes.length < 12) throw corrupt(`truncated: expected at least 12 bytes, found ${bytes.length}`, 0);
  for (let i = 0; i < 8; i++) if (bytes[i] !== MAGIC[i]) throw corrupt('magic mismatch: expected CAIRNMF1', i);
  const json = bytes.subarray(12);
  const want = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  const got = crc32c(json);
  if (want !== got) throw corrupt(`checksum mismatch: expected ${formatCrc(want)}, found ${formatCrc(got)}`, 12);
  let m: Manifest;
  try {
    m = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json)) as Manifest;
  } catch (e) {
    throw new CairnError('corruption', `manifest JSON does not parse (file=${file}, offset=12)`, { cause: e });
  }
  if (!m || typeof m !== 'object') throw corrupt('is not a JSON object', 12);
  if (m.format !== MANIFEST_FORMAT_VERSION) throw corrupt(`format version: expected ${MANIFEST_FORMAT_VERSION}, found ${String(m.format)}`, 12);
  const problem = schemaProblem(m);
  if (problem) throw corrupt(`does not match the manifest schema: ${problem}`, 12);
  return m;
}

const isInt = (x: unknown, lo: number, hi: number): boolean => Number.isInteger(x) && (x as number) >= lo && (x as number) <= hi;
const isBigIntText = (x: unknown): boolean => typeof x === 'string' && /^-?\d{1,20}$/.test(x);
const isName = (x: unknown): boolean => typeof x === 'string' && /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/.test(x);
/** A data file's name as checkpoints write it (data/<operator>/<id>-<shard>-<writer>.cks, or without -<writer> before 2026-11-28): any valid storage name under data/. */
const isDataFileName = (x: unknown): boolean => {
  if (typeof x !== 'string' || !x.startsWith('data/')) return false;
  try {
    validateName(x);
    return true;
  } catch {
    return false;
  }
};

/**
 * Checks every field a restore relies on, so that a manifest that passes its checksum but was
 * written wrong (a bug, a hand edit) is a clear corruption error rather than a TypeError later.
 * Returns the first problem found, or null.
 */
function schemaProblem(m: Manifest): string | null {
  if (!isInt(m.id, 0, Number.MAX_SAFE_INTEGER)) return 'id';
  if (m.parent !== null && !isInt(m.parent, 0, Number.MAX_SAFE_INTEGER)) return 'parent';
  if (typeof m.incremental !== 'boolean') return 'incremental';
  if (!isInt(m.keyGroups, 1, 32768)) return 'keyGroups';
  if (!isInt(m.shards, 1, 255)) return 'shards';
  if (!Array.isArray(m.assignment) || m.assignment.length !== m.keyGroups) return 'assignment length';
  if (!m.assignment.every((s) => isInt(s, 0, m.shards - 1))) return 'assignment entries (each a shard below shards)';
  if (!Array.isArray(m.operators)) return 'operators';
  const names = new Set<string>();
  for (const [i, o] of m.operators.entries()) {
    const at = `operators[${i}]`;
    if (!o || typeof o !== 'object') return at;
    if (!isName(o.name) || names.has(o.name)) return `${at}.name`;
    names.add(o.name);
    const specProblem = specSchemaProblem(o.spec);
    if (specProblem) return `${at}.spec.${specProblem}`;
    if (!isBigIntText(o.watermark) || !isBigIntText(o.lateEvents) || !isBigIntText(o.seq)) return `${at} counters`;
    if (!Array.isArray(o.chain)) return `${at}.chain`;
    for (const [j, l] of o.chain.entries()) {
      if (!l || typeof l !== 'object' || !isInt(l.checkpointId, 0, Number.MAX_SAFE_INTEGER) || typeof l.full !== 'boolean' ||
          !isInt(l.bytes, 0, Number.MAX_SAFE_INTEGER) || !Array.isArray(l.files)) return `${at}.chain[${j}]`;
      if (j === 0 ? !l.full : l.full) return `${at}.chain[${j}].full`;
      for (const f of l.files) {
        if (!f || typeof f !== 'object' || !isDataFileName(f.name) ||
            !isInt(f.shard, 0, 254) || !isInt(f.bytes, 0, Number.MAX_SAFE_INTEGER) || !isInt(f.crc32c, 0, 0xffffffff)) {
          return `${at}.chain[${j}].files`;
        }
      }
    }
  }
  return null;
}

function specSchemaProblem(spec: NormalizedSpec): string | null {
  const shape = specShapeProblem(spec);
  if (shape) return shape;
  // The stored spec must be exactly what normalizing it again gives (sizes, slides, functions...).
  try {
    const again = spec.kind === 'value'
      ? normalizeValueSpec({ key: { type: spec.keyType, field: spec.keyField } })
      : normalizeAggregateSpec({
          key: { field: spec.keyField, type: spec.keyType },
          ...(spec.timeField !== null ? { time: spec.timeField } : {}),
          window: spec.window,
          aggregates: Object.fromEntries(spec.aggs.map((a) => [a.name, a.field === null ? { fn: a.fn } : { fn: a.fn, field: a.field }])),
          allowedLateness: spec.lateness,
        });
    return specDifference(spec, again);
  } catch (e) {
    return e instanceof Error ? e.message : 'invalid';
  }
}

function specShapeProblem(spec: NormalizedSpec): string | null {
  if (!spec || typeof spec !== 'object') return 'spec';
  if (spec.kind !== 'aggregate' && spec.kind !== 'value') return 'kind';
  if (typeof spec.keyField !== 'string' || (spec.keyType !== 'int64' && spec.keyType !== 'utf8')) return 'key';
  if (spec.timeField !== null && typeof spec.timeField !== 'string') return 'timeField';
  if (!spec.window || typeof spec.window !== 'object' || !['tumbling', 'hopping', 'session', 'none'].includes(spec.window.kind)) return 'window';
  if (!isInt(spec.lateness, 0, Number.MAX_SAFE_INTEGER)) return 'lateness';
  if (!Array.isArray(spec.names) || !Array.isArray(spec.aggs) || !Array.isArray(spec.fields)) return 'aggregates';
  if (!spec.fields.every((f) => typeof f === 'string')) return 'fields';
  for (const a of spec.aggs) {
    if (!a || typeof a.name !== 'string' || typeof a.fn !== 'string' || (a.field !== null && !spec.fields.includes(a.field))) return 'aggs';
  }
  return null;
}
