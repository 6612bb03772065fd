/**
 * The chunked container: the self-describing, checksummed byte format of every checkpoint data file.
 *
 * Format version 1. All integers are little endian. Offsets are from the start of the file.
 *
 *   Header, 11 bytes:
 *     [0, 8)    magic          "CAIRNCK1" (ASCII)
 *     [8, 10)   version        u16, 1
 *     [10, 11)  codec id       u8: bits 0-3 the codec: 0 = none (stored bytes are the raw bytes),
 *                              1 = zstd (each chunk's stored bytes are one standard zstd frame that
 *                              declares its content size); bit 4 the shuffle filter: each chunk's raw
 *                              bytes were byte-transposed in 8-byte lanes before the codec (byte k of
 *                              lane i moved to k * lanes + i; a tail of rawLen % 8 bytes stays put),
 *                              which puts the like bytes of 8-byte numbers together for the codec;
 *                              bits 5-7 zero
 *   Chunks, chunkCount times, back to back from offset 11; each is 12 bytes of chunk header and then
 *   the stored bytes:
 *     [+0, +4)  rawLen         u32, 1 ..= CHUNK_RAW_BYTES_MAX (4 MiB); the encoder cuts the raw input
 *                              into pieces of its chunk size (4 MiB by default, 512 KiB for checkpoint
 *                              data), so every chunk but the last has the same rawLen
 *     [+4, +8)  storedLen      u32, 1 ..= CHUNK_STORED_BYTES_MAX (4 MiB + 64 KiB)
 *     [+8, +12) storedCrc      u32, CRC-32C (Castagnoli) of the stored bytes
 *     [+12, +12+storedLen)     stored bytes: the codec's encoding of rawLen raw bytes
 *   Footer, the last 24 bytes of the file:
 *     [+0, +4)   chunkCount    u32, 0 ..= CHUNKS_MAX (4096)
 *     [+4, +12)  totalRaw      u64, sum of rawLen, 0 ..= FILE_RAW_BYTES_MAX (1 GiB)
 *     [+12, +16) fileCrc       u32, CRC-32C of every byte before the footer (header and all chunks)
 *     [+16, +24) end magic     "CAIRNEND" (ASCII)
 *
 * An empty input encodes as header + footer (35 bytes, chunkCount 0). The decoder reads nothing it has
 * not bounded: it checks the header, the footer and every chunk header, length and checksum, and that
 * the chunks end exactly where the footer starts, before it allocates the output or decompresses
 * anything. Every failure is a CairnError 'corruption' naming what was expected, what was found, the
 * file and the byte offset. The decoder picks the codec from the codec id, so a file written by one
 * zstd implementation is read by any other.
 */
import { CairnError, invariant, isCairnError } from '../errors.js';
import { type Codec, CODEC_INPUT_BYTES_MAX, codecByName } from './codec.js';
import { crc32c, formatCrc } from './crc32c.js';

const MiB = 1024 * 1024;

export const CHUNKED_FORMAT_VERSION = 1;
export const CHUNK_RAW_BYTES_MAX = 4 * MiB;
/** zstd's worst case for 4 MiB is 4 MiB + 16 KiB (ZSTD_compressBound); the rest is margin. */
export const CHUNK_STORED_BYTES_MAX = CHUNK_RAW_BYTES_MAX + 64 * 1024;
export const FILE_RAW_BYTES_MAX = 1024 * MiB;
/** The smallest chunk size an encoder may choose (so CHUNKS_MAX chunks cover FILE_RAW_BYTES_MAX). */
export const CHUNK_RAW_BYTES_MIN = 256 * 1024;
export const CHUNKS_MAX = FILE_RAW_BYTES_MAX / CHUNK_RAW_BYTES_MIN;

const MAGIC = 'CAIRNCK1';
const END_MAGIC = 'CAIRNEND';
const MAGIC_BYTES = 8;
const HEADER_BYTES = 11;
const CHUNK_HEADER_BYTES = 12;
const FOOTER_BYTES = 24;

