/**
 * Takes checkpoints: a consistent capture across every operator and shard, then compression,
 * checksums and writes in the background, the manifest last, then retention.
 *
 * Consistency: captures are posted to every shard synchronously when checkpoint() is called, so the
 * checkpoint holds exactly the operations called before it. Checkpoints are written in order; if
 * one fails after capture, the next one is written as a full base (the stores already forgot the
 * changes the failed one captured), and a checkpoint captured while a previous one was still being
 * written fails too, since its deltas sit on top of a checkpoint that does not exist.
 */
import { MODE_DELTA, MODE_FULL } from '../../bindings/exports.js';
import { CairnError, invariant } from '../errors.js';
import { encodeChunkedWithCrc } from '../codec/chunked.js';
import { CODEC_NAMES, type Codec } from '../codec/codec.js';
import { isNotFound, type CheckpointStorage } from '../storage/storage.js';
import { TieredCheckpointStorage } from '../storage/tiered.js';
import type { ShardManager } from '../shard/manager.js';
import type { CaptureInfo } from '../shard/protocol.js';
import type { NormalizedSpec } from '../store/spec.js';
import { readManifest } from './restore.js';
import {
  MANIFEST_FORMAT_VERSION, dataFileIdOf, dataFileName, decodeManifest, encodeManifest, manifestName, manifestIdOf, newWriterToken, referencedFiles,
  type DataFileRef, type Layer, type Manifest, type OperatorEntry,
} from './manifest.js';

export const RETAIN_DEFAULT = 3;
export const RETAIN_MAX = 1000;
export const DELTA_RATIO_DEFAULT = 1.0;

/**
 * The bytes an operator's chain has cost since its base: its deltas' data files, and its layers'
 * entries in every manifest since the base (each checkpoint's manifest lists the whole chain, so a
 * layer is written again by every later checkpoint of the chain). Counting data files alone let a
 * chain of tiny deltas grow until each "incremental" manifest outweighed a full checkpoint. A
 * function of the chain alone. (A restored backend starts new chains: its first checkpoint is full.)
 */
export function chainCost(chain: readonly Layer[]): number {
  const n = chain.length - 1; // deltas, each followed by one manifest
  let cost = 0;
  for (let j = 0; j <= n; j++) {
    const l = chain[j]!;
    // Layer j is in the manifests of checkpoints j..n (the base's from 1 on: its own is the full one).
    cost += (j === 0 ? 0 : l.bytes) + JSON.stringify(l).length * (j === 0 ? n : n - j + 1);
  }
  return cost;
}
export const WRITE_CONCURRENCY_MAX = 8;
/** Failed checkpoint ids the writer check remembers as not this coordinator's manifests. */
const SKIPPED_IDS_MAX = 10_000;
/**
 * Pages (of 8 rows) a full capture copies per step after its cut: about a millisecond of work,
 * so an ingest call waits at most about that long behind a step.
 */
export const CAPTURE_STEP_PAGES = 4096;
/**
 * Raw bytes per compressed chunk of a data file: compressing one holds the thread for a few
 * milliseconds (zstd-codec does about 100-300 MB/s here), where a 4 MiB chunk held it for 15-30.
 * 512 KiB against 1 MiB (bench/checkpoint.ts, 1M keys, three runs each, alternating, 2026-11-27):
 * the longest gap between a concurrent loop's ingest calls fell from 19-32 to 12-22 ms on a worker
 * shard and from 14-17 to 9-10 ms in process; stored bytes did not change (0.175x and 0.278x of
 * the raw columns).
 */
export const CHECKPOINT_CHUNK_BYTES = 512 * 1024;

export interface CheckpointResult {
  id: number;
  incremental: boolean;
  /** Stored bytes written by this checkpoint (data files and manifest). */
  bytes: number;
  /** Files written by this checkpoint (data files and manifest). */
  files: number;
  durationMs: number;
  /**
   * How long operations were held up by the capture: the largest time a worker shard spent making
   * this checkpoint's captures (its other requests wait meanwhile; the copy out comes later, in
   * steps), or with in-process shards, which capture one after the other, their total.
   */
  stallMs: number;
}

