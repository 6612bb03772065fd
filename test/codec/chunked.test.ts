// Proves the chunked container: it round-trips inputs at the chunk boundaries (the input is the
// oracle), its bytes match the documented layout built by hand, any codec reads what another wrote,
// and every kind of damage is a CairnError 'corruption' naming the file and offset, never another
// error: every single-bit flip and every truncation of a small file, trailing bytes, random multi-byte
// damage of a larger file, and forged files whose checksums are recomputed so that only the length
// and limit checks stand between them and the decoder.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CairnError } from '../../src/errors.js';
import { type Codec, NativeZstdCodec, nativeZstdAvailable, NoneCodec, ZstdCodecJs } from '../../src/codec/codec.js';
import {
  CHUNK_RAW_BYTES_MAX,
  CHUNK_STORED_BYTES_MAX,
  CHUNKS_MAX,
  decodeChunked,
  encodeChunked,
  encodeChunkedWithCrc,
  FILE_RAW_BYTES_MAX,
  shuffle8,
  unshuffle8,
} from '../../src/codec/chunked.js';
import { crc32c } from '../../src/codec/crc32c.js';
import { mulberry32 } from '../../src/testing/faulty-storage.js';
import { compressibleBytes, equalBytes, expectCairnError, noiseBytes } from './fixtures.js';

const MiB = 1024 * 1024;
const ctx = { file: 'test.chk' };
const HEADER = 11;
const FOOTER = 24;
const zstdJs = new ZstdCodecJs();
const none = new NoneCodec();
const codecs: [string, Codec][] = [['none', none], ['zstd-codec', zstdJs]];
if (nativeZstdAvailable()) codecs.push(['native', new NativeZstdCodec()]);

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Recomputes the footer checksum so a forged change reaches the decoder's other checks. */
function reseal(bytes: Uint8Array): Uint8Array {
  const footer = bytes.length - FOOTER;
  view(bytes).setUint32(footer + 12, crc32c(bytes.subarray(0, footer)), true);
  return bytes;
}

async function expectCorruption(bytes: Uint8Array, what: string): Promise<CairnError> {
  const e = await expectCairnError(() => decodeChunked(bytes, ctx), 'corruption').catch((err: Error) => {
    throw new Error(`${what}: ${err.message}`, { cause: err });
  });
  assert.match(e.message, 'file=test.chk', what);
  assert.match(e.message, /offset=\d+/, what);
  return e;
}

for (const [label, codec] of codecs) {
  test(`${label}: round trips empty, 1 byte, 4 MiB, 4 MiB + 1 and 9 MiB`, async () => {
    for (const n of [0, 1, CHUNK_RAW_BYTES_MAX, CHUNK_RAW_BYTES_MAX + 1, 9 * MiB]) {
      const raw = compressibleBytes(n, n);
      const encoded = await encodeChunked(raw, codec);
      const chunkCount = view(encoded).getUint32(encoded.length - FOOTER, true);
      assert.is(chunkCount, Math.ceil(n / CHUNK_RAW_BYTES_MAX), `chunk count for ${n}`);
      assert.ok(equalBytes(await decodeChunked(encoded, ctx), raw), `${label} ${n} bytes`);
    }
  });
}

for (const [label, codec] of codecs) {
  test(`${label} with the shuffle filter: round trips lengths around the lane size and the chunk size`, async () => {
    for (const n of [0, 1, 7, 8, 9, 4099, CHUNK_RAW_BYTES_MAX, CHUNK_RAW_BYTES_MAX + 13]) {
      const raw = n < 5000 ? noiseBytes(n, n + 1) : compressibleBytes(n, n);
      const encoded = await encodeChunked(raw, codec, { shuffle: true });
      assert.is(encoded[10]! & 0x10, 0x10, `shuffle bit for ${n}`);
      assert.ok(equalBytes(await decodeChunked(encoded, ctx), raw), `round trip of ${n} bytes`);
    }
  });
}

test('the streamed whole-file CRC equals the CRC of the encoded bytes', async () => {
  for (const n of [0, 5, 300_000, 1_000_003]) {
    const raw = compressibleBytes(n, 3);
    const read = async (o: number, l: number) => raw.subarray(o, o + l);
    const { bytes, crc32c: crc } = await encodeChunkedWithCrc(n, read, zstdJs, { shuffle: true, chunkBytes: 256 * 1024 });
    assert.is(crc, crc32c(bytes), `file crc for ${n}`);
    assert.ok(equalBytes(await decodeChunked(bytes, ctx), raw), `round trip of ${n}`);
  }
});

