/**
 * A CheckpointStorage over a local directory. Works in Node and Deno through node:fs/promises.
 *
 * A put is atomic and durable when it resolves: the bytes go to a temp file in the destination
 * directory, the file is fsynced and closed, renamed over the name, and the directory is fsynced so
 * the rename survives a power loss. A crash at any point leaves the old object or the new one, whole,
 * plus perhaps a temp file; temp names start with '.', which validateName forbids, so list never shows
 * them, and the first operation of a new FsCheckpointStorage removes them. New directories are fsynced
 * into their parents before a file is created in them.
 *
 * Every file-system call goes through `FsOps`, so tests can inject faults and crashes below this layer
 * (src/testing/simulated-fs.ts). OS errors (EIO, ENOSPC, EACCES, ...) become CairnError 'unavailable'
 * carrying the errno code in the message and the OS error as `cause`.
 *
 * Deleting an object also removes the directories it leaves empty, so that a name once used as a
 * directory ('a' of 'a/b') can later name an object again, as in every other implementation.
 *
 * One FsCheckpointStorage should own a directory: another writer's temp files in it would be removed
 * as stale.
 */
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { CairnError, invariant } from '../errors.js';
import { type CheckpointStorage, notFound, validateName, validatePrefix } from './storage.js';

/** A handle to a file opened for writing; opaque to the storage, each FsOps knows its own. */
export interface FsHandle {
  readonly path: string;
}

export interface FsDirEntry {
  readonly name: string;
  readonly isFile: boolean;
  readonly isDirectory: boolean;
}

/** The file-system calls FsCheckpointStorage makes. Errors carry a string errno `code`. */
export interface FsOps {
  /** Creates a new file for writing; fails with EEXIST if `path` exists. */
  open(path: string): Promise<FsHandle>;
  /** Appends at the file position; may write fewer bytes than given; returns how many it wrote. */
  write(handle: FsHandle, bytes: Uint8Array): Promise<number>;
  fsync(handle: FsHandle): Promise<void>;
  close(handle: FsHandle): Promise<void>;
  /** Atomically replaces `to` with `from`. */
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Removes an empty directory; ENOTEMPTY if it has entries. */
  rmdir(path: string): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
  readdir(path: string): Promise<FsDirEntry[]>;
  /** Creates one directory (its parent must exist); true if it made it, false if `path` existed. */
  mkdir(path: string): Promise<boolean>;
  /** Makes the directory's entries (creations, renames, unlinks) durable. */
  fsyncDir(path: string): Promise<void>;
}

class NodeFsHandle implements FsHandle {
  constructor(
    readonly path: string,
    readonly file: fsp.FileHandle,
  ) {}
}

function nodeHandle(handle: FsHandle): NodeFsHandle {
  invariant(handle instanceof NodeFsHandle, 'nodeFsOps got a handle it did not open');
  return handle;
}

/** The real file system. */
/** Creates `dir` and any missing ancestors, each fsynced into its parent as it is made. */
export async function makeDirDurable(fs: FsOps, dir: string): Promise<void> {
  const ancestors: string[] = [];
  for (let p = resolve(dir); dirname(p) !== p; p = dirname(p)) ancestors.unshift(p);
  for (const d of ancestors) if (await fs.mkdir(d)) await fs.fsyncDir(dirname(d));
}

export const nodeFsOps: FsOps = {
  async open(path) {
    return new NodeFsHandle(path, await fsp.open(path, 'wx'));
  },
  async write(handle, bytes) {
    return (await nodeHandle(handle).file.write(bytes, 0, bytes.length)).bytesWritten;
  },
  async fsync(handle) {
    await nodeHandle(handle).file.sync();
  },
  async close(handle) {
    await nodeHandle(handle).file.close();
  },
  async rename(from, to) {
    await fsp.rename(from, to);
  },
  async unlink(path) {
    await fsp.unlink(path);
  },
  async rmdir(path) {
    await fsp.rmdir(path);
  },
  async readFile(path) {
    const b = await fsp.readFile(path);
    // A plain, unshared Uint8Array: callers may use `.buffer`.
    return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? new Uint8Array(b.buffer) : new Uint8Array(b);
  },
  async readdir(path) {
    const entries = await fsp.readdir(path, { withFileTypes: true });
    return entries.map((e) => ({ name: e.name, isFile: e.isFile(), isDirectory: e.isDirectory() }));
  },
  async mkdir(path) {
    try {
      await fsp.mkdir(path);
      return true;
    } catch (e) {
      if (errnoCode(e) === 'EEXIST') return false;
      throw e;
    }
  },
  async fsyncDir(path) {
    const dir = await fsp.open(path, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  },
};

/** Prefix of temp files; starts with '.', so no valid name collides with it. */
export const TEMP_PREFIX = '.cairn-tmp-';

const MISSING_CODES: ReadonlySet<string> = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);
/**
 * unlink of a name that is a directory: Linux says EISDIR; Deno's node:fs removes an empty directory
 * and says ENOTEMPTY for a non-empty one. Either way there is no object by that name.
 */