/** A live operator as the coordinator sees it. */
export interface CheckpointOperator {
  name: string;
  id: number;
  spec: NormalizedSpec;
  watermark: bigint;
  lateEvents(): Promise<bigint>;
  seq: bigint;
}

export interface CheckpointSource {
  readonly manager: ShardManager;
  liveOperators(): CheckpointOperator[];
  /** Restored operators the host has not declared again: carried forward unchanged. */
  pendingEntries(): OperatorEntry[];
}

export interface CoordinatorOptions {
  storage: CheckpointStorage;
  codec: Codec;
  retain?: number;
  /** A new full base is written once the deltas since the base exceed this fraction of it. */
  maxDeltaRatio?: number;
}

/**
 * Checks checkpoint options before anything starts (a wrong storage or codec would otherwise show
 * up later as an `unavailable` failure of every checkpoint, which callers retry): `invalid` when
 * `storage` is not a CheckpointStorage (put, get, list and delete functions), `codec` not a Codec
 * of a known format, or `retain` or `maxDeltaRatio` out of range.
 */
export function checkCoordinatorOptions(o: { storage?: unknown; codec?: unknown; retain?: unknown; maxDeltaRatio?: unknown }, where: string): void {
  const describe = (x: unknown): string => (x === null ? 'null' : typeof x === 'string' ? JSON.stringify(x) : typeof x);
  const st = o.storage as Record<string, unknown> | null | undefined;
  if (st === null || typeof st !== 'object' || !['put', 'get', 'list', 'delete'].every((k) => typeof st[k] === 'function')) {
    throw new CairnError('invalid', `${where}: storage: expected a CheckpointStorage (an object with put, get, list and delete, such as new FsCheckpointStorage(dir)), found ${describe(o.storage)}`);
  }
  if (o.codec !== undefined) {
    const c = o.codec as Record<string, unknown> | null;
    if (c === null || typeof c !== 'object' || typeof c.compress !== 'function' || typeof c.decompress !== 'function' || !(CODEC_NAMES as readonly unknown[]).includes(c.name)) {
      throw new CairnError('invalid', `${where}: codec: expected a Codec (such as defaultCodec() or new NoneCodec()) named one of ${CODEC_NAMES.join(', ')}, found ${describe(o.codec)}`);
    }
  }
  if (o.retain !== undefined && (!Number.isInteger(o.retain) || (o.retain as number) < 1 || (o.retain as number) > RETAIN_MAX)) {
    throw new CairnError('invalid', `${where}: retain: expected an integer in [1, ${RETAIN_MAX}], found ${String(o.retain)}`);
  }
  if (o.maxDeltaRatio !== undefined && !(typeof o.maxDeltaRatio === 'number' && o.maxDeltaRatio >= 0)) {
    throw new CairnError('invalid', `${where}: maxDeltaRatio: expected a number >= 0, found ${String(o.maxDeltaRatio)}`);
  }
}

export class CheckpointCoordinator {
  readonly storage: CheckpointStorage;
  private readonly codec: Codec;
  readonly retain: number;
  private readonly maxDeltaRatio: number;
  private nextId: number;
  private last: Manifest | null;
  private readonly chains = new Map<string, Layer[]>();
  private allFull = true;
  private assignmentSeen: string;
  private tail: Promise<unknown> = Promise.resolve();
  private readonly cache = new Map<number, Manifest>();
  /** Random per coordinator, in its data file names: two writers never write the same file. */
  private readonly writer = newWriterToken();
  /** The first id this coordinator took: every manifest from here on is its own or another writer's. */
  private readonly firstId: number;
  /**
   * The manifests this coordinator put (or started to): every id from firstId to lastClaimed but
   * those in `skipped` (checkpoints that failed before their manifest; bounded, oldest dropped).
   * Kept as ranges, not read back from listings: a manifest that storage stops listing for a while
   * (retention on the local tier alone during a durable outage) is still ours when it shows again.
   */
  private lastClaimed: number;
  private readonly skipped = new Set<number>();
  /** Manifests whose put failed, by id, with the fingerprint of what we tried to put. */
  private readonly uncertain = new Map<number, Fingerprint>();
  /** The manifest this coordinator wrote last (id and fingerprint), to notice it was replaced. */
  private lastWritten: (Fingerprint & { id: number }) | null = null;
  /** Set once another writer was seen (what showed it): every later checkpoint fails. */
  private fenced: string | null = null;

