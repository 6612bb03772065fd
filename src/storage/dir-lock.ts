/**
 * An exclusive lock on a checkpoint directory, so that two processes never write one directory at
 * once (each would take the other's temp files for a crash's leftovers and remove them, and both
 * would number checkpoints from the same last id).
 *
 * The lock is the file LOCK_NAME in the directory, created with O_CREAT | O_EXCL and holding the
 * owner's pid, host and start time as JSON. Its name starts with '.', so FsCheckpointStorage never
 * lists it (nor, since it does not start with TEMP_PREFIX, removes it as a temp file). A lock whose
 * owner is gone (same host, and no process runs as that pid) is stale: the next locker removes it and
 * takes the directory, which is how a run killed by SIGKILL or a power loss is resumed. A lock held
 * from another host cannot be checked and is never taken over.
 *
 * Works in Node and Deno through node:fs, node:fs/promises and node:process.
 */
import { closeSync, fsyncSync, openSync, readFileSync, unlinkSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { hostname } from 'node:os';
import process from 'node:process';
import { dirname, join, resolve } from 'node:path';
import { CairnError } from '../errors.js';
import { makeDirDurable, nodeFsOps } from './fs.js';

export const LOCK_NAME = '.cairn-lock';
/**
 * Held (O_EXCL) while a stale lock is removed and replaced, so two processes that both find the
 * same stale lock cannot both take the directory: the second finds the first's new lock instead.
 */
export const BREAK_NAME = '.cairn-lock.break';
/** A break file older than this belongs to a process that died while breaking a lock. */
export const BREAK_STALE_MS = 10_000;

/** What a lock file holds. */
export interface LockOwner {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  since: string;
  /** The kernel's boot id (Linux): a lock from an earlier boot is stale whatever its pid. */
  boot?: string;
}

/**
 * Per lock path, this process's claims: locks it holds, and attempts at creating one that are in
 * flight. A lock naming this process's pid is its own while any claim stands (a second run in the
 * same process must not take it), and stale otherwise.
 */
const claims = new Map<string, number>();
const claim = (key: string, by: number): void => {
  const n = (claims.get(key) ?? 0) + by;
  if (n > 0) claims.set(key, n);
  else claims.delete(key);
};

export interface DirLock {
  readonly path: string;
  /** Removes the lock file, if it is still this lock's. Idempotent. */
  release(): Promise<void>;
  /**
   * release, synchronously: for a signal handler that exits the process right after, when no
   * promise would settle. Never throws (a lock it cannot remove is stale once the process is gone).
   */
  releaseSync(): void;
}

/** How long a lock file may stay unreadable (empty, or partly written) before it counts as stale. */
export const UNREADABLE_STALE_MS = 10_000;

/** Attempts at taking the lock when stale locks keep appearing (another process racing). */
const ATTEMPTS_MAX = 5;

/**
 * Takes the lock on `dir` (created if missing), or throws CairnError 'unavailable' naming the
 * process that holds it.
 */
export async function acquireDirLock(dir: string): Promise<DirLock> {
  try {
    await makeDirDurable(nodeFsOps, dir);
  } catch (e) {
    throw new CairnError('unavailable', `cannot create checkpoint directory ${dir}: ${codeOf(e)}`, { cause: e });
  }
  const path = join(dir, LOCK_NAME);
  const boot = await bootId();
  const me: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString(), ...(boot ? { boot } : {}) };
  const text = JSON.stringify(me) + '\n';
  let breaking = false;
  for (let attempt = 0; attempt < ATTEMPTS_MAX; attempt++) {
    if (await createLock(dir, path, text)) {
      await removeOldPrivateFiles(dir);
      return lockOf(path, text);
    }
    let held: string;
    try {
      held = await fsp.readFile(path, 'utf8');
    } catch (e) {
      if (codeOf(e) === 'ENOENT') continue; // released meanwhile: try again
      throw new CairnError('unavailable', `cannot read the lock of checkpoint directory ${dir}: ${codeOf(e)}`, { cause: e });
    }
    const owner = parseOwner(held);
    if (owner ? isStale(owner, me, path) : await olderThan(path, UNREADABLE_STALE_MS)) {
      // (An unreadable lock is one being written, or one whose writer died between creating and
      // writing it: stale once it has stayed unreadable for UNREADABLE_STALE_MS.)
      breaking = !(await breakStale(dir, path, held, me, text));
      continue;
    }
    const who = owner ? `process ${owner.pid} on ${owner.host} (since ${owner.since})` : 'another process (unreadable lock file)';
    throw new CairnError(
      'unavailable',
      `checkpoint directory ${dir} is in use by ${who}; wait for it to finish, or remove ${path} if that process is gone`,
    );
  }
  if (breaking) {
    throw new CairnError(
      'unavailable',
      `cannot lock checkpoint directory ${dir}: another process is taking over its stale lock (${join(dir, BREAK_NAME)} exists); try again in a few seconds, or remove that file if no other run is starting`,
    );
  }
  throw new CairnError('unavailable', `cannot lock checkpoint directory ${dir}: other processes keep taking it`);
}

