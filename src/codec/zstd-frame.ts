/**
 * Reads the header of a standard zstd frame (RFC 8878, section 3.1.1) without decompressing it.
 *
 * Both zstd codecs check a frame's header before handing it to a decoder: the frame must start with
 * the zstd magic number, declare its content size, and declare exactly the size the caller expects.
 * This keeps untrusted sizes away from allocators: zstd-codec sizes its output from the declared
 * content size inside a fixed 16 MiB Wasm heap and aborts the module on a large one.
 */
import { CairnError } from '../errors.js';

export const ZSTD_MAGIC = 0xfd2fb528;

/** The low 32 bits of XXH64 of no bytes (seed 0): the content checksum of an empty frame. */
const ZSTD_EMPTY_CONTENT_CHECKSUM = 0x51d8e999;

const BLOCK_HEADER_BYTES = 3;
const BLOCK_TYPE_RAW = 0;
const BLOCK_TYPE_RLE = 1;
const BLOCK_TYPE_RESERVED = 3;
/** Block_Maximum_Size: no block holds more than 128 KiB (RFC 8878, 3.1.1.2). */
const ZSTD_BLOCK_BYTES_MAX = 128 * 1024;
const CONTENT_CHECKSUM_BYTES = 4;

export interface ZstdFrameHeader {
  /** Bytes of the frame header, magic included. */
  readonly headerBytes: number;
  /** Declared decompressed size. */
  readonly contentBytes: number;
  readonly hasContentChecksum: boolean;
}

function hex32(n: number): string {
  return '0x' + (n >>> 0).toString(16).padStart(8, '0');
}

function corrupt(codec: string, message: string): CairnError {
  return new CairnError('corruption', `${message} (codec=${codec})`);
}

/**
 * Checks a frame without decoding it: zstd magic, no reserved bits, no dictionary, a declared content
 * size equal to `expectedContentBytes`, and block headers that end exactly at the end of `frame`.
 * Throws CairnError 'corruption' otherwise.
 */
export function checkZstdFrameHeader(frame: Uint8Array, expectedContentBytes: number, codec: string): ZstdFrameHeader {
  if (frame.length < 6) {
    throw corrupt(codec, `zstd frame truncated: expected at least 6 bytes, found ${frame.length}`);
  }
  const magic = (frame[0] | (frame[1] << 8) | (frame[2] << 16) | (frame[3] << 24)) >>> 0;
  if (magic !== ZSTD_MAGIC) {
    throw corrupt(codec, `zstd frame magic mismatch: expected ${hex32(ZSTD_MAGIC)}, found ${hex32(magic)}`);
  }
  const descriptor = frame[4];
  const contentSizeFlag = descriptor >>> 6;
  const singleSegment = (descriptor & 0x20) !== 0;
  const reserved = descriptor & 0x08;
  const hasContentChecksum = (descriptor & 0x04) !== 0;
  const dictionaryIdFlag = descriptor & 0x03;
  if (reserved !== 0) {
    throw corrupt(codec, `zstd frame descriptor reserved bit: expected 0, found 1`);
  }
  if (dictionaryIdFlag !== 0) {
    throw corrupt(codec, `zstd frame dictionary id flag: expected 0 (no dictionary), found ${dictionaryIdFlag}`);
  }
  const contentSizeFieldBytes = [singleSegment ? 1 : 0, 2, 4, 8][contentSizeFlag];
  if (contentSizeFieldBytes === 0) {
    throw corrupt(codec, `zstd frame content size: expected a declared size, found none`);
  }
  let offset = 5 + (singleSegment ? 0 : 1);
  const headerBytes = offset + contentSizeFieldBytes;
  if (frame.length < headerBytes) {
    throw corrupt(codec, `zstd frame header truncated: expected ${headerBytes} bytes, found ${frame.length}`);
  }
  let contentBytes: number;
  if (contentSizeFieldBytes === 1) {
    contentBytes = frame[offset];
  } else if (contentSizeFieldBytes === 2) {
    contentBytes = (frame[offset] | (frame[offset + 1] << 8)) + 256;
  } else {
    const lo = (frame[offset] | (frame[offset + 1] << 8) | (frame[offset + 2] << 16) | (frame[offset + 3] << 24)) >>> 0;
    offset += 4;
    const hi =
      contentSizeFieldBytes === 8
        ? (frame[offset] | (frame[offset + 1] << 8) | (frame[offset + 2] << 16) | (frame[offset + 3] << 24)) >>> 0
        : 0;
    // Any high word makes the size far above every limit; report it without losing precision.
    contentBytes = hi === 0 ? lo : Number.POSITIVE_INFINITY;
  }
  if (contentBytes !== expectedContentBytes) {
    throw corrupt(
      codec,
      `zstd frame content size mismatch: expected ${expectedContentBytes} bytes, found ${contentBytes === Infinity ? 'more than 2^32' : contentBytes}`,
    );
  }
  const header = { headerBytes, contentBytes, hasContentChecksum };
  checkZstdFrameSpan(frame, header, codec);
  return header;
}