  constructor(o: CoordinatorOptions, manager: ShardManager, restored: Manifest | null, nextId: number) {
    this.storage = o.storage;
    this.codec = o.codec;
    checkCoordinatorOptions(o, 'checkpoints');
    this.retain = o.retain ?? RETAIN_DEFAULT;
    this.maxDeltaRatio = o.maxDeltaRatio ?? DELTA_RATIO_DEFAULT;
    this.last = restored;
    this.nextId = nextId;
    this.firstId = nextId;
    this.lastClaimed = nextId - 1;
    if (restored) this.cache.set(restored.id, restored);
    this.assignmentSeen = assignmentKey(manager);
  }

  /**
   * Starts a checkpoint: its capture is posted in call order (through the gate: at once, or when
   * a rescale queued before it has finished), and that is where it decides what to capture (full
   * or delta, which operators), so it sees every call made before it and nothing made after.
   * Resolves once its manifest is written. `openings` settles once every operator declared before
   * this call has opened and loaded its restored state; if one failed, the captures hold partial
   * state and nothing is written.
   */
  checkpoint(src: CheckpointSource, meta: unknown, openings: Promise<void> = Promise.resolve()): Promise<CheckpointResult> {
    const t0 = performance.now();
    const m = src.manager;
    // Checked before an id is taken: a refused call leaves no gap in the ids.
    const metaJson = metaJsonOf(meta);
    const id = this.nextId++;
    // Resolves when this checkpoint has read its captures out (or failed): a rescale that comes
    // after it in call order waits for that before moving key groups (see the gate fn below).
    let readOut!: () => void;
    const done = new Promise<void>((resolve) => { readOut = resolve; });
    const captured = m.gate(async () => {
      m.track(done);
      if (assignmentKey(m) !== this.assignmentSeen) {
        this.allFull = true;
        this.assignmentSeen = assignmentKey(m);
      }
      const plan = src.liveOperators().map((op) => {
        const chain = this.chains.get(op.name) ?? [];
        const base = chain[0];
        const full = this.allFull || !base ||
          (base.bytes > 0 && chainCost(chain) > this.maxDeltaRatio * base.bytes);
        return { op, full };
      });
      const incremental = plan.length > 0 && plan.every((p) => !p.full);
      const pending = src.pendingEntries();
      const shardCount = m.shardCount;
      // Each shard serializes its rows and holds the bytes in Wasm memory; they are read out in
      // chunks while writing, so the capture is all that holds up ingest.
      const all = plan.map((p) =>
        Promise.all(Array.from({ length: shardCount }, (_, s) =>
          m.call<CaptureInfo>(s, { op: 'capture', id: p.op.id, mode: p.full ? MODE_FULL : MODE_DELTA, keyGroups: m.keyGroups, mask: null }))));
      const lates = plan.map((p) => p.op.lateEvents());
      // Awaited below only when every capture succeeded; a failed capture must not leave them unhandled.
      for (const l of lates) l.catch(() => undefined);
      const states = plan.map((p) => ({ watermark: p.op.watermark, seq: p.op.seq }));
      const settled = await Promise.allSettled(all);
      const held = settled.map((r) => (r.status === 'fulfilled' ? r.value : []));
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        // Release what the other operators captured before failing the checkpoint.
        releaseCaptures(m, plan, held);
        throw failed.reason;
      }
      // The stall is the shards' own: each shard makes its operators' captures one after the
      // other, holding up its other requests meanwhile. Worker shards capture in parallel;
      // in-process shards one after the other, on the caller's thread. (Not the time since the
      // call, which counts whatever the caller's thread did before the answers came.)
      const perShard = Array.from({ length: shardCount }, (_, s) => held.reduce((a, ops) => a + ops[s]!.ms, 0));
      const stallMs = m.workers ? Math.max(0, ...perShard) : perShard.reduce((a, x) => a + x, 0);
      return { plan, incremental, pending, held, lates: await Promise.all(lates), states, shards: shardCount, assignment: Array.from(m.assign), stallMs };
    });
    // Dropped once settled: a failed checkpoint's error keeps this closure (through its stack), and
    // through `previous` it would keep every checkpoint before it that failed, without end.
    let previous: Promise<unknown> | null = this.tail;
    let previousFailed = false;
    const attempt = async (): Promise<CheckpointResult> => {
      let cap: Awaited<typeof captured>;
      try {
        cap = await captured;
      } catch (e) {
        this.allFull = true;
        readOut();
        throw wrap(e, `checkpoint ${id}: capture failed`);
      }
      const plan = cap.plan;
      try {
        await completeCaptures(m, plan, cap.held);
        await openings;
        await previous!.catch(() => { previousFailed = true; });
        previous = null;
        if (previousFailed && !plan.every((p) => p.full)) {
          throw new CairnError('unavailable', `checkpoint ${id}: the previous checkpoint failed, so this one has no valid parent; the next checkpoint will be a full one`);
        }
        return await this.write(m, id, plan, cap, cap.pending, metaJson, cap.incremental, t0);
      } catch (e) {
        this.allFull = true;
        throw e instanceof CairnError && e.message.startsWith(`checkpoint ${id}`) ? e : wrap(e, `checkpoint ${id} failed`);
      } finally {
        // Whatever happened, the shards may drop the captured bytes now.
        releaseCaptures(m, plan, cap.held);
        readOut();
      }
    };
    const run = (async (): Promise<CheckpointResult> => {
      try {
        return await attempt();
      } catch (e) {
        // Checkpoints settle in id order: one that failed before its turn (at capture, say) waits
        // for the one before it, so no later checkpoint writes while an earlier one still does, and
        // the next one is a full base even when that earlier one succeeds meanwhile.
        if (previous !== null) await previous.catch(() => undefined);
        this.allFull = true;
        throw e;
      } finally {
        previous = null;
      }
    })();
    this.tail = run;
    return run;
  }

  private async write(
    m: ShardManager,
    id: number,
    plan: { op: CheckpointOperator; full: boolean }[],
    cap: { held: CaptureInfo[][]; lates: bigint[]; states: { watermark: bigint; seq: bigint }[]; shards: number; assignment: number[]; stallMs: number },
    pending: OperatorEntry[],
    meta: unknown,
    incremental: boolean,
    t0: number,
  ): Promise<CheckpointResult> {
    // A backend that found another writer writes nothing more (not even data files it would orphan).
    if (this.fenced !== null) await this.checkSoleWriter(id);
    let written = 0;
    let files = 0;
    const entries: OperatorEntry[] = [];
    const jobs: (() => Promise<void>)[] = [];
    const layers: Layer[] = plan.map((p, i) => {
      const layer: Layer = { checkpointId: id, full: p.full, files: [], bytes: 0 };
      cap.held[i]!.forEach((c, shard) => {
        // An empty delta (header only: no rows, no tombstones) needs no file.
        if (!p.full && c.length === SNAPSHOT_HEADER_BYTES) return;
        const name = dataFileName(p.op.name, id, shard, this.writer);
        const ref: DataFileRef = { name, shard, bytes: 0, crc32c: 0 };
        layer.files.push(ref);
        const read = (offset: number, length: number) =>
          m.call<Uint8Array>(shard, { op: 'snapRead', id: p.op.id, token: c.token, offset, length });
        jobs.push(async () => {
          const { bytes: stored, crc32c: crc } = await encodeChunkedWithCrc(c.length, read, this.codec, { shuffle: true, chunkBytes: CHECKPOINT_CHUNK_BYTES });
          ref.bytes = stored.length;
          ref.crc32c = crc;
          await this.storage.put(name, stored);
          written += stored.length;
          files++;
        });
      });
      return layer;
    });
    await runBounded(jobs, WRITE_CONCURRENCY_MAX);
    plan.forEach((p, i) => {
      const layer = layers[i]!;
      layer.bytes = layer.files.reduce((a, f) => a + f.bytes, 0);
      // Chains are read now, after every earlier checkpoint was adopted, not at capture time.
      const prior = this.chains.get(p.op.name) ?? [];
      const chain = p.full ? [layer] : layer.files.length ? [...prior, layer] : prior;
      entries.push({
        name: p.op.name,
        spec: p.op.spec,
        watermark: String(cap.states[i]!.watermark),
        lateEvents: String(cap.lates[i]!),
        seq: String(cap.states[i]!.seq),
        chain,
      });
    });
    const manifest: Manifest = {
      format: MANIFEST_FORMAT_VERSION,
      id,
      parent: this.last ? this.last.id : null,
      incremental,
      keyGroups: cap.assignment.length,
      shards: cap.shards,
      assignment: cap.assignment,
      operators: [...entries, ...pending],
      meta,
    };
    const mbytes = encodeManifest(manifest);
    await this.checkSoleWriter(id);
    // Checkpoints write in id order (each waits for the one before it), so ids are claimed in order.
    invariant(id > this.lastClaimed, `checkpoint ${id} written after checkpoint ${this.lastClaimed}`);
    // Claimed before the put: a put that fails after storing the file must not look foreign later.
    for (let x = this.lastClaimed + 1; x < id; x++) {
      this.skipped.add(x);
      if (this.skipped.size > SKIPPED_IDS_MAX) this.skipped.delete(this.skipped.values().next().value!);
    }
    this.lastClaimed = id;
    const print = fingerprintOf(mbytes);
    try {
      await this.storage.put(manifestName(id), mbytes);
    } catch (e) {
      // Stored or not, we cannot tell: a manifest of this id listed later is ours only if it holds our bytes.
      this.uncertain.set(id, print);
      if (this.uncertain.size > SKIPPED_IDS_MAX) this.uncertain.delete(this.uncertain.keys().next().value!);
      throw e;
    }
    this.lastWritten = { id, ...print };
    written += mbytes.length;
    files++;
    // The checkpoint now exists: adopt its chains.
    this.last = manifest;
    this.cache.set(id, manifest);
    for (const e of entries) this.chains.set(e.name, e.chain);
    this.allFull = false;
    await this.applyRetention();
    return { id, incremental, bytes: written, files, durationMs: performance.now() - t0, stallMs: cap.stallMs };
  }

  /**
   * Fails checkpoint `id` (and, from then on, every later one) when another writer checkpoints to
   * this storage: a manifest from this coordinator's first id on that it did not write (another
   * backend's, which took its ids from the same storage), its own last manifest replaced by another
   * valid one or gone, or another valid manifest under an id whose put by this coordinator failed.
   * Run just before the manifest put, so a backend that finds the other neither writes its manifest
   * nor runs retention, which would delete the other's checkpoints as off its history (data files
   * cannot collide: their names carry the writer token). Without a conditional put in the storage
   * contract this is a check, not a lock: two writers that both check before either puts the same
   * id's manifest both go on, and the later put replaces the earlier (whose writer fails at its next
   * checkpoint). With tiered storage the read-back goes to the durable tier once the manifest was
   * copied there (another host's tier sees only that one). Storage that cannot be listed or read
   * now skips the check (the writes would most likely fail anyway).
   */
  private async checkSoleWriter(id: number): Promise<void> {
    const refuse = (reason: string): CairnError => new CairnError('unavailable',
      `checkpoint ${id}: another writer is checkpointing to this storage (${reason}); this backend writes no more ` +
      'checkpoints to it, so as not to delete or overwrite the other\'s (retrying does not help: restart from a checkpoint). ' +
      'Keep one writer per storage (is the old process of a failover still running?)');
    if (this.fenced !== null) throw refuse(this.fenced);
    const tiered = this.storage instanceof TieredCheckpointStorage ? this.storage : null;
    let names: string[];
    try {
      names = await this.storage.list('manifests/');
    } catch {
      if (!tiered) return;
      try {
        names = await tiered.listFrom('local', 'manifests/');
      } catch {
        return;
      }
    }
    const ids = names.map(manifestIdOf).filter((x): x is number => x !== null);
    const foreign = ids.find((x) => x >= this.firstId && (x > this.lastClaimed || this.skipped.has(x)));
    let reason = foreign === undefined ? null : `found ${manifestName(foreign)}, which this backend did not write`;
    /** What manifest `name` holds now: ours (the fingerprint matches), another valid one, or neither (damaged, unreadable). */
    const holds = async (name: string, mine: Fingerprint): Promise<'ours' | 'other' | 'missing' | 'unknown'> => {
      try {
        const reader = tiered?.isDurable(name) ? tiered.durable : this.storage;
        const now = await reader.get(name);
        // A damaged copy is not another writer's, nor known to be ours (restore deals with that).
        if (!isValidManifest(now, name)) return 'unknown';
        return sameFingerprint(now, mine) ? 'ours' : 'other';
      } catch (e) {
        return e instanceof CairnError && isNotFound(e) ? 'missing' : 'unknown';
      }
    };
    const last = this.lastWritten;
    if (reason === null && last) {
      const name = manifestName(last.id);
      const now = await holds(name, last);
      if (now === 'other') reason = `${name}, which this backend wrote, was replaced`;
      else if (now === 'missing' && !ids.includes(last.id)) reason = `${name}, which this backend wrote last, was deleted`;
    }
    // A manifest whose put failed, listed now: ours if it holds what we put (the put stored it after
    // all) or is damaged (torn by the failure); another writer's if it is another valid one.
    for (const x of reason === null ? ids : []) {
      const tried = this.uncertain.get(x);
      if (tried === undefined) continue;
      const now = await holds(manifestName(x), tried);
      if (now === 'ours') this.uncertain.delete(x);
      else if (now === 'other') reason = `${manifestName(x)}, whose put by this backend failed, holds another backend's manifest`;
      if (reason !== null) break;
    }
    if (reason !== null) {
      this.fenced = reason;
      throw refuse(reason);
    }
  }

  /**
   * Keeps the newest `retain` checkpoints of the current history (the checkpoint just written and
   * its ancestors, by `parent`), then deletes every other manifest and every data file no kept
   * manifest references (reference counting over manifests). A checkpoint off that history (newer
   * ones left behind by a restore of an older checkpoint, older ones of an unrelated history, a
   * manifest torn by a failed put) is deleted, so no later restore falls back onto it; this holds
   * across restarts, since it is read from the manifests. Retention failures never fail the
   * checkpoint that was just written: leftovers are collected the next time. With tiered storage
   * it also keeps the newest checkpoint of the history whose manifest and data files are all in
   * the durable tier (durableAnchor), so that the durable tier always holds a whole checkpoint once
   * it has held one, even while copies of newer ones are queued or failing.
   */
  async applyRetention(): Promise<void> {
    const tiered = this.storage instanceof TieredCheckpointStorage ? this.storage : null;
    // A file of a live chain that never reached the durable tier would leave every later delta
    // of that chain incomplete there: the next checkpoint writes new full bases instead.
    if (tiered && [...this.chains.values()].some((c) => c.some((l) => l.files.some((f) => tiered.copyFailed(f.name))))) this.allFull = true;
    const head = this.last;
    if (!head) return;
    try {
      // With tiered storage, retention works on both tiers while the durable one can be listed, and
      // on the local tier alone while it cannot (an outage): local stays bounded, and the durable
      // tier, untouched, keeps what it holds until a later round can see it.
      let localOnly = false;
      let names: string[];
      try {
        names = await this.storage.list('manifests/');
      } catch (e) {
        if (!tiered) throw e;
        names = await tiered.listFrom('local', 'manifests/');
        localOnly = true;
      }
      const ids = names.map(manifestIdOf).filter((x): x is number => x !== null);
      const newestFirst = [...ids].sort((a, b) => b - a);
      /** The newest listed checkpoint at or below `id`. */
      const atOrBelow = (id: number): number | undefined => newestFirst.find((x) => x <= id);
      // The current history, newest first, by parent links. Where a parent is gone (an earlier
      // round deleted it) or does not verify, the history goes on at the newest checkpoint below
      // it: every checkpoint of another history newer than a restore point was deleted while that
      // restore point still existed (drops go newest first). One that cannot be read now (storage
      // trouble) stops retention for this round.
      const history: Manifest[] = [];
      for (let m: Manifest | undefined = head; m !== undefined; ) {
        history.push(m);
        let id = m.parent === null ? undefined : atOrBelow(m.parent);
        m = undefined;
        while (id !== undefined && m === undefined) {
          m = this.cache.get(id);
          if (m) break;
          try {
            m = await readManifest(this.storage, id);
            this.cache.set(id, m);
          } catch (e) {
            if (!(e instanceof CairnError && e.kind === 'corruption')) return;
            // One bad read is not damage yet (a bit flipped on the way, a short read): only a
            // manifest that reads bad twice is taken for damaged, and so dropped from the history.
            try {
              m = await readManifest(this.storage, id);
              this.cache.set(id, m);
              break;
            } catch (again) {
              if (!(again instanceof CairnError && again.kind === 'corruption')) return;
            }
            id = atOrBelow(id - 1);
          }
        }
      }
      const kept = history.slice(0, this.retain);
      if (tiered) {
        const found = await this.durableAnchor(tiered, history);
        if (found.anchor && !kept.includes(found.anchor)) kept.push(found.anchor);
        localOnly ||= !found.listed;
      }
      const keptIds = new Set(kept.map((m) => m.id));
      // Never one newer than the checkpoint just written (only another writer could have made it).
      const drop = ids.filter((id) => !keptIds.has(id) && id < head.id).sort((a, b) => b - a);
      // A durable delete is queued, not awaited: an unreachable durable tier never holds up a checkpoint.
      const remove = (name: string): Promise<void> =>
        !tiered ? this.storage.delete(name) : localOnly ? tiered.local.delete(name) : tiered.deleteLater(name);
      // One failed delete does not end the round (under steady errors, leftovers would then pile up
      // faster than rounds remove them); but data files go only once every dropped manifest has, so
      // no manifest is left naming deleted files.
      let manifestsLeft = false;
      for (const id of drop) {
        try {
          await remove(manifestName(id));
          this.cache.delete(id);
        } catch {
          manifestsLeft = true;
        }
      }
      if (manifestsLeft) return;
      const referenced = new Set<string>();
      for (const m of kept) for (const f of referencedFiles(m)) referenced.add(f.name);
      const data = tiered && localOnly ? await tiered.listFrom('local', 'data/') : await this.storage.list('data/');
      for (const name of data) {
        if (!referenced.has(name) && (dataFileIdOf(name) ?? 0) <= head.id) await remove(name).catch(() => undefined);
      }
    } catch {
      // Storage trouble during clean-up: leftovers are deleted by a later checkpoint.
    }
  }

  /**
   * The newest checkpoint of `history` (newest first) whose manifest and every data file it
   * references are in the durable tier: copied through this instance, or listed there (so also
   * after a restart), and no delete of it queued. Null when there is none. `listed` is false when
   * the durable tier could not be listed (the anchor then comes from this instance's copies alone).
   */
  private async durableAnchor(tiered: TieredCheckpointStorage, history: Manifest[]): Promise<{ anchor: Manifest | null; listed: boolean }> {
    let listed = new Set<string>();
    let listedOk = true;
    try {
      listed = new Set([...await tiered.durable.list('manifests/'), ...await tiered.durable.list('data/')]);
    } catch {
      listedOk = false;
    }
    const durable = (name: string) => !tiered.deletePending(name) && (tiered.isDurable(name) || listed.has(name));
    const anchor = history.find((m) => durable(manifestName(m.id)) && referencedFiles(m).every((f) => durable(f.name))) ?? null;
    return { anchor, listed: listedOk };
  }

  /** Marks every operator for a full base at the next checkpoint. */
  forceFull(): void {
    this.allFull = true;
  }

  /** Waits for checkpoints in progress. */
  async drain(): Promise<void> {
    await this.tail.catch(() => undefined);
  }
}

