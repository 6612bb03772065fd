// Proves the block codecs: each round-trips generated input (the input is the oracle), writes standard
// zstd frames that declare their content size, rejects oversized input as 'invalid', and answers
// damaged or mismatched frames with 'corruption' and never an abort: garbage, every truncation,
// a frame declaring a huge size (which would abort zstd-codec's fixed Wasm heap if it reached it),
// and random bit flips (which, without a checksum in the frame, may also decode to the right length).
// Where the runtime has native zstd (Deno), both zstd codecs read each other's frames; under Node 20
// those cross-read tests are not registered because there is nothing to cross-read with.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { CairnError } from '../../src/errors.js';
import {
  CODEC_INPUT_BYTES_MAX,
  type Codec,
  codecByName,
  defaultCodec,
  NativeZstdCodec,
  nativeZstdAvailable,
  NoneCodec,
  ZstdCodecJs,
} from '../../src/codec/codec.js';
import { ZSTD_MAGIC } from '../../src/codec/zstd-frame.js';
import { mulberry32 } from '../../src/testing/faulty-storage.js';
import { compressibleBytes, equalBytes, expectCairnError, noiseBytes, wordBytes } from './fixtures.js';

const MiB = 1024 * 1024;
const native = nativeZstdAvailable();
const zstdCodecs: [string, Codec][] = [['zstd-codec', new ZstdCodecJs()]];
if (native) zstdCodecs.push(['native', new NativeZstdCodec()]);
const allCodecs: [string, Codec][] = [['none', new NoneCodec()], ...zstdCodecs];

function readU32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) | (bytes[offset + 3] << 24)) >>> 0;
}

for (const [label, codec] of allCodecs) {
  test(`${label}: round trips sizes 0, 1, 1000, 64 KiB and 4 MiB`, async () => {
    for (const [i, n] of [0, 1, 1000, 65536, CODEC_INPUT_BYTES_MAX].entries()) {
      for (const raw of [noiseBytes(n, i), compressibleBytes(n, i)]) {
        const frame = await codec.compress(raw);
        const back = await codec.decompress(frame, raw.length);
        assert.ok(equalBytes(back, raw), `${label} size ${n}`);
      }
    }
  });

  test(`${label}: round trips generated input`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), async (raw) => {
        const back = await codec.decompress(await codec.compress(raw), raw.length);
        assert.ok(equalBytes(back, raw));
      }),
      { numRuns: 100 },
    );
  });

  test(`${label}: input above CODEC_INPUT_BYTES_MAX is 'invalid'`, async () => {
    const e = await expectCairnError(() => codec.compress(new Uint8Array(CODEC_INPUT_BYTES_MAX + 1)), 'invalid');
    assert.match(e.message, `expected at most ${CODEC_INPUT_BYTES_MAX} bytes, found ${CODEC_INPUT_BYTES_MAX + 1}`);
    await expectCairnError(() => codec.decompress(new Uint8Array(10), CODEC_INPUT_BYTES_MAX + 1), 'invalid');
    await expectCairnError(() => codec.decompress(new Uint8Array(10), -1), 'invalid');
  });

  test(`${label}: a wrong expected size is 'corruption'`, async () => {
    const raw = compressibleBytes(5000, 7);
    const frame = await codec.compress(raw);
    for (const wrong of [0, 1, 4999, 5001]) {
      const e = await expectCairnError(() => codec.decompress(frame, wrong), 'corruption');
      assert.match(e.message, 'expected');
    }
  });
}