/**
 * Walks the block headers (3 bytes each, no decoding) to check that the frame ends exactly at the end
 * of `frame`: a truncated frame, trailing bytes or a reserved block type is corruption. Decoders differ
 * here (a streaming decoder may ignore a few trailing bytes), so neither is asked.
 */
function checkZstdFrameSpan(frame: Uint8Array, header: ZstdFrameHeader, codec: string): void {
  let offset = header.headerBytes;
  // Each block is at least 3 bytes, so the walk ends within frame.length / 3 steps.
  for (;;) {
    if (offset + BLOCK_HEADER_BYTES > frame.length) {
      throw corrupt(codec, `zstd frame truncated: expected a block header at byte ${offset}, found ${frame.length - offset} bytes`);
    }
    const block = frame[offset] | (frame[offset + 1] << 8) | (frame[offset + 2] << 16);
    const last = block & 1;
    const type = (block >>> 1) & 3;
    const size = block >>> 3;
    if (type === BLOCK_TYPE_RESERVED) {
      throw corrupt(codec, `zstd block type at byte ${offset}: expected 0, 1 or 2, found 3 (reserved)`);
    }
    if (size > ZSTD_BLOCK_BYTES_MAX) {
      throw corrupt(codec, `zstd block size at byte ${offset}: expected at most ${ZSTD_BLOCK_BYTES_MAX}, found ${size}`);
    }
    offset += BLOCK_HEADER_BYTES + (type === BLOCK_TYPE_RLE ? 1 : size);
    if (last === 1) break;
  }
  const end = offset + (header.hasContentChecksum ? CONTENT_CHECKSUM_BYTES : 0);
  if (end !== frame.length) {
    throw corrupt(codec, `zstd frame length: expected the frame to end at byte ${frame.length}, found its end at byte ${end}`);
  }
}

/**
 * Checks that a frame whose header declares zero content bytes is exactly what encoders write for
 * empty input: one last raw block of size 0, the empty content checksum if flagged, and nothing after.
 * zstd-codec cannot decode such a frame (it treats a content size of 0 as "unknown"), and a decoder
 * is not needed to verify it. A legal but unusual empty frame (for example an empty compressed block)
 * is rejected as corruption; no zstd encoder writes one. Call it after checkZstdFrameHeader, which
 * has checked that the blocks span the frame.
 */
export function checkEmptyZstdFrame(frame: Uint8Array, header: ZstdFrameHeader, codec: string): void {
  let offset = header.headerBytes;
  const block = frame[offset] | (frame[offset + 1] << 8) | (frame[offset + 2] << 16);
  const last = block & 1;
  const type = (block >>> 1) & 3;
  const size = block >>> 3;
  if (last !== 1 || type !== BLOCK_TYPE_RAW || size !== 0) {
    throw corrupt(codec, `empty zstd frame block: expected a last raw block of 0 bytes, found last=${last} type=${type} size=${size}`);
  }
  offset += BLOCK_HEADER_BYTES;
  if (header.hasContentChecksum) {
    const checksum = (frame[offset] | (frame[offset + 1] << 8) | (frame[offset + 2] << 16) | (frame[offset + 3] << 24)) >>> 0;
    if (checksum !== ZSTD_EMPTY_CONTENT_CHECKSUM) {
      throw corrupt(codec, `empty zstd frame checksum: expected ${hex32(ZSTD_EMPTY_CONTENT_CHECKSUM)}, found ${hex32(checksum)}`);
    }
  }
}
