/**
 * Block codecs for checkpoint bytes. A codec compresses one bounded block (at most
 * CODEC_INPUT_BYTES_MAX bytes); `chunked.ts` splits whole files into such blocks.
 *
 * A codec's `name` names its on-disk format, not its implementation: both zstd codecs are named
 * 'zstd' because both write standard zstd frames with a declared content size, and each reads what
 * the other wrote. Decompression of bytes that do not verify is a CairnError 'corruption', never a
 * crash: frame headers are checked before any decoder sees them (see zstd-frame.ts).
 */
import { createRequire } from 'node:module';
import * as zlib from 'node:zlib';
import { CairnError } from '../errors.js';
import { checkEmptyZstdFrame, checkZstdFrameHeader } from './zstd-frame.js';

const MiB = 1024 * 1024;

/**
 * The largest block a codec accepts, raw or decompressed. zstd-codec runs in a fixed 16 MiB Wasm heap
 * and aborts on one call of 8 MiB or more; 4 MiB leaves room for its input copy, output and context.
 */
export const CODEC_INPUT_BYTES_MAX = 4 * MiB;

export const ZSTD_LEVEL_MIN = 1;
export const ZSTD_LEVEL_MAX = 19;
export const ZSTD_LEVEL_DEFAULT = 3;

export type CodecName = 'none' | 'zstd';
export const CODEC_NAMES: readonly CodecName[] = ['none', 'zstd'];

export interface Codec {
  /** The format written; codecs with the same name read each other's output. */
  readonly name: string;
  /** Compresses one block of at most CODEC_INPUT_BYTES_MAX bytes. The result may alias `raw`. */
  compress(raw: Uint8Array): Promise<Uint8Array>;
  /**
   * Decompresses one block that must hold exactly `rawBytes` bytes; anything else is 'corruption'.
   * The result may alias `frame`.
   */
  decompress(frame: Uint8Array, rawBytes: number): Promise<Uint8Array>;
}

function checkCompressInput(raw: Uint8Array, codec: string): void {
  if (raw.length > CODEC_INPUT_BYTES_MAX) {
    throw new CairnError(
      'invalid',
      `codec input too large: expected at most ${CODEC_INPUT_BYTES_MAX} bytes, found ${raw.length} (codec=${codec}; split input with encodeChunked)`,
    );
  }
}

function checkRawBytes(rawBytes: number, codec: string): void {
  if (!Number.isSafeInteger(rawBytes) || rawBytes < 0 || rawBytes > CODEC_INPUT_BYTES_MAX) {
    throw new CairnError(
      'invalid',
      `decompressed size: expected an integer in [0, ${CODEC_INPUT_BYTES_MAX}], found ${rawBytes} (codec=${codec})`,
    );
  }
}

function checkLevel(level: number): void {
  if (!Number.isInteger(level) || level < ZSTD_LEVEL_MIN || level > ZSTD_LEVEL_MAX) {
    throw new CairnError('invalid', `zstd level: expected an integer in [${ZSTD_LEVEL_MIN}, ${ZSTD_LEVEL_MAX}], found ${level}`);
  }
}

function checkDecompressedBytes(out: Uint8Array, rawBytes: number, codec: string): void {
  if (out.length !== rawBytes) {
    throw new CairnError('corruption', `decompressed size mismatch: expected ${rawBytes} bytes, found ${out.length} (codec=${codec})`);
  }
}

/** Views a Node Buffer as a plain Uint8Array without copying. */
function plainBytes(buffer: Uint8Array): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

// ---------------------------------------------------------------------------------------------------
// None

/** The identity codec: stored bytes are the raw bytes. */
export class NoneCodec implements Codec {
  readonly name = 'none';

  async compress(raw: Uint8Array): Promise<Uint8Array> {
    checkCompressInput(raw, this.name);
    return raw;
  }

  async decompress(frame: Uint8Array, rawBytes: number): Promise<Uint8Array> {
    checkRawBytes(rawBytes, this.name);
    checkDecompressedBytes(frame, rawBytes, this.name);
    return frame;
  }
}

// ---------------------------------------------------------------------------------------------------
// zstd-codec (Emscripten build of libzstd; works everywhere)

interface ZstdCodecSimple {
  compress(content: Uint8Array, level?: number): Uint8Array | null;
  decompress(frame: Uint8Array): Uint8Array | null;
}

interface ZstdCodecPackage {
  ZstdCodec: { run(callback: (zstd: { Simple: new () => ZstdCodecSimple }) => void): void };
}

let zstdCodecSimple: Promise<ZstdCodecSimple> | undefined;

