// Deterministic byte generators shared by the codec tests.
import { CairnError, type CairnErrorKind } from '../../src/errors.js';
import { mulberry32 } from '../../src/testing/faulty-storage.js';

/** Incompressible bytes from a seeded PRNG. */
export function noiseBytes(length: number, seed: number): Uint8Array {
  const random = mulberry32(seed);
  const out = new Uint8Array(length);
  const words = new Uint32Array(out.buffer, 0, length >>> 2);
  for (let i = 0; i < words.length; i++) words[i] = (random() * 4294967296) >>> 0;
  for (let i = words.length * 4; i < length; i++) out[i] = (random() * 256) >>> 0;
  return out;
}

/** Compressible bytes that still vary: little-endian increasing keys with small random steps. */
export function compressibleBytes(length: number, seed: number): Uint8Array {
  const random = mulberry32(seed);
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  let key = 1_000_000;
  let i = 0;
  for (; i + 8 <= length; i += 8) {
    key += 1 + Math.floor(random() * 16);
    view.setUint32(i, key >>> 0, true);
    view.setUint32(i + 4, Math.floor(key / 4294967296), true);
  }
  for (; i < length; i++) out[i] = i & 0xff;
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Awaits `run` and returns the CairnError it rejected with, failing unless it is of `kind`. */
export async function expectCairnError(run: () => Promise<unknown>, kind: CairnErrorKind): Promise<CairnError> {
  let result: unknown;
  try {
    result = await run();
  } catch (e) {
    if (!(e instanceof CairnError)) throw new Error(`expected a CairnError '${kind}', found ${String(e)}`, { cause: e });
    if (e.kind !== kind) throw new Error(`expected a CairnError '${kind}', found '${e.kind}': ${e.message}`, { cause: e });
    return e;
  }
  throw new Error(`expected a CairnError '${kind}', found success (${result instanceof Uint8Array ? `${result.length} bytes` : String(result)})`);
}

/** Text of skewed random words: much smaller at high zstd levels than at low ones. */
export function wordBytes(length: number, seed: number): Uint8Array {
  const random = mulberry32(seed);
  const words = ['alpha', 'beta', 'gamma', 'delta', 'window', 'key', 'sum', 'count', 'shard', 'state'];
  const out = new Uint8Array(length);
  let i = 0;
  while (i < length) {
    const word = words[Math.floor(random() * random() * words.length)] + (random() < 0.1 ? '\n' : ' ');
    for (let k = 0; k < word.length && i < length; k++) out[i++] = word.charCodeAt(k);
  }
  return out;
}
