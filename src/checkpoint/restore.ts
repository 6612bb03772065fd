/**
 * Finding and verifying a checkpoint to restore. The newest checkpoint whose manifest and data
 * files all verify wins; the ones skipped are reported with the reason. Asking for a specific
 * checkpoint that does not verify is an error naming the file and offset. With tiered storage, a
 * file whose local copy fails verification is read again from the durable tier.
 */
import { CairnError } from '../errors.js';
import { WasmCore } from '../../bindings/core.js';
import { storeConfigOf } from '../store/spec.js';
import { crc32c, formatCrc } from '../codec/crc32c.js';
import { decodeChunked } from '../codec/chunked.js';
import { isNotFound, missingObject, notFound, storageCall, type CheckpointStorage } from '../storage/storage.js';
import { TieredCheckpointStorage } from '../storage/tiered.js';
import { dataFileIdOf, decodeManifest, manifestIdOf, manifestName, referencedFiles, type Manifest } from './manifest.js';

export interface VerifiedCheckpoint {
  manifest: Manifest;
  /** Decoded (decompressed) data file contents by name. */
  files: Map<string, Uint8Array>;
  skipped: { id: number; reason: string }[];
}

export async function listCheckpointIds(storage: CheckpointStorage): Promise<number[]> {
  const names = await storageCall("list 'manifests/'", () => storage.list('manifests/'));
  return names.map(manifestIdOf).filter((x): x is number => x !== null).sort((a, b) => a - b);
}

/**
 * The id for the next checkpoint: past every manifest and every data file in storage, so that no
 * name is ever written twice (a failed checkpoint's data files, or a copy of them in a durable tier,
 * must never pass for a later checkpoint's).
 */
export async function nextCheckpointId(storage: CheckpointStorage, atLeast = 1): Promise<number> {
  let max = atLeast - 1;
  for (const id of await listCheckpointIds(storage)) max = Math.max(max, id);
  for (const name of await storageCall("list 'data/'", () => storage.list('data/'))) max = Math.max(max, dataFileIdOf(name) ?? 0);
  return max + 1;
}

/** `storage.get(name)`: failures as CairnErrors, and a missing object always as notFound's error. */
async function getObject(storage: CheckpointStorage, name: string, get: () => Promise<Uint8Array> = () => storage.get(name)): Promise<Uint8Array> {
  try {
    return await storageCall(`get '${name}'`, get);
  } catch (e) {
    if (e instanceof CairnError && !isNotFound(e) && (await missingObject(storage, name, e))) {
      const missing = notFound(name, `storage does not list it; its get said: ${e.message}`);
      throw new CairnError(missing.kind, missing.message, { cause: e });
    }
    throw e;
  }
}

/** Reads a stored object, checks its length and checksum against the manifest, and decodes it. */
async function readVerified(storage: CheckpointStorage, name: string, bytes: number, crc: number): Promise<Uint8Array> {
  const attempt = async (get: () => Promise<Uint8Array>): Promise<Uint8Array> => {
    const stored = await get();
    if (stored.length !== bytes) {
      throw new CairnError('corruption', `checkpoint file length mismatch: expected ${bytes} bytes, found ${stored.length} (file=${name}, offset=${Math.min(stored.length, bytes)})`);
    }
    const got = crc32c(stored);
    if (got !== crc) {
      // The container's own checks locate the damage; fall back to the whole-file mismatch.
      await decodeChunked(stored, { file: name });
      throw new CairnError('corruption', `checkpoint file checksum mismatch: expected ${formatCrc(crc)}, found ${formatCrc(got)} (file=${name}, offset=0)`);
    }
    return decodeChunked(stored, { file: name });
  };
  try {
    return await attempt(() => getObject(storage, name));
  } catch (e) {
    if (storage instanceof TieredCheckpointStorage) {
      try {
        return await attempt(() => getObject(storage, name, () => storage.getFrom('durable', name)));
      } catch {
        throw e;
      }
    }
    throw e;
  }
}

