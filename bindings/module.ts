/**
 * Loads and instantiates build/cairn.wasm in Node and Deno. The compiled module is cached per
 * process (and per worker), so each shard instantiation only allocates its own memory.
 */
import { readFileSync } from 'node:fs';
import { CairnError } from '../src/errors.js';
import type { CairnExports } from './exports.js';

let cached: WebAssembly.Module | undefined;

export function wasmPath(debug = false): URL {
  // dist/bindings/module.js -> build/cairn.wasm
  return new URL(debug ? '../../build/cairn.debug.wasm' : '../../build/cairn.wasm', import.meta.url);
}

export function compiledModule(): WebAssembly.Module {
  if (cached) return cached;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = new Uint8Array(readFileSync(wasmPath(process.env.CAIRN_WASM_DEBUG === "1")));
  } catch (e) {
    throw new CairnError('internal', `cairn.wasm not found at ${wasmPath().pathname}: run npm run build`, { cause: e });
  }
  cached = new WebAssembly.Module(bytes);
  return cached;
}

/**
 * Adopts a module compiled elsewhere (a worker receives the parent's): V8 shares one compiled
 * module between the threads that hold it, so a worker neither compiles it again nor starts over in
 * baseline code; every function optimized on one thread is optimized on all.
 */
export function adoptCompiledModule(m: WebAssembly.Module): void {
  cached = m;
}

export function instantiate(): CairnExports {
  let memory: WebAssembly.Memory | undefined;
  const imports = {
    env: {
      abort(msgPtr: number, filePtr: number, line: number, col: number): never {
        const text = (p: number): string => {
          if (!memory || p === 0) return '?';
          const len = new Uint32Array(memory.buffer, p - 4, 1)[0]! >>> 1;
          return String.fromCharCode(...new Uint16Array(memory.buffer, p, Math.min(len, 512)));
        };
        throw new CairnError('internal', `wasm assertion failed: ${text(msgPtr)} (${text(filePtr)}:${line}:${col})`);
      },
    },
  };
  const instance = new WebAssembly.Instance(compiledModule(), imports);
  const ex = instance.exports as unknown as CairnExports;
  memory = ex.memory;
  return ex;
}