/** Codec ids on disk (bits 0-3 of the codec byte). Ids are never reused. */
const CODEC_IDS: Readonly<Record<string, number>> = { none: 0, zstd: 1 };
const CODEC_NAMES_BY_ID: readonly string[] = ['none', 'zstd'];
/** The codec byte's shuffle filter bit. */
const FILTER_SHUFFLE8 = 0x10;

export interface EncodeOptions {
  /**
   * Byte-transpose each chunk in 8-byte lanes before compressing: for raw bytes that are columns of
   * 8-byte numbers (state snapshots), it makes them about a quarter smaller under zstd, and faster.
   */
  shuffle?: boolean;
  /**
   * Raw bytes per chunk, CHUNK_RAW_BYTES_MIN ..= CHUNK_RAW_BYTES_MAX (default the maximum). Smaller
   * chunks compress a little worse but hold the thread for less time per codec call.
   */
  chunkBytes?: number;
}

/** Byte-transposes `src` in 8-byte lanes into `dst` (see the format): byte k of lane i to k * lanes + i. */
export function shuffle8(src: Uint8Array, dst: Uint8Array): void {
  const lanes = src.length >>> 3;
  for (let k = 0; k < 8; k++) {
    const o = k * lanes;
    for (let i = 0, j = k; i < lanes; i++, j += 8) dst[o + i] = src[j]!;
  }
  for (let i = lanes << 3; i < src.length; i++) dst[i] = src[i]!;
}

/** The inverse of shuffle8. */
export function unshuffle8(src: Uint8Array, dst: Uint8Array): void {
  const lanes = src.length >>> 3;
  for (let k = 0; k < 8; k++) {
    const o = k * lanes;
    for (let i = 0, j = k; i < lanes; i++, j += 8) dst[j] = src[o + i]!;
  }
  for (let i = lanes << 3; i < src.length; i++) dst[i] = src[i]!;
}

invariant(CHUNK_RAW_BYTES_MAX <= CODEC_INPUT_BYTES_MAX, 'a chunk must fit one codec call');
invariant(CHUNKS_MAX * CHUNK_RAW_BYTES_MIN === FILE_RAW_BYTES_MAX, 'the chunk limit covers the file limit');

const MAGIC_CODES = asciiBytes(MAGIC);
const END_MAGIC_CODES = asciiBytes(END_MAGIC);

function asciiBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function showBytes(bytes: Uint8Array): string {
  let printable = true;
  for (const b of bytes) if (b < 0x20 || b > 0x7e) printable = false;
  if (printable) return JSON.stringify(String.fromCharCode(...bytes));
  return '0x' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Encodes `raw` (at most FILE_RAW_BYTES_MAX bytes) into the chunked container with `codec`. */
export function encodeChunked(raw: Uint8Array, codec: Codec, options: EncodeOptions = {}): Promise<Uint8Array> {
  return encodeChunkedFrom(raw.length, async (offset, length) => raw.subarray(offset, offset + length), codec, options);
}

/**
 * Encodes `rawBytes` bytes that `read(offset, length)` hands out one chunk at a time (at most
 * CHUNK_RAW_BYTES_MAX each), so the raw input never has to be in JS memory all at once.
 */
export async function encodeChunkedFrom(
  rawBytes: number,
  read: (offset: number, length: number) => Promise<Uint8Array>,
  codec: Codec,
  options: EncodeOptions = {},
): Promise<Uint8Array> {
  return (await encodeChunkedWithCrc(rawBytes, read, codec, options)).bytes;
}

/**
 * encodeChunkedFrom that also returns the CRC-32C of the whole encoded file. Both the footer's CRC
 * and this one are computed chunk by chunk as chunks are produced, so no pass over the whole file
 * holds the thread at the end (for a 10 MiB file that was two passes of about 7 ms each).
 */
export async function encodeChunkedWithCrc(
  rawBytes: number,
  read: (offset: number, length: number) => Promise<Uint8Array>,
  codec: Codec,
  options: EncodeOptions = {},
): Promise<{ bytes: Uint8Array; crc32c: number }> {
  const raw = { length: rawBytes };
  const shuffle = options.shuffle === true;
  const size = options.chunkBytes ?? CHUNK_RAW_BYTES_MAX;
  if (!Number.isInteger(size) || size < CHUNK_RAW_BYTES_MIN || size > CHUNK_RAW_BYTES_MAX) {
    throw new CairnError('invalid', `chunk size: expected an integer in [${CHUNK_RAW_BYTES_MIN}, ${CHUNK_RAW_BYTES_MAX}], found ${String(options.chunkBytes)}`);
  }
  const lanes = shuffle ? new Uint8Array(Math.min(rawBytes, size)) : null;
  if (raw.length > FILE_RAW_BYTES_MAX) {
    throw new CairnError('invalid', `checkpoint file too large: expected at most ${FILE_RAW_BYTES_MAX} bytes, found ${raw.length}`);
  }
  const codecId = CODEC_IDS[codec.name];
  if (codecId === undefined) {
    throw new CairnError('invalid', `codec: expected one of ${CODEC_NAMES_BY_ID.join(', ')}, found ${JSON.stringify(codec.name)}`);
  }
  const chunkCount = Math.ceil(raw.length / size);
  const stored: Uint8Array[] = new Array(chunkCount);
  const storedCrcs = new Uint32Array(chunkCount);
  let totalBytes = HEADER_BYTES + FOOTER_BYTES;
  const header = new Uint8Array(HEADER_BYTES);
  header.set(MAGIC_CODES, 0);
  new DataView(header.buffer).setUint16(MAGIC_BYTES, CHUNKED_FORMAT_VERSION, true);
  header[MAGIC_BYTES + 2] = codecId | (shuffle ? FILTER_SHUFFLE8 : 0);
  // The CRC of every byte before the footer, extended chunk by chunk.
  let runningCrc = crc32c(header);
  const chunkHeader = new Uint8Array(CHUNK_HEADER_BYTES);
  const chunkHeaderView = new DataView(chunkHeader.buffer);
  for (let i = 0; i < chunkCount; i++) {
    const at = i * size;
    const want = Math.min(raw.length, at + size) - at;
    const piece = await read(at, want);
    invariant(piece.length === want, `chunk ${i} read: expected ${want} bytes, found ${piece.length}`);
    let input = piece;
    if (lanes) {
      input = lanes.subarray(0, piece.length);
      shuffle8(piece, input);
    }
    // A codec may return its input (none): copy what must outlive the reused shuffle buffer.
    let s = await codec.compress(input);
    if (lanes && s.buffer === lanes.buffer) s = s.slice();
    invariant(s.length >= 1, `chunk ${i} stored length: expected at least 1 byte, found 0`);
    invariant(s.length <= CHUNK_STORED_BYTES_MAX, `chunk ${i} stored length: expected at most ${CHUNK_STORED_BYTES_MAX}, found ${s.length}`);
    stored[i] = s;
    storedCrcs[i] = crc32c(s);
    chunkHeaderView.setUint32(0, piece.length, true);
    chunkHeaderView.setUint32(4, s.length, true);
    chunkHeaderView.setUint32(8, storedCrcs[i]!, true);
    runningCrc = crc32c(s, crc32c(chunkHeader, runningCrc));
    totalBytes += CHUNK_HEADER_BYTES + s.length;
  }

  const out = new Uint8Array(totalBytes);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.set(header, 0);
  let offset = HEADER_BYTES;
  for (let i = 0; i < chunkCount; i++) {
    const s = stored[i];
    const rawLen = Math.min(size, raw.length - i * size);
    view.setUint32(offset, rawLen, true);
    view.setUint32(offset + 4, s.length, true);
    view.setUint32(offset + 8, storedCrcs[i]!, true);
    out.set(s, offset + CHUNK_HEADER_BYTES);
    offset += CHUNK_HEADER_BYTES + s.length;
  }
  invariant(offset === totalBytes - FOOTER_BYTES, `chunks end: expected ${totalBytes - FOOTER_BYTES}, found ${offset}`);
  view.setUint32(offset, chunkCount, true);
  view.setUint32(offset + 4, raw.length >>> 0, true);
  view.setUint32(offset + 8, Math.floor(raw.length / 2 ** 32), true);
  view.setUint32(offset + 12, runningCrc, true);
  out.set(END_MAGIC_CODES, offset + 16);
  return { bytes: out, crc32c: crc32c(out.subarray(offset), runningCrc) };
}

/**
 * Decodes a chunked container, verifying it completely (see the format above). `codecs` are the
 * implementations to decode with, matched by name; by default codecByName picks them.
 */
export async function decodeChunked(
  bytes: Uint8Array,
  context: { file: string },
  codecs?: readonly Codec[],
): Promise<Uint8Array> {
  const file = context.file;
  const corrupt = (message: string, offset: number) =>
    new CairnError('corruption', `checkpoint file ${message} (file=${file}, offset=${offset})`);

  const n = bytes.length;
  if (n < HEADER_BYTES + FOOTER_BYTES) {
    throw corrupt(`truncated: expected at least ${HEADER_BYTES + FOOTER_BYTES} bytes, found ${n}`, 0);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = bytes.subarray(0, MAGIC_BYTES);
  if (!sameBytes(magic, MAGIC_CODES)) {
    throw corrupt(`magic mismatch: expected ${JSON.stringify(MAGIC)}, found ${showBytes(magic)}`, 0);
  }
  const version = view.getUint16(MAGIC_BYTES, true);
  if (version !== CHUNKED_FORMAT_VERSION) {
    throw corrupt(`format version: expected ${CHUNKED_FORMAT_VERSION}, found ${version}`, MAGIC_BYTES);
  }
  const codecByte = view.getUint8(MAGIC_BYTES + 2);
  const codecName = (codecByte & ~(0x0f | FILTER_SHUFFLE8)) === 0 ? CODEC_NAMES_BY_ID[codecByte & 0x0f] : undefined;
  if (codecName === undefined) {
    throw corrupt(`codec id: expected 0 (none) or 1 (zstd), with or without the shuffle bit 0x10, found ${codecByte}`, MAGIC_BYTES + 2);
  }
  const shuffled = (codecByte & FILTER_SHUFFLE8) !== 0;

  const footer = n - FOOTER_BYTES;
  const endMagic = bytes.subarray(footer + 16, n);
  if (!sameBytes(endMagic, END_MAGIC_CODES)) {
    throw corrupt(`end magic mismatch (truncated or trailing bytes?): expected ${JSON.stringify(END_MAGIC)}, found ${showBytes(endMagic)}`, footer + 16);
  }
  const chunkCount = view.getUint32(footer, true);
  if (chunkCount > CHUNKS_MAX) {
    throw corrupt(`chunk count: expected at most ${CHUNKS_MAX}, found ${chunkCount}`, footer);
  }
  const totalRawLo = view.getUint32(footer + 4, true);
  const totalRawHi = view.getUint32(footer + 8, true);
  if (totalRawHi !== 0 || totalRawLo > FILE_RAW_BYTES_MAX) {
    const found = totalRawHi === 0 ? String(totalRawLo) : `${totalRawHi} * 2^32 + ${totalRawLo}`;
    throw corrupt(`total raw size: expected at most ${FILE_RAW_BYTES_MAX} bytes, found ${found}`, footer + 4);
  }
  const totalRaw = totalRawLo;

  // Walk and verify every chunk header and checksum before allocating or decompressing anything.
  const rawLens = new Uint32Array(chunkCount);
  const storedOffsets = new Uint32Array(chunkCount);
  const storedLens = new Uint32Array(chunkCount);
  let offset = HEADER_BYTES;
  let rawSum = 0;
  for (let i = 0; i < chunkCount; i++) {
    if (offset + CHUNK_HEADER_BYTES > footer) {
      throw corrupt(`chunk ${i} of ${chunkCount} header: expected ${CHUNK_HEADER_BYTES} bytes before the footer, found ${footer - offset}`, offset);
    }
    const rawLen = view.getUint32(offset, true);
    const storedLen = view.getUint32(offset + 4, true);
    const storedCrc = view.getUint32(offset + 8, true);
    if (rawLen < 1 || rawLen > CHUNK_RAW_BYTES_MAX) {
      throw corrupt(`chunk ${i} raw length: expected 1..${CHUNK_RAW_BYTES_MAX}, found ${rawLen}`, offset);
    }
    if (storedLen < 1 || storedLen > CHUNK_STORED_BYTES_MAX) {
      throw corrupt(`chunk ${i} stored length: expected 1..${CHUNK_STORED_BYTES_MAX}, found ${storedLen}`, offset + 4);
    }
    const start = offset + CHUNK_HEADER_BYTES;
    if (start + storedLen > footer) {
      throw corrupt(`chunk ${i} truncated: expected ${storedLen} stored bytes before the footer, found ${footer - start}`, start);
    }
    const actualCrc = crc32c(bytes.subarray(start, start + storedLen));
    if (actualCrc !== storedCrc) {
      throw corrupt(`chunk ${i} checksum mismatch: expected ${formatCrc(storedCrc)}, found ${formatCrc(actualCrc)}`, start);
    }
    rawLens[i] = rawLen;
    storedOffsets[i] = start;
    storedLens[i] = storedLen;
    rawSum += rawLen;
    offset = start + storedLen;
  }
  if (offset !== footer) {
    throw corrupt(`chunks end: expected the footer at offset ${offset}, found it at ${footer} (${footer - offset} unexplained bytes)`, offset);
  }
  if (rawSum !== totalRaw) {
    throw corrupt(`total raw size: expected ${rawSum} (sum of chunk sizes), found ${totalRaw}`, footer + 4);
  }
  const storedFileCrc = view.getUint32(footer + 12, true);
  const actualFileCrc = crc32c(bytes.subarray(0, footer));
  if (actualFileCrc !== storedFileCrc) {
    throw corrupt(`checksum mismatch: expected ${formatCrc(storedFileCrc)}, found ${formatCrc(actualFileCrc)}`, footer + 12);
  }

  const codec = resolveCodec(codecName, codecs, file);
  const out = new Uint8Array(totalRaw);
  let position = 0;
  for (let i = 0; i < chunkCount; i++) {
    const stored = bytes.subarray(storedOffsets[i], storedOffsets[i] + storedLens[i]);
    let piece: Uint8Array;
    try {
      piece = await codec.decompress(stored, rawLens[i]);
    } catch (e) {
      if (!isCairnError(e, 'corruption')) throw e;
      throw new CairnError('corruption', `checkpoint chunk ${i} does not decompress: ${e.message} (file=${file}, offset=${storedOffsets[i]})`, { cause: e });
    }
    invariant(piece.length === rawLens[i], `chunk ${i} decompressed size: expected ${rawLens[i]}, found ${piece.length}`);
    if (shuffled) unshuffle8(piece, out.subarray(position, position + piece.length));
    else out.set(piece, position);
    position += piece.length;
  }
  invariant(position === totalRaw, `decoded size: expected ${totalRaw}, found ${position}`);
  return out;
}

function resolveCodec(name: string, codecs: readonly Codec[] | undefined, file: string): Codec {
  if (codecs === undefined) return codecByName(name);
  const codec = codecs.find((c) => c.name === name);
  if (codec === undefined) {
    throw new CairnError(
      'invalid',
      `decode codec: expected a codec named ${JSON.stringify(name)}, found only ${codecs.map((c) => c.name).join(', ') || 'none'} (file=${file})`,
    );
  }
  return codec;
}