test('shuffle8 transposes bytes in 8-byte lanes, as the format says, and unshuffle8 inverts it', () => {
  const random = mulberry32(5);
  for (const n of [0, 3, 8, 16, 21, 64, 1001]) {
    const src = Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
    const dst = new Uint8Array(n);
    shuffle8(src, dst);
    const lanes = Math.floor(n / 8);
    for (let i = 0; i < n; i++) {
      const want = i < lanes * 8 ? src[(i % lanes) * 8 + Math.floor(i / lanes)] : src[i];
      assert.is(dst[i], want, `byte ${i} of ${n}`);
    }
    const back = new Uint8Array(n);
    unshuffle8(dst, back);
    assert.ok(equalBytes(back, src), `inverse for ${n}`);
  }
});

test('the shuffle filter makes columns of 8-byte numbers smaller under zstd', async () => {
  // Integer-valued doubles and small int64s, as state snapshots hold them.
  const n = 200_000;
  const random = mulberry32(9);
  const f = new Float64Array(n).map(() => 1 + Math.floor(random() * 1000));
  const raw = new Uint8Array(f.buffer);
  const plain = await encodeChunked(raw, zstdJs);
  const shuffled = await encodeChunked(raw, zstdJs, { shuffle: true });
  assert.ok(shuffled.length < plain.length, `shuffled ${shuffled.length} vs plain ${plain.length}`);
});

test('empty input encodes as header and footer only', async () => {
  const encoded = await encodeChunked(new Uint8Array(0), zstdJs);
  assert.is(encoded.length, HEADER + FOOTER);
  assert.is((await decodeChunked(encoded, ctx)).length, 0);
});

test('bytes match the documented layout (built by hand, codec none)', async () => {
  const raw = new Uint8Array([10, 20, 30]);
  const expected: number[] = [];
  const u32 = (n: number) => expected.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
  for (const c of 'CAIRNCK1') expected.push(c.charCodeAt(0));
  expected.push(1, 0); // version
  expected.push(0); // codec none
  u32(3); // rawLen
  u32(3); // storedLen
  u32(crc32c(raw));
  expected.push(...raw);
  const beforeFooter = Uint8Array.from(expected);
  u32(1); // chunkCount
  u32(3); // totalRaw low
  u32(0); // totalRaw high
  u32(crc32c(beforeFooter));
  for (const c of 'CAIRNEND') expected.push(c.charCodeAt(0));
  assert.equal(Array.from(await encodeChunked(raw, none)), expected);
});

test('the codec id picks the decoder: each codec reads what another wrote', async () => {
  const raw = compressibleBytes(CHUNK_RAW_BYTES_MAX + 5000, 3);
  for (const [writer, wc] of codecs) {
    const encoded = await encodeChunked(raw, wc);
    for (const [reader, rc] of codecs) {
      if (rc.name !== wc.name) continue;
      assert.ok(equalBytes(await decodeChunked(encoded, ctx, [rc]), raw), `${reader} reads ${writer}`);
    }
    assert.ok(equalBytes(await decodeChunked(encoded, ctx), raw), `default codecs read ${writer}`);
  }
  const zstdFile = await encodeChunked(raw, zstdJs);
  const e = await expectCairnError(() => decodeChunked(zstdFile, ctx, [none]), 'invalid');
  assert.match(e.message, 'expected a codec named "zstd"');
});

for (const [label, codec] of codecs) {
  test(`${label}: every single-bit flip of a small file is corruption`, async () => {
    const encoded = await encodeChunked(compressibleBytes(300, 9), codec);
    for (let i = 0; i < encoded.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const damaged = encoded.slice();
        damaged[i] ^= 1 << bit;
        await expectCorruption(damaged, `flip byte ${i} bit ${bit}`);
      }
    }
  });

  test(`${label}: every truncation and any trailing bytes are corruption`, async () => {
    const encoded = await encodeChunked(compressibleBytes(300, 10), codec);
    for (let cut = 0; cut < encoded.length; cut++) await expectCorruption(encoded.slice(0, cut), `cut at ${cut}`);
    for (const extra of [1, 7, 24, 100]) {
      const longer = new Uint8Array(encoded.length + extra);
      longer.set(encoded);
      await expectCorruption(longer, `${extra} trailing zero bytes`);
      // Trailing bytes that repeat the end of the file, so the file still ends with a footer.
      longer.set(encoded.subarray(encoded.length - extra), encoded.length);
      await expectCorruption(longer, `${extra} trailing bytes repeating the end`);
    }
  });
}