/** A private lock file (see createLock) older than this was left by a process killed while locking. */
export const PRIVATE_STALE_MS = 10 * 60_000;

/**
 * Removes private lock files (`.cairn-lock-new-*`) left by processes killed between writing one and
 * linking it, once they are PRIVATE_STALE_MS old (by age, not pid: the directory may be shared by
 * hosts whose pids this one cannot check). Best effort: a failure leaves them for the next lock.
 */
async function removeOldPrivateFiles(dir: string): Promise<void> {
  try {
    for (const name of await fsp.readdir(dir)) {
      if (!name.startsWith(`${LOCK_NAME}-new-`)) continue;
      const path = join(dir, name);
      if (await olderThan(path, PRIVATE_STALE_MS)) await fsp.rm(path, { force: true });
    }
  } catch {
    // Leftovers do no harm; the next lock tries again.
  }
}

/**
 * Creates the lock holding `text`; false when one exists. The text goes to a private file first,
 * which is then hard-linked to the lock's name (a link fails if the name exists, as O_EXCL does),
 * so the lock never exists empty or half written. Where the file system has no hard links, the
 * lock is created O_EXCL and written in place instead (an unreadable lock is then briefly visible,
 * which others treat as held).
 */
async function createLock(dir: string, path: string, text: string): Promise<boolean> {
  const key = resolve(path);
  const fail = (e: unknown) => new CairnError('unavailable', `cannot lock checkpoint directory ${dir}: ${codeOf(e)}`, { cause: e });
  const tmp = join(dir, `${LOCK_NAME}-new-${process.pid}-${Math.floor(Math.random() * 2 ** 32).toString(16)}`);
  let linked: boolean | null = null; // null: no hard links here
  try {
    await writeSynced(tmp, 'wx', text);
    // Claimed before it can exist (a second run in this process may read it any time then).
    claim(key, 1);
    try {
      await fsp.link(tmp, path);
      linked = true;
    } catch (e) {
      claim(key, -1);
      if (codeOf(e) === 'EEXIST') linked = false;
      else if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV'].includes(codeOf(e))) throw e;
    }
  } catch (e) {
    throw fail(e);
  } finally {
    await fsp.unlink(tmp).catch(() => undefined);
  }
  if (linked === false) return false;
  if (linked === null) {
    try {
      claim(key, 1);
      await writeSynced(path, 'wx', text);
    } catch (e) {
      claim(key, -1);
      if (codeOf(e) === 'EEXIST') return false;
      // A full disk, say: writeSynced left no empty lock behind.
      throw fail(e);
    }
  }
  try {
    await nodeFsOps.fsyncDir(dir);
  } catch (e) {
    claim(key, -1);
    await fsp.unlink(path).catch(() => undefined);
    throw fail(e);
  }
  return true;
}

/** Writes `text` to a new file (flags 'wx'), fsynced, closed; a failed write leaves no file. */
async function writeSynced(path: string, flags: string, text: string): Promise<void> {
  const h = await fsp.open(path, flags);
  try {
    try {
      await h.writeFile(text);
      await h.sync();
    } finally {
      await h.close();
    }
  } catch (e) {
    await fsp.unlink(path).catch(() => undefined);
    throw e;
  }
}

/**
 * Whether the lock's process is gone: same host and, where both know it, the same boot (an
 * earlier boot's lock is stale whatever its pid), and no process runs as its pid (see alive). A lock naming this
 * process that this process does not hold is stale too: a container restarted after kill -9
 * runs its new process under the old pid (often 1) and host name.
 */
function isStale(owner: LockOwner, me: LockOwner, path: string): boolean {
  if (owner.host !== me.host) return false;
  if (owner.boot && me.boot && owner.boot !== me.boot) return true;
  if (owner.pid === me.pid) return !claims.has(resolve(path));
  return !alive(owner.pid);
}

