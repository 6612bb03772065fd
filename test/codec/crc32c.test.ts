// Proves crc32c computes CRC-32C (Castagnoli): the published check value, the RFC 3720 (iSCSI) B.4
// vectors, agreement with a bit-at-a-time reference on generated input (any length and alignment,
// so every tail length of the slice-by-8 loop is hit), and seed chaining across splits.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { crc32c, formatCrc } from '../../src/codec/crc32c.js';

/** Reference: one bit at a time, straight from the definition (reflected, init and xor-out ~0). */
function crc32cBitwise(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

const ascii = (s: string) => new TextEncoder().encode(s);

test('check value of "123456789"', () => {
  assert.is(crc32c(ascii('123456789')), 0xe3069283);
});

test('RFC 3720 B.4 vectors', () => {
  assert.is(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.is(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.is(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.is(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
});

test('empty input and unsigned result', () => {
  assert.is(crc32c(new Uint8Array(0)), 0);
  const c = crc32c(ascii('123456789'));
  assert.ok(c > 0x7fffffff, 'a checksum with the top bit set stays positive');
});

test('matches the bitwise reference at every length and byte offset', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(9), (bytes, skip) => {
      const view = bytes.subarray(Math.min(skip, bytes.length));
      assert.is(crc32c(view), crc32cBitwise(view));
    }),
    { numRuns: 500 },
  );
});

test('seed chains: crc32c(b, crc32c(a)) equals crc32c(a ++ b)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(200), (bytes, cut) => {
      const at = Math.min(cut, bytes.length);
      assert.is(crc32c(bytes.subarray(at), crc32c(bytes.subarray(0, at))), crc32c(bytes));
    }),
    { numRuns: 300 },
  );
});

test('formatCrc prints eight hex digits', () => {
  assert.is(formatCrc(0x1a2b), '0x00001a2b');
  assert.is(formatCrc(0xe3069283), '0xe3069283');
});

test.run();
