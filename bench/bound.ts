// The scaling bound of bench/shards.ts: what two shards on two cores can reach with nothing but
// Wasm work, so the SDK's figure can be read against it.
//
// The stream is split by shard before timing. "1 thread" ingests the whole stream into one store on
// the benchmark's thread; "2 threads" ingests each shard's slices into its own store on a bare
// worker thread, both started together, timed from posting the start to both answers (one message
// each way per worker, and the slower worker's work). Each batch is followed by a watermark advance,
// as in the SDK measurement. No routing, no per-batch messages and no output conversion are timed,
// and neither is creating a Wasm instance (untimed prepare, for both). Two memory states:
// - fresh: a new Wasm instance per round, so the store's memory is faulted in while timed (as in
//   the SDK measurement, where every round opens a new backend);
// - reused: one instance across rounds, each round a new store after the previous one closed, so
//   the memory is already faulted in (a long-running shard's steady state).
import { Worker } from 'node:worker_threads';
import { WasmCore } from '../bindings/core.js';
import type { EncodedBatch, StoreConfig } from '../bindings/types.js';
import type { Contender } from './report.js';

export interface BoundInput {
  cfg: StoreConfig;
  batches: EncodedBatch[];
  /** The watermark to advance to after each batch. */
  watermarks: bigint[];
  final: bigint;
}

/** Ingests every batch into a new store of `core`, advancing after each; closes the store. Returns ms. */
export function runBound(core: WasmCore, input: BoundInput): number {
  const h = core.openStore(input.cfg);
  let seq = 0n;
  const t0 = performance.now();
  for (let i = 0; i < input.batches.length; i++) {
    const b = input.batches[i]!;
    core.ingest(h, b, seq);
    seq += BigInt(b.n);
    core.advance(h, input.watermarks[i]!, input.cfg);
  }
  core.advance(h, input.final, input.cfg);
  const ms = performance.now() - t0;
  core.check(core.ex.storeClose(h), 'close');
  return ms;
}

/** The whole stream on this thread. */
export function boundOneThread(name: string, input: BoundInput, fresh: boolean): Contender {
  let core: WasmCore | null = null;
  return {
    name,
    prepare: () => {
      if (fresh || !core) core = new WasmCore();
    },
    run: () => ({ total: runBound(core!, input) }),
  };
}

/**
 * One bare worker per slice stream. `start` loads the workers (call it once before measuring),
 * `stop` ends them.
 */
export function boundWorkers(name: string, slices: BoundInput[], fresh: boolean): Contender & { start(): Promise<void>; stop(): Promise<void> } {
  let workers: Worker[] = [];
  const ask = (w: Worker, msg: unknown): Promise<number> =>
    new Promise((resolve, reject) => {
      const onError = (e: unknown) => reject(e);
      w.once('error', onError);
      w.once('message', (v: number) => {
        w.off('error', onError);
        resolve(v);
      });
      w.postMessage(msg);
    });
  return {
    name,
    start: async () => {
      workers = slices.map(() => new Worker(new URL('./bound-worker.js', import.meta.url)));
      await Promise.all(workers.map((w, i) => ask(w, { cmd: 'load', ...slices[i]! })));
    },
    prepare: async () => {
      await Promise.all(workers.map((w) => ask(w, { cmd: 'prepare', fresh })));
    },
    run: async () => {
      const t0 = performance.now();
      await Promise.all(workers.map((w) => ask(w, { cmd: 'run' })));
      return { total: performance.now() - t0 };
    },
    stop: async () => {
      await Promise.all(workers.map((w) => w.terminate()));
      workers = [];
    },
  };
}
