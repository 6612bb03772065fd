/** Value state: an opaque byte value per key, held in Wasm memory, for engines whose state is not an aggregate. */
import { CairnError } from '../errors.js';
import { encodeKey } from './batch.js';
import type { NormalizedSpec } from './spec.js';
import type { OperatorHost } from './aggregate-operator.js';

export const VALUE_BYTES_MAX = 64 * 1024 * 1024;

export class ValueState {
  constructor(readonly name: string, readonly id: number, readonly spec: NormalizedSpec, private readonly host: OperatorHost) {}

  async put(key: string | number | bigint, value: Uint8Array): Promise<void> {
    this.host.assertOpen();
    if (!(value instanceof Uint8Array)) throw new CairnError('invalid', `put: value must be a Uint8Array, found ${typeof value}`);
    if (value.length > VALUE_BYTES_MAX) throw new CairnError('invalid', `put: value of ${value.length} bytes exceeds VALUE_BYTES_MAX ${VALUE_BYTES_MAX}`);
    const k = encodeKey(key, this.spec.keyType);
    const m = this.host.manager;
    const copy = value.slice();
    return this.host.guarded(m.gate(async () => { await m.call(m.shardOfKey(k), { op: 'vput', id: this.id, key: k, value: copy }); }));
  }

  async get(key: string | number | bigint): Promise<Uint8Array | undefined> {
    this.host.assertOpen();
    const k = encodeKey(key, this.spec.keyType);
    const m = this.host.manager;
    return this.host.guarded(m.gate(async () => (await m.call<Uint8Array | null>(m.shardOfKey(k), { op: 'vget', id: this.id, key: k })) ?? undefined));
  }

  async delete(key: string | number | bigint): Promise<boolean> {
    this.host.assertOpen();
    const k = encodeKey(key, this.spec.keyType);
    const m = this.host.manager;
    return this.host.guarded(m.gate(() => m.call<boolean>(m.shardOfKey(k), { op: 'delete', id: this.id, key: k })));
  }
}
