/**
 * An in-memory CheckpointStorage for tests and single-process use. Bytes are copied on put and on get,
 * so neither the writer nor a reader can change what is stored.
 */
import { type CheckpointStorage, notFound, validateName, validatePrefix } from './storage.js';

export class MemoryCheckpointStorage implements CheckpointStorage {
  readonly #objects = new Map<string, Uint8Array>();

  async put(name: string, bytes: Uint8Array): Promise<void> {
    validateName(name);
    this.#objects.set(name, bytes.slice());
  }

  async get(name: string): Promise<Uint8Array> {
    validateName(name);
    const bytes = this.#objects.get(name);
    if (bytes === undefined) throw notFound(name, 'memory');
    return bytes.slice();
  }

  async list(prefix: string): Promise<string[]> {
    validatePrefix(prefix);
    const names: string[] = [];
    for (const name of this.#objects.keys()) if (name.startsWith(prefix)) names.push(name);
    return names.sort();
  }

  async delete(name: string): Promise<void> {
    validateName(name);
    this.#objects.delete(name);
  }
}
