// Codec benchmark: compress and decompress throughput and compression ratio of every codec this
// runtime has (zstd-codec, native zstd where node:zlib has it, none), plus CRC-32C and the whole
// chunked container with the default codec, over ~16 MiB of realistic checkpoint column data.
// Speeds are also reported as ratios against zstd-codec measured in the same run, since absolute
// MB/s depend on the machine. Run directly (`node dist/bench/codec.js`, or with Deno) to print a
// table and write bench/results/codec-<runtime>.json; `benchCodec()` returns the same object.
import { isMain } from './report.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { decodeChunked, encodeChunked } from '../src/codec/chunked.js';
import {
  CODEC_INPUT_BYTES_MAX,
  type Codec,
  defaultCodec,
  NativeZstdCodec,
  nativeZstdAvailable,
  NoneCodec,
  ZstdCodecJs,
} from '../src/codec/codec.js';
import { crc32c } from '../src/codec/crc32c.js';
import { mulberry32 } from '../src/testing/faulty-storage.js';

const MiB = 1024 * 1024;
const DATA_BYTES = 16 * MiB;
const ITERATIONS = 5;

export interface CodecBenchRow {
  name: string;
  compressMBps: number;
  decompressMBps: number;
  /** raw bytes / stored bytes */
  ratio: number;
  compressVsZstdCodec: number;
  decompressVsZstdCodec: number;
}

export interface CodecBenchResult {
  runtime: string;
  runtimeVersion: string;
  dataBytes: number;
  data: string;
  codecs: CodecBenchRow[];
  /** Copying the data once (Uint8Array.slice), for scale. */
  memcpyMBps: number;
  crc32cMBps: number;
  chunked: { codec: string; encodeMBps: number; decodeMBps: number; ratio: number };
  defaultCodec: string;
}

/**
 * Three columns as a checkpoint stores them (one buffer after another): int64 keys, sorted with local
 * disorder; float64 sums with many repeats (cents, from a small set of amounts times counts); int64
 * counts, small and skewed.
 */
export function columnData(bytes: number, seed: number): Uint8Array {
  const rows = Math.floor(bytes / 24);
  const random = mulberry32(seed);
  const keys = new BigInt64Array(rows);
  const sums = new Float64Array(rows);
  const counts = new BigInt64Array(rows);
  let key = 1_700_000_000_000;
  for (let i = 0; i < rows; i++) {
    key += 1 + Math.floor(random() * 40);
    keys[i] = BigInt(random() < 0.05 ? key - Math.floor(random() * 500) : key);
    const count = 1 + Math.floor(random() * random() * 100);
    counts[i] = BigInt(count);
    sums[i] = (Math.floor(random() * random() * 200) * 25 * count) / 100;
  }
  const out = new Uint8Array(bytes);
  out.set(new Uint8Array(keys.buffer), 0);
  out.set(new Uint8Array(sums.buffer), rows * 8);
  out.set(new Uint8Array(counts.buffer), rows * 16);
  return out;
}

function runtimeName(): { runtime: string; version: string } {
  const deno = (globalThis as { Deno?: { version: { deno: string } } }).Deno;
  return deno ? { runtime: 'deno', version: deno.version.deno } : { runtime: 'node', version: process.versions.node };
}

async function compressAll(codec: Codec, raw: Uint8Array): Promise<Uint8Array[]> {
  const frames: Uint8Array[] = [];
  for (let at = 0; at < raw.length; at += CODEC_INPUT_BYTES_MAX) {
    frames.push(await codec.compress(raw.subarray(at, Math.min(raw.length, at + CODEC_INPUT_BYTES_MAX))));
  }
  return frames;
}

async function decompressAll(codec: Codec, frames: Uint8Array[], raw: Uint8Array): Promise<void> {
  let at = 0;
  for (const frame of frames) {
    const n = Math.min(CODEC_INPUT_BYTES_MAX, raw.length - at);
    const out = await codec.decompress(frame, n);
    if (out.length !== n) throw new Error(`bench: expected ${n} bytes, found ${out.length}`);
    at += n;
  }
}

/** Mean throughput in MB/s (10^6 bytes) of `bytes` processed per call, from tinybench. */
function mbps(bench: Bench, name: string, bytes: number): number {
  const task = bench.tasks.find((t) => t.name === name);
  const result = task?.result;
  if (result === undefined || result.state !== 'completed') throw new Error(`bench task ${name} did not complete: ${result?.state}`);
  return bytes / 1e6 / (result.latency.mean / 1000);
}

