// Worker thread for the scaling bound in bench/shards.ts: one bare WasmCore, no SDK, no messages
// while it runs. It receives its pre-split slices once; 'prepare' makes a new instance (fresh
// memory) or keeps the one it has; 'run' ingests the slices into a new store, advancing the
// watermark after each, and answers with the time it took.
import { parentPort } from 'node:worker_threads';
import { WasmCore } from '../bindings/core.js';
import type { EncodedBatch, StoreConfig } from '../bindings/types.js';
import { runBound, type BoundInput } from './bound.js';

const port = parentPort;
if (!port) throw new Error('bound-worker.ts must run in a worker thread');

let input: BoundInput | null = null;
let core: WasmCore | null = null;

type Message =
  | { cmd: 'load'; cfg: StoreConfig; batches: EncodedBatch[]; watermarks: bigint[]; final: bigint }
  | { cmd: 'prepare'; fresh: boolean }
  | { cmd: 'run' };

port.on('message', (m: Message) => {
  if (m.cmd === 'load') {
    input = { cfg: m.cfg, batches: m.batches, watermarks: m.watermarks, final: m.final };
    port.postMessage(0);
    return;
  }
  if (m.cmd === 'prepare') {
    // Untimed, as the 1-thread contender's prepare: a new instance for fresh memory.
    if (m.fresh || !core) core = new WasmCore();
    port.postMessage(0);
    return;
  }
  if (!input || !core) throw new Error('bound-worker: run before load and prepare');
  port.postMessage(runBound(core, input));
});
