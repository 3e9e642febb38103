import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { RepositoryCipher } from './crypto.js';
import { sha256, toHex } from './hash.js';
import { packHeaderBytes, parsePackHeader, type PackEntry } from './pack.js';
import { RestoreWriter } from './restore-writes.js';
import { blobProblem, type BlobLimits } from './validate.js';

/**
 * A pack's bytes as `check --read-data` reads them: its tail apart (the header), the rest front to back
 * and hashed on the way, so that a pack on a local disk is verified through a small window, never held whole.
 */
export interface PackSource {
  readonly size: number;
  /** The last `n` bytes (n <= size). */
  tail(n: number): Buffer;
  /** Bytes [start, end); `start` never goes back from one call to the next; valid until the next call. */
  range(start: number, end: number): Buffer;
  /** SHA-256 of the whole pack (what was not read yet is read now). */
  digest(): Buffer;
}

/**
 * What `check --read-data` finds wrong in one pack, as the lines it reports: its hash against its name,
 * its header against its index (`indexedBlobs`; null when no index lists the pack: only its hash is
 * checked), each blob's declared sizes, then each sane blob decompressed and hashed (`verifyBlob`: a
 * verdict, null when good). Runs on a codec worker: only these lines go back.
 */
export function packFindings(
  name: string,
  source: PackSource,
  indexedBlobs: number | null,
  limits: BlobLimits,
  cipher: RepositoryCipher | null,
  verifyBlob: (stored: Buffer, entry: PackEntry) => string | null,
): string[] {
  const what = `pack ${name.slice(0, 12)}`;
  const found: string[] = [];
  const hashFinding = () => (toHex(source.digest()) !== name ? [`${what}: content does not match its name (damaged${indexedBlobs !== null ? '' : ', and no index lists it: prune removes it'})`] : []);
  if (indexedBlobs === null) return hashFinding();
  let entries: PackEntry[];
  try {
    entries = parsePackHeader(name, source.size, headerTail(source, cipher !== null), cipher);
  } catch (err) {
    return [...hashFinding(), (err as Error).message];
  }
  if (indexedBlobs !== entries.length) found.push(`${what}: header lists ${entries.length} blobs, index ${indexedBlobs}`);
  // The header's own declarations are checked as the index's are, before anything is decompressed.
  const sane = entries.filter((e) => {
    const problem = blobProblem(e, limits);
    if (problem) found.push(`${what}: blob ${toHex(e.id).slice(0, 12)} at ${e.offset}: ${problem}`);
    return !problem;
  });
  for (const e of sane) {
    const verdict = verifyBlob(source.range(e.offset, e.offset + e.length), e);
    if (verdict) found.push(`${what}: blob ${toHex(e.id).slice(0, 12)} at ${e.offset}: ${verdict}`);
  }
  return [...hashFinding(), ...found];
}

/** The pack's last bytes holding its header, as far as its last word says and its size allows (parsePackHeader judges). */
function headerTail(source: PackSource, encrypted: boolean): Buffer {
  const last = source.tail(Math.min(source.size, 4));
  if (last.length < 4) return last;
  const need = packHeaderBytes(last.readUInt32LE(0), encrypted);
  return need > 4 && need <= source.size ? source.tail(need) : last;
}

/** A pack already in memory (read through the storage, e.g. from S3). */
export function packInMemory(data: Buffer): PackSource {
  return { size: data.length, tail: (n) => data.subarray(data.length - n), range: (s, e) => data.subarray(s, e), digest: () => sha256(data) };
}

/**
 * A pack file on a local disk, read front to back through one window (`window` bytes, or a blob's
 * length when it is larger) that the caller keeps from pack to pack. `close` when done.
 */
export class PackFile implements PackSource {
  readonly size: number;
  private readonly fd: number;
  private readonly hash = createHash('sha256');
  /** File offset of buf[0], and how many bytes of buf are valid; everything before winStart + winLen is hashed. */
  private winStart = 0;
  private winLen = 0;

  constructor(
    private readonly path: string,
    private buf: Buffer,
  ) {
    this.fd = openSync(path, 'r');
    try {
      this.size = fstatSync(this.fd).size;
    } catch (err) {
      closeSync(this.fd);
      throw err;
    }
  }

  /** The window, perhaps grown for a large blob: the caller keeps it for the next pack. */
  get window(): Buffer {
    return this.buf;
  }

