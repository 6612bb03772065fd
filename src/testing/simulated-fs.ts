/**
 * An in-memory file system implementing FsOps, for testing FsCheckpointStorage against crashes and
 * faults that a real disk cannot be made to produce on demand.
 *
 * Durability model (strict POSIX, as on a disk that loses its cache on power failure):
 * - File contents become durable only at fsync(handle); a crash restores each file to its contents at
 *   its last fsync (empty if never fsynced).
 * - Directory entries (creations, renames, unlinks, new subdirectories) become durable only at
 *   fsyncDir of the directory that holds them; a crash restores each directory to its entries at its
 *   last fsyncDir. The root '/' always exists.
 *
 * Every FsOps call is one operation with an index from 0. A fault scheduled at an index applies to that
 * operation:
 * - 'short-write' (write): writes half the bytes (at least 1) and returns the short count; not an error.
 * - 'enospc' (write): writes half the bytes, then throws ENOSPC.
 * - 'rename-lost' (rename): reports success and does nothing, a rename that never happened.
 * - 'eio' (any operation): throws EIO and changes nothing; a failed fsync leaves the data not durable.
 * A fault that does not fit its operation (say 'rename-lost' on a write) acts as 'eio'.
 *
 * `crash()` drops everything not durable and invalidates open handles; later calls work (the machine
 * restarted). `crashAt(index)` crashes when that operation starts, and it and every later call fail with
 * EIO until `restart()`, as calls from the process that died would.
 */
import type { FsDirEntry, FsHandle, FsOps } from '../storage/fs.js';

export type SimulatedFault = 'short-write' | 'enospc' | 'rename-lost' | 'eio';
export type FsOpKind = keyof FsOps;

interface FileNode {
  readonly kind: 'file';
  data: Uint8Array;
  size: number;
  durable: Uint8Array;
}

interface DirNode {
  readonly kind: 'dir';
  entries: Map<string, Node>;
  durableEntries: Map<string, Node>;
}

type Node = FileNode | DirNode;

interface SimHandle extends FsHandle {
  readonly node: FileNode;
  readonly generation: number;
  closed: boolean;
}

function fsError(code: string, op: string, path: string): Error {
  return Object.assign(new Error(`${code}: simulated ${op} '${path}'`), { code });
}

function segmentsOf(path: string): string[] {
  return path.split('/').filter((s) => s !== '' && s !== '.');
}

function newDir(): DirNode {
  return { kind: 'dir', entries: new Map(), durableEntries: new Map() };
}

export class SimulatedFs implements FsOps {
  readonly #root: DirNode = newDir();
  readonly #faults = new Map<number, SimulatedFault>();
  readonly #log: { index: number; op: FsOpKind; path: string }[] = [];
  #crashAt = Number.POSITIVE_INFINITY;
  #down = false;
  /** Bumped by each crash; handles from an older generation are dead. */
  #generation = 0;

  /** Operations started so far; the index the next operation gets. */
  get opCount(): number {
    return this.#log.length;
  }

  get log(): readonly { index: number; op: FsOpKind; path: string }[] {
    return this.#log;
  }

  faultAt(opIndex: number, fault: SimulatedFault): this {
    this.#faults.set(opIndex, fault);
    return this;
  }

  crashAt(opIndex: number): this {
    this.#crashAt = opIndex;
    return this;
  }

  /** Clears scheduled faults and a pending crashAt, and ends the outage after a crashAt. */
  restart(): this {
    this.#faults.clear();
    this.#crashAt = Number.POSITIVE_INFINITY;
    this.#down = false;
    return this;
  }