function assignmentKey(m: ShardManager): string {
  return `${m.epoch}`;
}

/** Bytes of a snapshot header (assembly/snapshot.ts SNAP_HEADER_BYTES): a capture of exactly this
 * length has no rows and no tombstones. */
const SNAPSHOT_HEADER_BYTES = 64;

/** Runs jobs `limit` at a time; after the first failure no further job starts. */
async function runBounded(jobs: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const failures: unknown[] = [];
  const workers = Array.from({ length: Math.min(limit, jobs.length) }, async () => {
    while (next < jobs.length && failures.length === 0) {
      try {
        await jobs[next++]!();
      } catch (e) {
        failures.push(e);
      }
    }
  });
  // After the first failure no job starts, and every job already started settles before this
  // throws: a put still running once its checkpoint has failed (and close() has returned) could
  // land later on a file of the same name, written by a later backend that took the same id.
  await Promise.all(workers);
  if (failures.length > 0) throw failures[0];
}

function isValidManifest(bytes: Uint8Array, name: string): boolean {
  try {
    decodeManifest(bytes, name);
    return true;
  } catch {
    return false;
  }
}

/** A manifest as written, for telling it from another later: its length and its JSON's CRC-32C (bytes 8-11). */
interface Fingerprint {
  bytes: number;
  crc: number;
}