test('random multi-byte damage of a larger file is corruption', async () => {
  const raw = new Uint8Array(6 * MiB);
  raw.set(compressibleBytes(3 * MiB, 1));
  raw.set(noiseBytes(3 * MiB, 2), 3 * MiB);
  const encoded = await encodeChunked(raw, zstdJs);
  const random = mulberry32(2024);
  for (let trial = 0; trial < 150; trial++) {
    const damaged = encoded.slice();
    const hits = 1 + Math.floor(random() * 16);
    const clustered = random() < 0.5;
    const base = Math.floor(random() * encoded.length);
    for (let k = 0; k < hits; k++) {
      const at = clustered ? Math.min(encoded.length - 1, base + k) : Math.floor(random() * encoded.length);
      damaged[at] ^= 1 + Math.floor(random() * 255); // never zero, so the byte changes
    }
    await expectCorruption(damaged, `trial ${trial}`);
  }
});

test('forged lengths and limits are caught even with valid checksums', async () => {
  const raw = compressibleBytes(1000, 4);
  const good = await encodeChunked(raw, none);
  const footer = good.length - FOOTER;
  const cases: [string, (b: Uint8Array) => void, string][] = [
    ['version 2', (b) => view(b).setUint16(8, 2, true), 'format version: expected 1, found 2'],
    ['codec id 9', (b) => (b[10] = 9), 'codec id'],
    ['codec byte with an unknown filter bit', (b) => (b[10] = 0x20), 'codec id'],
    ['rawLen 0', (b) => view(b).setUint32(HEADER, 0, true), 'raw length'],
    ['rawLen above the chunk limit', (b) => view(b).setUint32(HEADER, CHUNK_RAW_BYTES_MAX + 1, true), 'raw length'],
    ['storedLen above the stored limit', (b) => view(b).setUint32(HEADER + 4, CHUNK_STORED_BYTES_MAX + 1, true), 'stored length'],
    ['storedLen past the footer', (b) => view(b).setUint32(HEADER + 4, 5000, true), 'truncated'],
    ['storedLen short of the footer', (b) => view(b).setUint32(HEADER + 4, 999, true), 'checksum mismatch'],
    ['chunk count above CHUNKS_MAX', (b) => view(b).setUint32(footer, CHUNKS_MAX + 1, true), 'chunk count'],
    ['chunk count 2', (b) => view(b).setUint32(footer, 2, true), 'header'],
    ['chunk count 0', (b) => view(b).setUint32(footer, 0, true), 'chunks end'],
    ['totalRaw above the file limit', (b) => view(b).setUint32(footer + 4, FILE_RAW_BYTES_MAX + 1, true), 'total raw size'],
    ['totalRaw high word', (b) => view(b).setUint32(footer + 8, 1, true), 'total raw size'],
    ['totalRaw off by one', (b) => view(b).setUint32(footer + 4, 1001, true), 'total raw size: expected 1000'],
  ];
  for (const [what, forge, message] of cases) {
    const forged = reseal(good.slice());
    forge(forged);
    reseal(forged);
    const e = await expectCorruption(forged, what);
    assert.match(e.message, message, what);
  }
});

test('a forged chunk that passes its checksums but not its codec is corruption with context', async () => {
  const raw = compressibleBytes(5000, 8);
  const encoded = await encodeChunked(raw, zstdJs);
  const storedLen = view(encoded).getUint32(HEADER + 4, true);
  const stored = encoded.subarray(HEADER + 12, HEADER + 12 + storedLen);
  stored.fill(0x55, 20); // keep the zstd frame header, ruin the body
  view(encoded).setUint32(HEADER + 8, crc32c(stored), true);
  reseal(encoded);
  const e = await expectCorruption(encoded, 'garbage zstd body');
  assert.match(e.message, 'chunk 0 does not decompress');
});

test('oversized input and unknown codecs are invalid', async () => {
  const tooLarge = { length: FILE_RAW_BYTES_MAX + 1 } as Uint8Array;
  await expectCairnError(() => encodeChunked(tooLarge, none), 'invalid');
  const odd: Codec = { name: 'lz4', compress: async (b) => b, decompress: async (b) => b };
  await expectCairnError(() => encodeChunked(new Uint8Array(1), odd), 'invalid');
});

test.run();