export async function benchCodec(): Promise<CodecBenchResult> {
  const raw = columnData(DATA_BYTES, 42);
  const codecs: [string, Codec][] = [['zstd-codec', new ZstdCodecJs()]];
  if (nativeZstdAvailable()) codecs.push(['native', new NativeZstdCodec()]);
  codecs.push(['none', new NoneCodec()]);

  const bench = new Bench({ iterations: ITERATIONS, time: 0, warmupIterations: 1, warmupTime: 0, throws: true });
  const storedBytes = new Map<string, number>();
  for (const [name, codec] of codecs) {
    const frames = await compressAll(codec, raw);
    storedBytes.set(name, frames.reduce((a, f) => a + f.length, 0));
    await decompressAll(codec, frames, raw); // verifies before timing
    bench.add(`${name} compress`, async () => void (await compressAll(codec, raw)));
    bench.add(`${name} decompress`, () => decompressAll(codec, frames, raw));
  }
  bench.add('memcpy', () => void raw.slice());
  bench.add('crc32c', () => void crc32c(raw));
  const chunkedCodec = defaultCodec();
  const encoded = await encodeChunked(raw, chunkedCodec);
  bench.add('chunked encode', async () => void (await encodeChunked(raw, chunkedCodec)));
  bench.add('chunked decode', async () => void (await decodeChunked(encoded, { file: 'bench' })));
  await bench.run();

  const baseCompress = mbps(bench, 'zstd-codec compress', raw.length);
  const baseDecompress = mbps(bench, 'zstd-codec decompress', raw.length);
  const { runtime, version } = runtimeName();
  return {
    runtime,
    runtimeVersion: version,
    dataBytes: raw.length,
    data: 'int64 sorted-ish keys | float64 sums with repeats | int64 skewed counts, one column after another',
    codecs: codecs.map(([name]) => {
      const c = mbps(bench, `${name} compress`, raw.length);
      const d = mbps(bench, `${name} decompress`, raw.length);
      return {
        name,
        compressMBps: round(c),
        decompressMBps: round(d),
        ratio: round(raw.length / storedBytes.get(name)!),
        compressVsZstdCodec: round(c / baseCompress),
        decompressVsZstdCodec: round(d / baseDecompress),
      };
    }),
    memcpyMBps: round(mbps(bench, 'memcpy', raw.length)),
    crc32cMBps: round(mbps(bench, 'crc32c', raw.length)),
    chunked: {
      codec: chunkedCodec instanceof NativeZstdCodec ? 'native' : chunkedCodec instanceof ZstdCodecJs ? 'zstd-codec' : chunkedCodec.name,
      encodeMBps: round(mbps(bench, 'chunked encode', raw.length)),
      decodeMBps: round(mbps(bench, 'chunked decode', raw.length)),
      ratio: round(raw.length / encoded.length),
    },
    defaultCodec: chunkedCodec instanceof NativeZstdCodec ? 'native' : 'zstd-codec',
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function printTable(r: CodecBenchResult): void {
  const pad = (s: string | number, n: number) => String(s).padStart(n);
  console.log(`codec bench: ${r.runtime} ${r.runtimeVersion}, ${(r.dataBytes / MiB).toFixed(0)} MiB of column data`);
  console.log(`${'codec'.padEnd(12)}${pad('comp MB/s', 11)}${pad('decomp MB/s', 13)}${pad('ratio', 8)}${pad('comp x', 9)}${pad('decomp x', 10)}`);
  for (const c of r.codecs) {
    if (c.name === 'none') {
      console.log(`${'none'.padEnd(12)}${pad('-', 11)}${pad('-', 13)}${pad(c.ratio, 8)}   (identity: returns its input, no copy)`);
      continue;
    }
    console.log(
      `${c.name.padEnd(12)}${pad(c.compressMBps, 11)}${pad(c.decompressMBps, 13)}${pad(c.ratio, 8)}${pad(c.compressVsZstdCodec, 9)}${pad(c.decompressVsZstdCodec, 10)}`,
    );
  }
  console.log(`crc32c: ${r.crc32cMBps} MB/s; memcpy: ${r.memcpyMBps} MB/s`);
  console.log(`chunked (${r.chunked.codec}): encode ${r.chunked.encodeMBps} MB/s, decode ${r.chunked.decodeMBps} MB/s, ratio ${r.chunked.ratio}`);
  console.log(`(x = speed relative to zstd-codec in this run)`);
}

if (isMain(import.meta.url)) {
  const result = await benchCodec();
  printTable(result);
  const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}codec-${result.runtime}.json`;
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  console.log(`wrote ${file}`);
}