function fingerprintOf(manifest: Uint8Array): Fingerprint {
  return { bytes: manifest.length, crc: new DataView(manifest.buffer, manifest.byteOffset, manifest.byteLength).getUint32(8, true) };
}

function sameFingerprint(now: Uint8Array, f: Fingerprint): boolean {
  return now.length === f.bytes && now.length >= 12 && fingerprintOf(now).crc === f.crc;
}

function wrap(e: unknown, what: string): CairnError {
  if (e instanceof CairnError) return new CairnError(e.kind === 'invalid' ? 'unavailable' : e.kind, `${what}: ${e.message}`, { cause: e });
  return new CairnError('unavailable', `${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

/**
 * Completes the full captures of a checkpoint after its cut, a step at a time, so that other work
 * (ingest calls) runs in between: a worker shard queues each step behind the requests sent before
 * it, an in-process shard runs it at the event loop's next turn or after the next request (see
 * LocalShard). Rows an ingest changes meanwhile were copied before the change.
 */
/** Lets the shards drop captured bytes (best effort: a shard that is gone has dropped them). */
function releaseCaptures(m: ShardManager, plan: { op: CheckpointOperator }[], held: CaptureInfo[][]): void {
  held.forEach((perShard, i) => perShard.forEach((c, s) => {
    m.call(s, { op: 'snapRelease', id: plan[i]!.op.id, token: c.token }).catch(() => undefined);
  }));
}

/**
 * Copies out the pages that full captures left pending at their cut, a step of CAPTURE_STEP_PAGES
 * at a time per shard. Every step must leave fewer pages (it copies at least one of those left, and
 * ingest in between only copies more), so the loop is bounded by the pending count; a step that
 * does not is a broken invariant, reported as `internal` (the checkpoint fails and the next one is
 * a full base) instead of spinning. Exported for tests.
 */
export async function completeCaptures(m: Pick<ShardManager, 'call'>, plan: { op: Pick<CheckpointOperator, 'id' | 'name'> }[], held: CaptureInfo[][]): Promise<void> {
  await Promise.all(held.flatMap((perShard, i) => perShard.map(async (c, shard) => {
    let left = c.pending;
    while (left > 0) {
      const next = await m.call<number>(shard, { op: 'captureStep', id: plan[i]!.op.id, token: c.token, pages: CAPTURE_STEP_PAGES });
      if (!(next < left)) {
        throw new CairnError('internal', `capture of operator '${plan[i]!.op.name}' on shard ${shard} made no progress: expected fewer than ${left} pages left after a step, found ${next}`);
      }
      left = next;
    }
  })));
}

/** `meta` as the JSON value a manifest stores (null when absent); `invalid` when it is not JSON. */
function metaJsonOf(meta: unknown): unknown {
  if (meta === undefined) return null;
  let text: string | undefined;
  try {
    text = JSON.stringify(meta);
  } catch (e) {
    throw new CairnError('invalid', `checkpoint: meta must be a JSON value (${(e as Error).message})`, { cause: e });
  }
  if (text === undefined) throw new CairnError('invalid', `checkpoint: meta must be a JSON value, found ${typeof meta}`);
  return JSON.parse(text) as unknown;
}