  tail(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    this.readFully(out, 0, n, this.size - n);
    return out;
  }

  range(start: number, end: number): Buffer {
    const have = this.winStart + this.winLen;
    if (start >= this.winStart && end <= have) return this.buf.subarray(start - this.winStart, end - this.winStart);
    if (start < have) {
      // Keep the part of the window the range starts in.
      this.buf.copy(this.buf, 0, start - this.winStart, this.winLen);
      this.winLen = have - start;
    } else {
      this.skipTo(start);
      this.winLen = 0;
    }
    this.winStart = start;
    if (this.buf.length < end - start) {
      const bigger = Buffer.allocUnsafe(end - start);
      this.buf.copy(bigger, 0, 0, this.winLen);
      this.buf = bigger;
    }
    // As much as the window holds, for fewer reads.
    const fill = Math.min(this.buf.length, this.size - this.winStart);
    const at = this.winLen;
    this.readFully(this.buf, at, fill - at, this.winStart + at);
    this.hash.update(this.buf.subarray(at, fill));
    this.winLen = fill;
    return this.buf.subarray(0, end - start);
  }

  digest(): Buffer {
    this.skipTo(this.size);
    this.winStart = this.size;
    this.winLen = 0;
    return this.hash.digest();
  }

  close(): void {
    closeSync(this.fd);
  }

  /** Reads and hashes what lies between the window's end and `pos`. */
  private skipTo(pos: number): void {
    for (let at = this.winStart + this.winLen; at < pos; ) {
      const n = Math.min(this.buf.length, pos - at);
      this.readFully(this.buf, 0, n, at);
      this.hash.update(this.buf.subarray(0, n));
      at += n;
    }
  }

  private readFully(into: Buffer, offset: number, length: number, position: number): void {
    for (let done = 0; done < length; ) {
      const n = readSync(this.fd, into, offset + done, length - done, position + done);
      if (n === 0) throw new Error(`reading data ${this.path.split('/').pop()!.slice(0, 12)}: unexpected end at ${position + done}`);
      done += n;
    }
  }
}

/** How much of a local pack a verifier reads at once. */
const PACK_WINDOW = 1 << 20;

/**
 * Verifies whole packs for `check --read-data` (packFindings), on a codec worker or on the check's own thread:
 * a pack on a local disk through a window kept from pack to pack, one read elsewhere from memory; every blob
 * opened, decompressed and hashed as a restore does (RestoreWriter.verdict).
 */
export class PackVerifier {
  private window: Buffer = Buffer.allocUnsafe(0);
  /** Bytes of buffers let go of (a window grown for a large blob, the writer's): the owner collects when they pile up. */
  dropped = 0;

  /** `writer`: the thread's own (a codec worker shares its one with restores: one scratch buffer). */
  constructor(
    private readonly cipher: RepositoryCipher | null,
    private readonly writer: RestoreWriter = new RestoreWriter(cipher?.key ?? null),
  ) {}

  /**
   * The findings of one pack, in check's words; throws when a local pack cannot be opened or read. `dictionary`:
   * the one the index names for the pack; a blob of compression 2 is read with it (the writer holds it).
   */
  verify(name: string, from: { file: string } | { data: Buffer }, indexedBlobs: number | null, limits: BlobLimits, dictionary?: string): string[] {
    const verdict = (stored: Buffer, e: PackEntry) =>
      this.writer.verdict(stored, e.zstd, e.rawLength, e.id, e.dictionary !== undefined ? (dictionary ?? '') : undefined);
    try {
      if ('data' in from) return packFindings(name, packInMemory(from.data), indexedBlobs, limits, this.cipher, verdict);
      if (this.window.length === 0) this.window = Buffer.allocUnsafe(PACK_WINDOW);
      const source = new PackFile(from.file, this.window);
      try {
        return packFindings(name, source, indexedBlobs, limits, this.cipher, verdict);
      } finally {
        source.close();
        // A window grown for a large blob is not kept: the next pack starts small again.
        if (source.window.length > PACK_WINDOW) this.dropped += source.window.length;
        this.window = source.window.length > PACK_WINDOW ? Buffer.allocUnsafe(0) : source.window;
      }
    } finally {
      this.dropped += this.writer.dropped;
      this.writer.dropped = 0;
    }
  }
}
