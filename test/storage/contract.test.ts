// Runs the one CheckpointStorage contract (contract.ts) against every implementation: memory, the
// file-system store on a real temp directory and on the simulated file system, tiered stores
// (memory+memory and fs+memory, each checked after flushing too), and FaultyStorage with no faults.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsCheckpointStorage } from '../../src/storage/fs.js';
import { MemoryCheckpointStorage } from '../../src/storage/memory.js';
import type { CheckpointStorage } from '../../src/storage/storage.js';
import { TieredCheckpointStorage } from '../../src/storage/tiered.js';
import { FaultyStorage } from '../../src/testing/faulty-storage.js';
import { SimulatedFs } from '../../src/testing/simulated-fs.js';
import { storageContract } from './contract.js';

async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-storage-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Wraps a tiered store so every call first waits for pending copies: the durable side is then checked too. */
function flushing(tiered: TieredCheckpointStorage): CheckpointStorage {
  return {
    put: async (n, b) => {
      await tiered.put(n, b);
      await tiered.flush();
    },
    get: (n) => tiered.get(n),
    list: (p) => tiered.list(p),
    delete: (n) => tiered.delete(n),
  };
}

storageContract('memory', async () => ({ storage: new MemoryCheckpointStorage() }));

storageContract('fs (real temp dir)', async () => {
  const { dir, cleanup } = await tempDir();
  return { storage: new FsCheckpointStorage(join(dir, 'store')), cleanup };
});

storageContract('fs (simulated)', async () => ({ storage: new FsCheckpointStorage('/data/store', { fs: new SimulatedFs() }) }));

storageContract('tiered memory+memory', async () => ({
  storage: new TieredCheckpointStorage({ local: new MemoryCheckpointStorage(), durable: new MemoryCheckpointStorage() }),
}));

storageContract('tiered memory+memory, flushed', async () => ({
  storage: flushing(new TieredCheckpointStorage({ local: new MemoryCheckpointStorage(), durable: new MemoryCheckpointStorage() })),
}));

storageContract('tiered fs+memory', async () => {
  const { dir, cleanup } = await tempDir();
  const tiered = new TieredCheckpointStorage({ local: new FsCheckpointStorage(dir), durable: new MemoryCheckpointStorage() });
  return {
    storage: tiered,
    cleanup: async () => {
      await tiered.flush();
      await cleanup();
    },
  };
});

storageContract('faulty (no faults) over memory', async () => ({ storage: new FaultyStorage(new MemoryCheckpointStorage(), { seed: 1 }) }));