/**
 * Removes the stale lock whose bytes are `held`, under the break file: only if the lock still
 * holds those bytes (not a lock another process took meanwhile). Returns true when done, false
 * when another process is breaking it (the caller then looks again).
 */
async function breakStale(dir: string, path: string, held: string, me: LockOwner, text: string): Promise<boolean> {
  const brk = join(dir, BREAK_NAME);
  let h: fsp.FileHandle;
  try {
    h = await fsp.open(brk, 'wx');
  } catch (e) {
    if (codeOf(e) !== 'EEXIST') throw new CairnError('unavailable', `cannot lock checkpoint directory ${dir}: ${codeOf(e)}`, { cause: e });
    // Another process is breaking it; a break file left by a process that died meanwhile goes: at
    // once when it names a process of this host that is gone, else once BREAK_STALE_MS old.
    const breaker = parseOwner(await fsp.readFile(brk, 'utf8').catch(() => ''));
    // (Our own pid but not a break of this process: a container restarted after kill -9 runs as pid 1 again.)
    const gone = breaker !== null && breaker.host === me.host &&
      ((breaker.boot !== undefined && me.boot !== undefined && breaker.boot !== me.boot) ||
        (breaker.pid === me.pid ? !breakingHere.has(resolve(brk)) : !alive(breaker.pid)));
    if (gone || (await olderThan(brk, BREAK_STALE_MS))) await fsp.unlink(brk).catch(() => undefined);
    else await new Promise((r) => setTimeout(r, 20));
    return false;
  }
  breakingHere.add(resolve(brk));
  try {
    // Names its owner (as a lock does), so a process killed while breaking does not block others.
    await h.writeFile(text).catch(() => undefined);
    await h.close();
    const again = await fsp.readFile(path, 'utf8').catch(() => null);
    if (again === held) {
      await fsp.unlink(path).catch((e: unknown) => { if (codeOf(e) !== 'ENOENT') throw e; });
      await nodeFsOps.fsyncDir(dir);
    }
  } finally {
    await fsp.unlink(brk).catch(() => undefined);
    breakingHere.delete(resolve(brk));
  }
  return true;
}

/** Break files this process holds (resolved paths). */
const breakingHere = new Set<string>();

function lockOf(path: string, text: string): DirLock {
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      claim(resolve(path), -1);
      const now = await fsp.readFile(path, 'utf8').catch(() => null);
      if (now === text) {
        await fsp.unlink(path).catch((e: unknown) => { if (codeOf(e) !== 'ENOENT') throw e; });
        // Durably gone: after a power loss the lock must not come back under a recycled pid.
        await nodeFsOps.fsyncDir(dirname(path)).catch(() => undefined);
      }
    },
    releaseSync() {
      if (released) return;
      released = true;
      claim(resolve(path), -1);
      try {
        if (readFileSync(path, 'utf8') !== text) return;
        unlinkSync(path);
        const fd = openSync(dirname(path), 'r');
        try {
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      } catch {
        // Gone already, or not removable: stale once this process has exited.
      }
    },
  };
}

/** The kernel's boot id, where there is one (Linux). */
async function bootId(): Promise<string | undefined> {
  try {
    return (await fsp.readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim() || undefined;
  } catch {
    return undefined;
  }
}

function parseOwner(text: string): LockOwner | null {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (Number.isSafeInteger(o.pid) && o.pid! > 0 && typeof o.host === 'string' && typeof o.since === 'string' && (o.boot === undefined || typeof o.boot === 'string')) return o as LockOwner;
  } catch {
    // fall through: unreadable (a lock being written, or damaged) is treated as held
  }
  return null;
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await fsp.stat(path)).mtimeMs > ms;
  } catch {
    return false;
  }
}

/**
 * Whether a process with this pid runs (EPERM: it exists, owned by someone else). A zombie (exited,
 * not yet reaped by its parent) does not: a run killed with SIGKILL stays one until its parent
 * waits for it, which in a container whose pid 1 never reaps is forever. Its state is read from
 * /proc where there is one (Linux); elsewhere an existing pid counts as running.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return codeOf(e) !== 'ESRCH';
  }
  return !exitedProcess(pid);
}

/** Whether /proc says `pid` has exited (state Z, zombie, or X, dead); false where it cannot tell. */
function exitedProcess(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return false;
  }
  // "pid (comm) state ...": comm may hold spaces and parentheses, so the state follows the last ')'.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state === 'Z' || state === 'X';
}

function codeOf(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? (e instanceof Error ? e.message : String(e));
}