export async function readManifest(storage: CheckpointStorage, id: number): Promise<Manifest> {
  const name = manifestName(id);
  try {
    return decodeManifest(await getObject(storage, name), name);
  } catch (e) {
    if (storage instanceof TieredCheckpointStorage) {
      try {
        return decodeManifest(await getObject(storage, name, () => storage.getFrom('durable', name)), name);
      } catch {
        throw e;
      }
    }
    throw e;
  }
}

export async function verifyCheckpoint(storage: CheckpointStorage, id: number): Promise<{ manifest: Manifest; files: Map<string, Uint8Array> }> {
  const manifest = await readManifest(storage, id);
  if (manifest.id !== id) throw new CairnError('corruption', `manifest id mismatch: expected ${id}, found ${manifest.id} (file=${manifestName(id)}, offset=12)`);
  const files = new Map<string, Uint8Array>();
  for (const f of referencedFiles(manifest)) {
    if (files.has(f.name)) continue;
    try {
      files.set(f.name, await readVerified(storage, f.name, f.bytes, f.crc32c));
    } catch (e) {
      // The manifest names the file, so the checkpoint is damaged, not merely absent.
      if (e instanceof CairnError && isNotFound(e)) {
        throw new CairnError('corruption', `checkpoint ${id} is missing a file it references: ${e.message} (file=${f.name}, offset=0)`, { cause: e });
      }
      throw e;
    }
  }
  validateSnapshots(manifest, files);
  return { manifest, files };
}

/**
 * Runs every decoded snapshot through the Wasm loader's validation (layout, lengths, key hashes)
 * without applying a row, in a scratch instance: bytes that pass every checksum but are internally
 * inconsistent make the checkpoint fail verification here, before a backend is built from it.
 */
function validateSnapshots(manifest: Manifest, files: Map<string, Uint8Array>): void {
  const core = new WasmCore();
  const none = new Uint8Array(manifest.keyGroups);
  for (const op of manifest.operators) {
    const h = core.openStore(storeConfigOf(op.spec));
    for (const layer of op.chain) {
      for (const f of layer.files) {
        try {
          core.load(h, files.get(f.name)!, manifest.keyGroups, none);
        } catch (e) {
          if (e instanceof CairnError && e.kind === 'corruption') {
            throw new CairnError('corruption', `checkpoint file snapshot does not match operator '${op.name}': ${e.message} (file=${f.name}, offset=0)`, { cause: e });
          }
          throw e;
        }
      }
    }
    core.ex.storeClose(h);
  }
}

/** The checkpoint to restore: `checkpointId`, or the newest one that verifies. */
export async function findCheckpoint(storage: CheckpointStorage, checkpointId?: number): Promise<VerifiedCheckpoint> {
  if (checkpointId !== undefined) {
    if (!Number.isSafeInteger(checkpointId) || checkpointId < 1) {
      throw new CairnError('invalid', `restore: checkpointId: expected a positive integer, found ${String(checkpointId)}`);
    }
    const v = await verifyCheckpoint(storage, checkpointId);
    return { ...v, skipped: [] };
  }
  const ids = await listCheckpointIds(storage);
  if (ids.length === 0) throw new CairnError('unavailable', 'restore: no checkpoint found in storage');
  const skipped: { id: number; reason: string }[] = [];
  for (const id of ids.reverse()) {
    try {
      const v = await verifyCheckpoint(storage, id);
      return { ...v, skipped };
    } catch (e) {
      // Damage or a missing file skips to an older checkpoint; a transient storage error does not,
      // since skipping would silently restore older state than the newest acknowledged one.
      if (!(e instanceof CairnError) || (e.kind !== 'corruption' && !isNotFound(e))) throw e;
      skipped.push({ id, reason: e.message });
    }
  }
  throw new CairnError('corruption', `restore: no checkpoint verifies; skipped ${skipped.map((s) => `${s.id} (${s.reason})`).join('; ')}`);
}