/**
 * Instantiates zstd-codec once per process. Each `ZstdCodec.run` call builds a new Wasm instance with
 * its own 16 MiB heap, so every ZstdCodecJs shares this one. zstd-codec is CommonJS without types;
 * `createRequire` loads it the same way under Node and Deno.
 */
function loadZstdCodec(): Promise<ZstdCodecSimple> {
  zstdCodecSimple ??= new Promise<ZstdCodecSimple>((resolve, reject) => {
    try {
      const require = createRequire(import.meta.url);
      const pkg = require('zstd-codec') as ZstdCodecPackage;
      pkg.ZstdCodec.run((zstd) => resolve(new zstd.Simple()));
    } catch (e) {
      reject(new CairnError('unavailable', `zstd-codec failed to load: ${String(e)}`, { cause: e }));
    }
  });
  return zstdCodecSimple;
}

/** zstd over the `zstd-codec` package (Wasm). Calls are synchronous once the module is loaded. */
export class ZstdCodecJs implements Codec {
  readonly name = 'zstd';
  readonly level: number;

  constructor(options: { level?: number } = {}) {
    this.level = options.level ?? ZSTD_LEVEL_DEFAULT;
    checkLevel(this.level);
  }

  async compress(raw: Uint8Array): Promise<Uint8Array> {
    checkCompressInput(raw, this.name);
    const zstd = await loadZstdCodec();
    let frame: Uint8Array | null;
    try {
      frame = zstd.compress(raw, this.level);
    } catch (e) {
      throw new CairnError('internal', `zstd-codec compress threw: ${String(e)} (bytes=${raw.length})`, { cause: e });
    }
    if (frame === null) {
      throw new CairnError('internal', `zstd-codec compress: expected a frame, found null (bytes=${raw.length})`);
    }
    // Assert at the persistence boundary: readers rely on the declared content size.
    checkZstdFrameHeader(frame, raw.length, this.name);
    return frame;
  }

  async decompress(frame: Uint8Array, rawBytes: number): Promise<Uint8Array> {
    checkRawBytes(rawBytes, this.name);
    const header = checkZstdFrameHeader(frame, rawBytes, this.name);
    if (rawBytes === 0) {
      checkEmptyZstdFrame(frame, header, this.name);
      return new Uint8Array(0);
    }
    const zstd = await loadZstdCodec();
    let out: Uint8Array | null;
    try {
      // The header check bounds the output allocation by rawBytes <= CODEC_INPUT_BYTES_MAX; a damaged
      // body makes libzstd return an error code, which zstd-codec reports as null.
      out = zstd.decompress(frame);
    } catch (e) {
      throw new CairnError('corruption', `zstd frame does not decode: ${String(e)} (codec=${this.name})`, { cause: e });
    }
    if (out === null) {
      throw new CairnError('corruption', `zstd frame does not decode: expected ${rawBytes} bytes, found a decoder error (codec=${this.name})`);
    }
    checkDecompressedBytes(out, rawBytes, this.name);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------
// Native zstd (node:zlib, Deno 2 and Node >= 22.15)

interface NativeZstd {
  zstdCompressSync(buffer: Uint8Array, options: { pledgedSrcSize: number; chunkSize?: number; params: Record<number, number> }): Uint8Array;
  zstdDecompressSync(buffer: Uint8Array, options: { maxOutputLength: number; chunkSize?: number }): Uint8Array;
}

/** node:zlib's smallest output chunk is 64 bytes; this stays well clear of it. */
const OUTPUT_CHUNK_BYTES_MIN = 1024;

/** ZSTD_compressBound: the largest frame zstd writes for `bytes` of input. */
function zstdCompressBound(bytes: number): number {
  const small = bytes < 128 * 1024 ? (128 * 1024 - bytes) >>> 11 : 0;
  return Math.max(OUTPUT_CHUNK_BYTES_MIN, bytes + (bytes >>> 8) + small);
}

/** zlib.constants.ZSTD_c_compressionLevel; the fallback is libzstd's value of the enum. */
const ZSTD_C_COMPRESSION_LEVEL: number =
  (zlib.constants as unknown as Record<string, number | undefined>).ZSTD_c_compressionLevel ?? 100;

let nativeZstdProbe: NativeZstd | null | undefined;

function probeNativeZstd(): NativeZstd | null {
  const candidate = zlib as unknown as Partial<NativeZstd>;
  if (typeof candidate.zstdCompressSync !== 'function' || typeof candidate.zstdDecompressSync !== 'function') return null;
  const native = candidate as NativeZstd;
  try {
    // The runtime must honour pledgedSrcSize, or its frames would lack the content size readers need.
    const sample = new Uint8Array([1, 2, 3]);
    const frame = native.zstdCompressSync(sample, { pledgedSrcSize: sample.length, params: { [ZSTD_C_COMPRESSION_LEVEL]: 1 } });
    checkZstdFrameHeader(frame, sample.length, 'zstd');
    const back = native.zstdDecompressSync(frame, { maxOutputLength: sample.length });
    return back.length === 3 && back[0] === 1 && back[2] === 3 ? native : null;
  } catch {
    return null;
  }
}

function nativeZstd(): NativeZstd | null {
  if (nativeZstdProbe === undefined) nativeZstdProbe = probeNativeZstd();
  return nativeZstdProbe;
}

/** True when this runtime's node:zlib has zstd and writes frames that declare their content size. */
export function nativeZstdAvailable(): boolean {
  return nativeZstd() !== null;
}

/** zstd over the runtime's `node:zlib`. Construct it only when nativeZstdAvailable() is true. */
export class NativeZstdCodec implements Codec {
  readonly name = 'zstd';
  readonly level: number;
  readonly #zstd: NativeZstd;

  constructor(options: { level?: number } = {}) {
    const native = nativeZstd();
    if (native === null) {
      throw new CairnError('invalid', `native zstd: expected node:zlib zstdCompressSync with pledgedSrcSize, found none (check nativeZstdAvailable())`);
    }
    this.#zstd = native;
    this.level = options.level ?? ZSTD_LEVEL_DEFAULT;
    checkLevel(this.level);
  }

  async compress(raw: Uint8Array): Promise<Uint8Array> {
    checkCompressInput(raw, this.name);
    let frame: Uint8Array;
    try {
      frame = this.#zstd.zstdCompressSync(raw, {
        pledgedSrcSize: raw.length,
        // One output chunk for the whole frame: Deno 2.9's node:zlib appends a second, empty frame
        // when the output spans several chunks.
        chunkSize: zstdCompressBound(raw.length),
        params: { [ZSTD_C_COMPRESSION_LEVEL]: this.level },
      });
    } catch (e) {
      throw new CairnError('internal', `native zstd compress threw: ${String(e)} (bytes=${raw.length})`, { cause: e });
    }
    try {
      checkZstdFrameHeader(frame, raw.length, this.name);
    } catch (e) {
      throw new CairnError('internal', `native zstd wrote a frame that does not verify: ${String(e)} (bytes=${raw.length})`, { cause: e });
    }
    return plainBytes(frame);
  }