const UNLINK_MISSING_CODES: ReadonlySet<string> = new Set([...MISSING_CODES, 'ENOTEMPTY']);
const NOT_EMPTY_CODES: ReadonlySet<string> = new Set(['ENOTEMPTY', 'EEXIST', 'ENOENT']);

/**
 * How many times a put tries to create its temp file. A delete in the same directory may remove the
 * directory (then empty) between the put's mkdir and its open; each retry creates it again.
 */
const OPEN_ATTEMPTS_MAX = 3;

function errnoCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export interface FsCheckpointStorageOptions {
  /** File-system calls; the real file system by default. */
  fs?: FsOps;
}

export class FsCheckpointStorage implements CheckpointStorage {
  readonly dir: string;
  readonly #fs: FsOps;
  #ready: Promise<void> | undefined;
  /** Directories (relative, '' is the root) known to exist durably. */
  readonly #knownDirs = new Set<string>();
  readonly #tempToken = randomBytes(6).toString('hex');
  #tempCounter = 0;

  constructor(dir: string, options: FsCheckpointStorageOptions = {}) {
    if (typeof dir !== 'string' || dir === '') {
      throw new CairnError('invalid', `FsCheckpointStorage: expected a directory path, found ${typeof dir === 'string' ? 'an empty string' : dir === null ? 'null' : typeof dir}`);
    }
    this.dir = dir;
    this.#fs = options.fs ?? nodeFsOps;
  }

  async put(name: string, bytes: Uint8Array): Promise<void> {
    validateName(name);
    await this.#ensureReady();
    const relDir = parentOf(name);
    const fs = this.#fs;
    const dirPath = join(this.dir, relDir);
    const finalPath = join(this.dir, name);
    const tempPath = join(dirPath, `${TEMP_PREFIX}${this.#tempToken}-${this.#tempCounter++}`);
    let handle: FsHandle | undefined;
    let renamed = false;
    try {
      for (let attempt = 1; handle === undefined; attempt++) {
        await this.#ensureDir(relDir);
        try {
          handle = await fs.open(tempPath);
        } catch (e) {
          if (errnoCode(e) !== 'ENOENT' || attempt === OPEN_ATTEMPTS_MAX) throw e;
          this.#forgetDir(relDir);
        }
      }
      let written = 0;
      // Each pass writes at least one byte, so the loop ends within bytes.length passes.
      while (written < bytes.length) {
        const n = await fs.write(handle, bytes.subarray(written));
        if (!(n > 0 && n <= bytes.length - written)) {
          throw Object.assign(new Error(`write returned ${n} for ${bytes.length - written} bytes`), { code: 'EIO' });
        }
        written += n;
      }
      await fs.fsync(handle);
      const h = handle;
      handle = undefined;
      await fs.close(h);
      await fs.rename(tempPath, finalPath);
      renamed = true;
      await fs.fsyncDir(dirPath);
    } catch (e) {
      // Best effort: a temp file that survives is removed as stale by the next FsCheckpointStorage.
      if (handle !== undefined) await fs.close(handle).catch(() => undefined);
      if (!renamed) await fs.unlink(tempPath).catch(() => undefined);
      throw this.#error('put', name, e);
    }
  }

  async get(name: string): Promise<Uint8Array> {
    validateName(name);
    await this.#ensureReady();
    try {
      return await this.#fs.readFile(join(this.dir, name));
    } catch (e) {
      if (MISSING_CODES.has(errnoCode(e) ?? '')) throw notFound(name, `dir=${this.dir}`);
      throw this.#error('get', name, e);
    }
  }

  async list(prefix: string): Promise<string[]> {
    validatePrefix(prefix);
    await this.#ensureReady();
    const names: string[] = [];
    try {
      await this.#walk(parentOf(prefix), prefix, names);
    } catch (e) {
      throw this.#error('list', prefix, e);
    }
    return names.sort();
  }

