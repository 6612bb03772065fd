/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum used by iSCSI, ext4, RocksDB and
 * SlateDB. Every checkpoint chunk and footer carries one.
 *
 * Slice-by-8: eight 256-entry tables let the main loop fold eight input bytes per step with eight table
 * look-ups and no data-dependent branches. The tables are built once at module load (8 KiB).
 */

const POLYNOMIAL_REFLECTED = 0x82f63b78;
const TABLE_ENTRIES = 256;
const SLICES = 8;

const TABLES: Uint32Array = buildTables();

function buildTables(): Uint32Array {
  const t = new Uint32Array(TABLE_ENTRIES * SLICES);
  for (let n = 0; n < TABLE_ENTRIES; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL_REFLECTED : c >>> 1;
    t[n] = c;
  }
  // Table s maps a byte to its CRC contribution when followed by s zero bytes.
  for (let s = 1; s < SLICES; s++) {
    for (let n = 0; n < TABLE_ENTRIES; n++) {
      const prev = t[(s - 1) * TABLE_ENTRIES + n];
      t[s * TABLE_ENTRIES + n] = (prev >>> 8) ^ t[prev & 0xff];
    }
  }
  return t;
}

/**
 * Returns the CRC-32C of `bytes` as an unsigned 32-bit number. `seed` is the CRC of the bytes before
 * these ones, so `crc32c(b, crc32c(a))` equals `crc32c(a ++ b)`.
 */
export function crc32c(bytes: Uint8Array, seed = 0): number {
  const t = TABLES;
  let crc = ~seed;
  let i = 0;
  const length = bytes.length;
  const blockEnd = length - (length % SLICES);
  while (i < blockEnd) {
    const lo = crc ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    crc =
      t[7 * 256 + (lo & 0xff)] ^
      t[6 * 256 + ((lo >>> 8) & 0xff)] ^
      t[5 * 256 + ((lo >>> 16) & 0xff)] ^
      t[4 * 256 + (lo >>> 24)] ^
      t[3 * 256 + bytes[i + 4]] ^
      t[2 * 256 + bytes[i + 5]] ^
      t[1 * 256 + bytes[i + 6]] ^
      t[bytes[i + 7]];
    i += SLICES;
  }
  while (i < length) {
    crc = (crc >>> 8) ^ t[(crc ^ bytes[i]) & 0xff];
    i++;
  }
  return ~crc >>> 0;
}

/** Formats a checksum the way error messages print it: `0x` and eight hex digits. */
export function formatCrc(crc: number): string {
  return '0x' + (crc >>> 0).toString(16).padStart(8, '0');
}