  /** Drops every write, creation, rename and unlink not made durable, and invalidates open handles. */
  crash(): void {
    this.#generation++;
    const revert = (dir: DirNode) => {
      dir.entries = new Map(dir.durableEntries);
      for (const node of dir.entries.values()) {
        if (node.kind === 'dir') revert(node);
        else {
          node.data = node.durable.slice();
          node.size = node.durable.length;
        }
      }
    };
    revert(this.#root);
  }

  /** Every file path currently visible (not only durable ones), sorted. */
  files(): string[] {
    const out: string[] = [];
    const walk = (dir: DirNode, prefix: string) => {
      for (const [name, node] of dir.entries) {
        if (node.kind === 'dir') walk(node, `${prefix}/${name}`);
        else out.push(`${prefix}/${name}`);
      }
    };
    walk(this.#root, '');
    return out.sort();
  }

  // -------------------------------------------------------------------------------------------------
  // FsOps

  async open(path: string): Promise<FsHandle> {
    this.#begin('open', path);
    const { parent, name } = this.#parentOf(path, 'open');
    if (parent.entries.has(name)) throw fsError('EEXIST', 'open', path);
    const node: FileNode = { kind: 'file', data: new Uint8Array(64), size: 0, durable: new Uint8Array(0) };
    parent.entries.set(name, node);
    const handle: SimHandle = { path, node, generation: this.#generation, closed: false };
    return handle;
  }

  async write(handle: FsHandle, bytes: Uint8Array): Promise<number> {
    const fault = this.#begin('write', handle.path);
    const h = this.#live(handle, 'write');
    if (fault === 'short-write' || fault === 'enospc') {
      const n = Math.max(1, Math.floor(bytes.length / 2));
      append(h.node, bytes.subarray(0, Math.min(n, bytes.length)));
      if (fault === 'enospc') throw fsError('ENOSPC', 'write', handle.path);
      return Math.min(n, bytes.length);
    }
    append(h.node, bytes);
    return bytes.length;
  }

  async fsync(handle: FsHandle): Promise<void> {
    this.#begin('fsync', handle.path);
    const h = this.#live(handle, 'fsync');
    h.node.durable = h.node.data.slice(0, h.node.size);
  }

  async close(handle: FsHandle): Promise<void> {
    this.#begin('close', handle.path);
    const h = this.#live(handle, 'close');
    h.closed = true;
  }

  async rename(from: string, to: string): Promise<void> {
    const fault = this.#begin('rename', `${from} -> ${to}`);
    const src = this.#parentOf(from, 'rename');
    const node = src.parent.entries.get(src.name);
    if (node === undefined) throw fsError('ENOENT', 'rename', from);
    const dst = this.#parentOf(to, 'rename');
    const existing = dst.parent.entries.get(dst.name);
    if (existing?.kind === 'dir') throw fsError('EISDIR', 'rename', to);
    if (node.kind === 'dir') throw fsError('EPERM', 'rename (directories are not simulated)', from);
    if (fault === 'rename-lost') return;
    src.parent.entries.delete(src.name);
    dst.parent.entries.set(dst.name, node);
  }

  async unlink(path: string): Promise<void> {
    this.#begin('unlink', path);
    const { parent, name } = this.#parentOf(path, 'unlink');
    const node = parent.entries.get(name);
    if (node === undefined) throw fsError('ENOENT', 'unlink', path);
    if (node.kind === 'dir') throw fsError('EISDIR', 'unlink', path);
    parent.entries.delete(name);
  }

  async rmdir(path: string): Promise<void> {
    this.#begin('rmdir', path);
    const { parent, name } = this.#parentOf(path, 'rmdir');
    const node = parent.entries.get(name);
    if (node === undefined) throw fsError('ENOENT', 'rmdir', path);
    if (node.kind !== 'dir') throw fsError('ENOTDIR', 'rmdir', path);
    if (node.entries.size > 0) throw fsError('ENOTEMPTY', 'rmdir', path);
    parent.entries.delete(name);
  }

  async readFile(path: string): Promise<Uint8Array> {
    this.#begin('readFile', path);
    const node = this.#lookup(path, 'readFile');
    if (node.kind === 'dir') throw fsError('EISDIR', 'readFile', path);
    return node.data.slice(0, node.size);
  }

  async readdir(path: string): Promise<FsDirEntry[]> {
    this.#begin('readdir', path);
    const node = this.#lookup(path, 'readdir');
    if (node.kind !== 'dir') throw fsError('ENOTDIR', 'readdir', path);
    return [...node.entries].map(([name, n]) => ({ name, isFile: n.kind === 'file', isDirectory: n.kind === 'dir' }));
  }

  async mkdir(path: string): Promise<boolean> {
    this.#begin('mkdir', path);
    const { parent, name } = this.#parentOf(path, 'mkdir');
    if (parent.entries.has(name)) return false;
    parent.entries.set(name, newDir());
    return true;
  }

  async fsyncDir(path: string): Promise<void> {
    this.#begin('fsyncDir', path);
    const node = this.#lookup(path, 'fsyncDir');
    if (node.kind !== 'dir') throw fsError('ENOTDIR', 'fsyncDir', path);
    node.durableEntries = new Map(node.entries);
  }

  // -------------------------------------------------------------------------------------------------

  /** Logs the operation, applies a crash or an 'eio' fault, and returns a fault the caller applies. */
  #begin(op: FsOpKind, path: string): SimulatedFault | undefined {
    const index = this.#log.length;
    this.#log.push({ index, op, path });
    if (index === this.#crashAt) {
      this.crash();
      this.#down = true;
    }
    if (this.#down) throw fsError('EIO', `${op} after crash`, path);
    const fault = this.#faults.get(index);
    if (fault === undefined) return undefined;
    const fits = fault === 'eio' || (op === 'write' && (fault === 'short-write' || fault === 'enospc')) || (op === 'rename' && fault === 'rename-lost');
    if (!fits || fault === 'eio') throw fsError('EIO', op, path);
    return fault;
  }

  #live(handle: FsHandle, op: string): SimHandle {
    const h = handle as SimHandle;
    if (h.closed || h.generation !== this.#generation) throw fsError('EBADF', op, handle.path);
    return h;
  }

  #lookup(path: string, op: string): Node {
    let node: Node = this.#root;
    for (const segment of segmentsOf(path)) {
      if (node.kind !== 'dir') throw fsError('ENOTDIR', op, path);
      const child: Node | undefined = node.entries.get(segment);
      if (child === undefined) throw fsError('ENOENT', op, path);
      node = child;
    }
    return node;
  }

  #parentOf(path: string, op: string): { parent: DirNode; name: string } {
    const segments = segmentsOf(path);
    if (segments.length === 0) throw fsError('EISDIR', op, path);
    const name = segments.pop()!;
    const parent = this.#lookup('/' + segments.join('/'), op);
    if (parent.kind !== 'dir') throw fsError('ENOTDIR', op, path);
    return { parent, name };
  }
}

function append(node: FileNode, bytes: Uint8Array): void {
  const needed = node.size + bytes.length;
  if (needed > node.data.length) {
    const grown = new Uint8Array(Math.max(needed, node.data.length * 2));
    grown.set(node.data.subarray(0, node.size));
    node.data = grown;
  }
  node.data.set(bytes, node.size);
  node.size = needed;
}