for (const [label, codec] of zstdCodecs) {
  test(`${label}: writes standard frames that declare their content size`, async () => {
    for (const n of [0, 1, 255, 256, 65535, 65536 + 256, 3 * MiB]) {
      const frame = await codec.compress(compressibleBytes(n, n));
      assert.is(readU32(frame, 0), ZSTD_MAGIC);
      const descriptor = frame[4];
      const fcsFlag = descriptor >>> 6;
      const singleSegment = (descriptor & 0x20) !== 0;
      assert.ok(fcsFlag !== 0 || singleSegment, `size ${n}: frame content size present`);
      assert.is(descriptor & 0x03, 0, 'no dictionary');
    }
  });

  test(`${label}: level is configurable and checked`, async () => {
    const raw = wordBytes(200_000, 3);
    const Ctor = codec.constructor as new (o: { level?: number }) => Codec;
    const fast = await new Ctor({ level: 1 }).compress(raw);
    const small = await new Ctor({ level: 19 }).compress(raw);
    assert.ok(small.length <= fast.length, `level 19 (${small.length}) no larger than level 1 (${fast.length})`);
    assert.ok(equalBytes(await codec.decompress(small, raw.length), raw));
    assert.throws(() => new Ctor({ level: 0 }), (e: unknown) => e instanceof CairnError && e.kind === 'invalid');
    assert.throws(() => new Ctor({ level: 23 }), (e: unknown) => e instanceof CairnError && e.kind === 'invalid');
  });

  test(`${label}: garbage and every truncation are 'corruption'`, async () => {
    for (const garbage of [new Uint8Array(0), new Uint8Array(64), noiseBytes(1000, 1), new Uint8Array([0x28, 0xb5, 0x2f, 0xfd])]) {
      await expectCairnError(() => codec.decompress(garbage, 1000), 'corruption');
    }
    const raw = compressibleBytes(3000, 11);
    const frame = await codec.compress(raw);
    for (let cut = 0; cut < frame.length; cut++) {
      await expectCairnError(() => codec.decompress(frame.subarray(0, cut), raw.length), 'corruption');
    }
    const longer = new Uint8Array(frame.length + 3);
    longer.set(frame);
    await expectCairnError(() => codec.decompress(longer, raw.length), 'corruption');
  });

  test(`${label}: a frame declaring a huge size is refused before decoding`, async () => {
    // Descriptor 0x80: 4-byte content size, window descriptor present; declares 256 MiB.
    const huge = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x80, 0x58, 0, 0, 0, 0x10, 1, 0, 0]);
    const e = await expectCairnError(() => codec.decompress(huge, 100), 'corruption');
    assert.match(e.message, 'content size mismatch: expected 100 bytes, found 268435456');
    const dictionary = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x21, 7, 100, 1, 0, 0]);
    await expectCairnError(() => codec.decompress(dictionary, 100), 'corruption');
    const noSize = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 1, 0, 0]);
    await expectCairnError(() => codec.decompress(noSize, 0), 'corruption');
    // Still healthy afterwards.
    const raw = compressibleBytes(10_000, 5);
    assert.ok(equalBytes(await codec.decompress(await codec.compress(raw), raw.length), raw));
  });

  test(`${label}: damaged empty frames are 'corruption'`, async () => {
    const frame = await codec.compress(new Uint8Array(0));
    assert.is((await codec.decompress(frame, 0)).length, 0);
    for (let i = 4; i < frame.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const damaged = frame.slice();
        damaged[i] ^= 1 << bit;
        try {
          const out = await codec.decompress(damaged, 0);
          assert.is(out.length, 0, 'a flip that still decodes yields the declared size');
        } catch (e) {
          assert.ok(e instanceof CairnError && e.kind === 'corruption', String(e));
        }
      }
    }
  });

  test(`${label}: random bit flips never crash and never yield a wrong size`, async () => {
    const raw = compressibleBytes(200_000, 21);
    const frame = await codec.compress(raw);
    const random = mulberry32(99);
    let rejected = 0;
    for (let trial = 0; trial < 400; trial++) {
      const damaged = frame.slice();
      const flips = 1 + Math.floor(random() * 8);
      for (let k = 0; k < flips; k++) damaged[4 + Math.floor(random() * (frame.length - 4))] ^= 1 << Math.floor(random() * 8);
      try {
        const out = await codec.decompress(damaged, raw.length);
        assert.is(out.length, raw.length);
      } catch (e) {
        assert.ok(e instanceof CairnError && e.kind === 'corruption', String(e));
        rejected++;
      }
    }
    assert.ok(rejected > 0, 'some damage is detected by the decoder itself');
    assert.ok(equalBytes(await codec.decompress(frame, raw.length), raw));
  });
}

test('zstd-codec: repeated 4 MiB calls do not exhaust its fixed heap', async () => {
  const codec = new ZstdCodecJs();
  const raw = noiseBytes(CODEC_INPUT_BYTES_MAX, 77);
  for (let i = 0; i < 12; i++) {
    const frame = await codec.compress(raw);
    const back = await codec.decompress(frame, raw.length);
    assert.is(back[back.length - 1], raw[raw.length - 1]);
  }
});

if (native) {
  test('cross-read: each zstd codec reads what the other wrote', async () => {
    const js = new ZstdCodecJs();
    const nat = new NativeZstdCodec();
    for (const [i, n] of [0, 1, 300, 70_000, CODEC_INPUT_BYTES_MAX].entries()) {
      const raw = compressibleBytes(n, 100 + i);
      assert.ok(equalBytes(await nat.decompress(await js.compress(raw), n), raw), `native reads zstd-codec, ${n} bytes`);
      assert.ok(equalBytes(await js.decompress(await nat.compress(raw), n), raw), `zstd-codec reads native, ${n} bytes`);
    }
  });

  test('cross-read: generated input', async () => {
    const js = new ZstdCodecJs();
    const nat = new NativeZstdCodec();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), async (raw) => {
        assert.ok(equalBytes(await nat.decompress(await js.compress(raw), raw.length), raw));
        assert.ok(equalBytes(await js.decompress(await nat.compress(raw), raw.length), raw));
      }),
      { numRuns: 100 },
    );
  });
}

test('defaultCodec is native zstd where available, else zstd-codec', () => {
  const codec = defaultCodec();
  assert.is(codec.name, 'zstd');
  assert.ok(native ? codec instanceof NativeZstdCodec : codec instanceof ZstdCodecJs);
  assert.is(defaultCodec(), codec, 'one shared instance');
});

test('codecByName knows none and zstd, and nothing else', () => {
  assert.is(codecByName('none').name, 'none');
  assert.is(codecByName('zstd'), defaultCodec());
  for (const bad of ['lz4', 'ZSTD', '']) {
    assert.throws(() => codecByName(bad), (e: unknown) => e instanceof CairnError && e.kind === 'invalid');
  }
});

test('NativeZstdCodec refuses construction exactly when native zstd is unavailable', () => {
  if (native) assert.instance(new NativeZstdCodec(), NativeZstdCodec);
  else assert.throws(() => new NativeZstdCodec(), (e: unknown) => e instanceof CairnError && e.kind === 'invalid');
});

test.run();
