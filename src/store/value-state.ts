/** Value state: an opaque byte value per key, held in Wasm memory, for engines whose state is not an aggregate. */
import { CairnError } from '../errors.js';
import { encodeKey } from './batch.js';
import type { NormalizedSpec } from './spec.js';
import type { OperatorHost } from './aggregate-operator.js';

/** Largest value `put` takes, in bytes (64 MiB); larger is `invalid`. */
export const VALUE_BYTES_MAX = 64 * 1024 * 1024;

/**
 * Per key an opaque byte value, held in Wasm memory on the key's shard, checkpointed and restored
 * like aggregates. Declared with `backend.values(name, { key: { type } })`. Calls take effect in
 * call order; values are copied in and out (a caller's array is never kept or handed out).
 */
export class ValueState {
  constructor(readonly name: string, readonly id: number, readonly spec: NormalizedSpec, private readonly host: OperatorHost) {}

  /** Sets the value of `key` (a copy of `value`, at most VALUE_BYTES_MAX bytes). */
  async put(key: string | number | bigint, value: Uint8Array): Promise<void> {
    this.host.assertOpen();
    if (!(value instanceof Uint8Array)) throw new CairnError('invalid', `put: value must be a Uint8Array, found ${typeof value}`);
    if (value.length > VALUE_BYTES_MAX) throw new CairnError('invalid', `put: value of ${value.length} bytes exceeds VALUE_BYTES_MAX ${VALUE_BYTES_MAX}`);
    const k = encodeKey(key, this.spec.keyType);
    const m = this.host.manager;
    const copy = value.slice();
    return this.host.guarded(m.gate(async () => { await m.call(m.shardOfKey(k), { op: 'vput', id: this.id, key: k, value: copy }); }));
  }

  /** A copy of the value of `key`, or undefined when it has none. */
  async get(key: string | number | bigint): Promise<Uint8Array | undefined> {
    this.host.assertOpen();
    const k = encodeKey(key, this.spec.keyType);
    const m = this.host.manager;
    return this.host.guarded(m.gate(async () => (await m.call<Uint8Array | null>(m.shardOfKey(k), { op: 'vget', id: this.id, key: k })) ?? undefined));
  }

  /** Removes `key`; true when it had a value. */
  async delete(key: string | number | bigint): Promise<boolean> {
    this.host.assertOpen();
    const k = encodeKey(key, this.spec.keyType);
    const m = this.host.manager;
    return this.host.guarded(m.gate(() => m.call<boolean>(m.shardOfKey(k), { op: 'delete', id: this.id, key: k })));
  }
}
