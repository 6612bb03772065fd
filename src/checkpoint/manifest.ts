/**
 * The checkpoint manifest: the last file written, and the one that makes a checkpoint exist.
 *
 * Layout: "CAIRNMF1" (8 bytes) | u32 LE crc32c of the JSON | UTF-8 JSON (Manifest below).
 * Names: manifests/<id as 12 digits>.cmf and data/<operator>/<checkpoint id>-<shard>.cks.
 */
import { CairnError } from '../errors.js';
import { crc32c, formatCrc } from '../codec/crc32c.js';
import type { NormalizedSpec } from '../store/spec.js';

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

export function dataFileName(op: string, checkpointId: number, shard: number): string {
  return `data/${op}/${String(checkpointId).padStart(12, '0')}-${String(shard).padStart(3, '0')}.cks`;
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
  if (m.format !== MANIFEST_FORMAT_VERSION) throw corrupt(`format version: expected ${MANIFEST_FORMAT_VERSION}, found ${String(m.format)}`, 12);
  if (!Number.isInteger(m.id) || !Array.isArray(m.operators) || !Array.isArray(m.assignment) || m.assignment.length !== m.keyGroups) {
    throw corrupt('fields do not match the manifest schema', 12);
  }
  return m;
}
