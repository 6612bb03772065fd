// Checkpoints that keep failing (a storage outage, retried) must not hold memory without end. Each
// failed checkpoint's error kept, through its stack's closure, the checkpoint before it: heap grew by
// about 14 KB per failure with two operators until a checkpoint succeeded. Checked here with a weak
// reference to the first failure's error, which must be collectable once later failures dropped it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import v8 from 'node:v8';
import vm from 'node:vm';
import { StateBackend, MemoryCheckpointStorage, CairnError } from '../../src/index.js';
import { FaultyStorage } from '../../src/testing/index.js';

v8.setFlagsFromString('--expose-gc');
const gc = ((globalThis as { gc?: () => void }).gc ?? vm.runInNewContext('gc')) as () => void;

async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 0));
    gc();
  }
}

for (const workers of [false, true]) {
  test(`failed checkpoints do not keep the ones before them (${workers ? 'worker' : 'in-process'} shards)`, async () => {
    const faulty = new FaultyStorage(new MemoryCheckpointStorage(), { seed: 1 });
    const b = await StateBackend.open({ shards: 2, workers, checkpoints: { storage: faulty, retain: 2 } });
    try {
      const ops = ['a', 'b'].map((name) => b.aggregate(name, { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } }));
      for (const op of ops) await op.ingest({ k: BigInt64Array.from({ length: 1000 }, (_, i) => BigInt(i)) });
      await b.checkpoint();
      faulty.failAt(faulty.opCount, { kind: 'persistent', code: 'EIO' });
      let first: WeakRef<object> | null = null;
      for (let c = 1; c <= 30; c++) {
        for (const op of ops) await op.ingest({ k: BigInt64Array.from([BigInt(c)]) });
        const e = await b.checkpoint().then(() => null, (err: unknown) => err);
        assert.instance(e, CairnError, `checkpoint ${c} should fail while storage fails`);
        if (first === null) first = new WeakRef(e as object);
      }
      await collect();
      assert.is(first!.deref(), undefined, 'the first failed checkpoint is still held after 29 more failed');
      // And the state is whole once storage works again.
      faulty.heal();
      await b.checkpoint();
      const restored = await StateBackend.restore({ storage: faulty, shards: 1 });
      try {
        const again = restored.aggregate('a', { key: { field: 'k', type: 'int64' }, aggregates: { n: { fn: 'count' } } });
        assert.equal(await again.get(5n), { n: 2 });
        assert.equal(await again.get(999n), { n: 1 });
      } finally {
        await restored.close();
      }
    } finally {
      await b.close();
    }
  });
}

test.run();