  async decompress(frame: Uint8Array, rawBytes: number): Promise<Uint8Array> {
    checkRawBytes(rawBytes, this.name);
    checkZstdFrameHeader(frame, rawBytes, this.name);
    let out: Uint8Array;
    try {
      // maxOutputLength bounds the allocation even if the body decodes to more than declared.
      out = this.#zstd.zstdDecompressSync(frame, { maxOutputLength: Math.max(1, rawBytes), chunkSize: Math.max(OUTPUT_CHUNK_BYTES_MIN, rawBytes) });
    } catch (e) {
      throw new CairnError('corruption', `zstd frame does not decode: ${String(e)} (codec=${this.name})`, { cause: e });
    }
    checkDecompressedBytes(out, rawBytes, this.name);
    return plainBytes(out);
  }
}

// ---------------------------------------------------------------------------------------------------
// Selection

let defaultZstd: Codec | undefined;
const NONE = new NoneCodec();

/**
 * The zstd implementation to use, chosen by measurement (bench/codec.ts: level 3, 16 MiB of column
 * data, 2-core machine, Deno 2.9.6): native zstd compressed 1.5-1.7x and decompressed 1.7-2.8x faster
 * than zstd-codec in the same runs (about 450 vs 270 MB/s and 870 vs 510 MB/s), at the same ratio
 * (5.1), so it is preferred wherever the runtime has it; Node 20 has only zstd-codec.
 */
export function defaultCodec(): Codec {
  defaultZstd ??= nativeZstdAvailable() ? new NativeZstdCodec() : new ZstdCodecJs();
  return defaultZstd;
}

/** The codec for a format name ('none' or 'zstd'); anything else is 'invalid'. */
export function codecByName(name: string): Codec {
  if (name === 'none') return NONE;
  if (name === 'zstd') return defaultCodec();
  throw new CairnError('invalid', `codec name: expected one of ${CODEC_NAMES.join(', ')}, found ${JSON.stringify(name)}`);
}