  async delete(name: string): Promise<void> {
    validateName(name);
    await this.#ensureReady();
    try {
      await this.#fs.unlink(join(this.dir, name));
    } catch (e) {
      if (UNLINK_MISSING_CODES.has(errnoCode(e) ?? '')) return;
      throw this.#error('delete', name, e);
    }
    try {
      await this.#fs.fsyncDir(join(this.dir, parentOf(name)));
      // Remove directories left empty, deepest first; stop at the first one that is not empty.
      for (let rel = parentOf(name); rel !== ''; rel = parentOf(rel)) {
        try {
          await this.#fs.rmdir(join(this.dir, rel));
        } catch (e) {
          if (NOT_EMPTY_CODES.has(errnoCode(e) ?? '')) break;
          throw e;
        }
        this.#knownDirs.delete(rel);
        await this.#fs.fsyncDir(join(this.dir, parentOf(rel)));
      }
    } catch (e) {
      throw this.#error('delete', name, e);
    }
  }

  /** Appends to `out` every object name under relative directory `rel` that starts with `prefix`. */
  async #walk(rel: string, prefix: string, out: string[]): Promise<void> {
    let entries: FsDirEntry[];
    try {
      entries = await this.#fs.readdir(join(this.dir, rel));
    } catch (e) {
      if (MISSING_CODES.has(errnoCode(e) ?? '')) return;
      throw e;
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isFile && path.startsWith(prefix)) out.push(path);
      if (entry.isDirectory && (prefix.startsWith(path + '/') || (path + '/').startsWith(prefix))) {
        await this.#walk(path, prefix, out);
      }
    }
  }

  #ensureReady(): Promise<void> {
    this.#ready ??= this.#prepare().catch((e) => {
      this.#ready = undefined; // let the next call try again
      throw this.#error('open', '', e);
    });
    return this.#ready;
  }

  /**
   * Creates the root directory and any missing ancestors, each made durable in its parent, and removes
   * temp files a crash left behind. The root's parent is fsynced even when the root existed, in case a
   * previous instance made it and died before its fsync.
   */
  async #prepare(): Promise<void> {
    const root = resolve(this.dir);
    await makeDirDurable(this.#fs, root);
    await this.#fs.fsyncDir(dirname(root));
    this.#knownDirs.add('');
    await this.#removeStaleTemps('');
  }

  async #removeStaleTemps(rel: string): Promise<void> {
    const dirPath = join(this.dir, rel);
    let removed = false;
    for (const entry of await this.#fs.readdir(dirPath)) {
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.name.startsWith(TEMP_PREFIX)) {
        await this.#fs.unlink(join(this.dir, path));
        removed = true;
      } else if (entry.isDirectory && !entry.name.startsWith('.')) {
        await this.#removeStaleTemps(path);
      }
    }
    if (removed) await this.#fs.fsyncDir(dirPath);
  }

  /** Forgets that `rel` and its ancestors exist, so #ensureDir creates them again. */
  #forgetDir(rel: string): void {
    for (let r = rel; r !== ''; r = parentOf(r)) this.#knownDirs.delete(r);
  }

  /** Creates relative directory `rel` and its parents, each fsynced into its parent. */
  async #ensureDir(rel: string): Promise<void> {
    if (this.#knownDirs.has(rel)) return;
    const segments = rel.split('/');
    for (let i = 1; i <= segments.length; i++) {
      const sub = segments.slice(0, i).join('/');
      if (this.#knownDirs.has(sub)) continue;
      try {
        await this.#fs.mkdir(join(this.dir, sub));
        await this.#fs.fsyncDir(join(this.dir, parentOf(sub)));
      } catch (e) {
        throw this.#error('mkdir', sub, e);
      }
      this.#knownDirs.add(sub);
    }
  }

  #error(op: string, name: string, e: unknown): CairnError {
    if (e instanceof CairnError) return e;
    const code = errnoCode(e);
    const detail = e instanceof Error ? e.message : String(e);
    if (code === undefined) {
      // Not an OS error: a bug in an FsOps implementation, not a retryable condition.
      return new CairnError('internal', `fs storage ${op}: expected an OS error with a code, found ${detail} (name=${JSON.stringify(name)}, dir=${this.dir})`, { cause: e });
    }
    return new CairnError('unavailable', `fs storage ${op} failed: expected success, found ${code}: ${detail} (name=${JSON.stringify(name)}, dir=${this.dir})`, { cause: e });
  }
}

/** The relative directory of a name or prefix: '' for top-level names. */
function parentOf(name: string): string {
  const slash = name.lastIndexOf('/');
  return slash < 0 ? '' : name.slice(0, slash);
}
