/**
 * Bounded, exactly counted reading of a UTF-8 file as text: the base of the CSV and NDJSON readers.
 */
import type { FileHandle } from 'node:fs/promises';
import { invariant } from '../../errors.js';
import { UsageError } from '../errors.js';
import { firstInvalidUtf8, hexPrefix } from '../../store/utf8.js';

/**
 * Decodes a file as UTF-8 in bounded chunks and keeps the not-yet-consumed text.
 *
 * `text[pos..]` is the unconsumed text. Every chunk handed to the decoder ends on a character boundary
 * (up to three bytes of an incomplete character are carried into the next read), so the byte offset of
 * any position in `text` is known exactly: `byteOffset(i)` adds the UTF-8 length of the characters since
 * the last position asked for, and is a plain addition while the text is pure ASCII.
 */
export class TextSource {
  text = '';
  pos = 0;
  eof = false;
  /** Changes whenever `text` is replaced. */
  version = 0;
  /** True while `text` holds only ASCII, so that a character index is also a byte count. */
  private ascii = true;
  /** Byte offset of `text[markChar]`; `markChar` only moves forward between refills. */
  private markChar = 0;
  private markByte: number;
  private filePos: number;
  /** Bytes of an incomplete character kept at the start of `buffer` for the next read. */
  private carry = 0;
  /** Bytes decoded by the last `readChunk`. */
  private lastChunkBytes = 0;
  private readonly buffer: Buffer;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  constructor(
    private readonly fh: FileHandle,
    private readonly path: string,
    startByte: number,
    private readonly chunkBytes: number,
    private readonly rowCharsMax: number,
  ) {
    this.buffer = Buffer.allocUnsafe(chunkBytes + 4);
    this.markByte = startByte;
    this.filePos = startByte;
  }

  /** Byte offset in the file of `text[charIndex]`. `charIndex` must not go backwards between refills. */
  byteOffset(charIndex: number): number {
    invariant(charIndex >= this.markChar, `byte offsets asked out of order (${charIndex} < ${this.markChar})`);
    if (this.ascii) return this.markByte + (charIndex - this.markChar);
    this.markByte += utf8Length(this.text, this.markChar, charIndex);
    this.markChar = charIndex;
    return this.markByte;
  }

  /**
   * At the start of the file, reads the first chunk and steps over a UTF-8 byte order mark if the
   * file starts with one: it marks the encoding, it is not data.
   */
  async skipByteOrderMark(): Promise<void> {
    invariant(this.filePos === 0 && this.text.length === 0, 'a byte order mark is looked for at the start of the file only');
    while (this.text.length === 0 && !this.eof) await this.refill(1);
    if (this.text.charCodeAt(0) === 0xfeff) this.pos = 1;
  }

  /**
   * Drops `text[0..pos)` and appends the next chunk of the file. Sets `eof` (and leaves the text as it
   * was) when the file has no more bytes. `rowLine` names the row being read, for the runaway-row error.
   */
  async refill(rowLine: number): Promise<void> {
    if (this.text.length - this.pos > this.rowCharsMax) {
      throw new UsageError(
        `${this.path}:${rowLine}: expected a row of at most ${this.rowCharsMax} characters, found a longer one (an unclosed quote?)`,
      );
    }
    const keptByte = this.byteOffset(this.pos);
    let tail = this.text.slice(this.pos);
    let tailAscii = this.ascii || utf8Length(tail, 0, tail.length) === tail.length;
    const decoded = await this.readChunk();
    if (decoded === undefined) {
      this.eof = true;
    } else {
      tail = tail.length === 0 ? decoded : tail + decoded;
      tailAscii = tailAscii && decoded.length === this.lastChunkBytes;
    }
    this.text = tail;
    this.version++;
    this.pos = 0;
    this.ascii = tailAscii;
    this.markChar = 0;
    this.markByte = keptByte;
  }

  /** Reads and decodes up to `chunkBytes`, ending on a character boundary; undefined at end of file. */
  private async readChunk(): Promise<string | undefined> {
    for (;;) {
      const { bytesRead } = await this.fh.read(this.buffer, this.carry, this.chunkBytes, this.filePos);
      const total = this.carry + bytesRead;
      if (bytesRead === 0) {
        if (this.carry > 0) return this.invalidUtf8(this.filePos - this.carry, this.buffer.subarray(0, this.carry));
        return undefined;
      }
      const chunkStart = this.filePos - this.carry;
      this.filePos += bytesRead;
      const cut = completeUtf8Prefix(this.buffer, total);
      let text: string;
      try {
        text = this.decoder.decode(this.buffer.subarray(0, cut));
      } catch {
        const bad = Math.max(0, firstInvalidUtf8(this.buffer.subarray(0, cut)));
        return this.invalidUtf8(chunkStart + bad, this.buffer.subarray(bad, cut));
      }
      this.lastChunkBytes = cut;
      this.carry = total - cut;
      this.buffer.copyWithin(0, cut, total);
      if (cut > 0) return text;
      // Fewer than four bytes arrived and they do not end a character yet: read on.
    }
  }

  /** Throws the error for bytes that are not UTF-8 at file offset `at`, `from` holding them and what follows. */
  private async invalidUtf8(at: number, from: Uint8Array): Promise<never> {
    const shown = hexPrefix(from.subarray(0, 4));
    const line = await lineAt(this.fh, at, this.chunkBytes);
    throw new UsageError(`${this.path}:${line}: expected UTF-8 text, found the bytes ${shown} at byte ${at} (the file may be binary or in another encoding)`);
  }
}

/** Length of the longest prefix of `bytes[0..end)` that does not end inside a UTF-8 sequence. */
function completeUtf8Prefix(bytes: Uint8Array, end: number): number {
  // Look back at most 3 bytes for the lead byte of the last sequence.
  for (let i = end - 1; i >= 0 && i >= end - 4; i--) {
    const b = bytes[i]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte
    const need = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return i + need > end ? i : end;
  }
  return end; // only continuation bytes: invalid, and the decoder will say so
}

/** UTF-8 byte length of `s[from..to)`. A lone surrogate would be 3 bytes, but decoded UTF-8 has none. */
export function utf8Length(s: string, from: number, to: number): number {
  let bytes = to - from;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    // 2 bytes below U+0800; a surrogate half is half of a 4-byte character; the rest of the BMP is 3.
    bytes += c < 0x800 ? 1 : c >= 0xd800 && c <= 0xdfff ? 1 : 2;
  }
  return bytes;
}

/** 1 + the number of line feeds in `fh[0..end)`, read in bounded chunks. */
export async function lineAt(fh: FileHandle, end: number, chunkBytes: number): Promise<number> {
  const buffer = Buffer.allocUnsafe(chunkBytes);
  let line = 1;
  for (let pos = 0; pos < end; ) {
    const { bytesRead } = await fh.read(buffer, 0, Math.min(chunkBytes, end - pos), pos);
    if (bytesRead === 0) break;
    for (let i = buffer.indexOf(10, 0); i >= 0 && i < bytesRead; i = buffer.indexOf(10, i + 1)) line++;
    pos += bytesRead;
  }
  return line;
}
