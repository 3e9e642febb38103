import fs from 'node:fs';
import binding from 'zstd-napi/binding.js';
import type { RestoreBlob, RestoreResult, RestoreWrite } from './codec-pool.js';
import { blobIdOf, tryOpen } from './crypto.js';
import type { Dictionaries } from './dictionaries.js';
import type { RestoreTarget } from './restore-target.js';
import { decompressBounded } from './validate.js';

const NOT_DECRYPTED = 'cannot be decrypted (damaged or altered: its authentication tag does not match)';
const MISMATCH = 'content does not match its id';

/**
 * The last step of a restore, for one range of a pack: each blob opened (encrypted repository),
 * decompressed (no further than its declared size), verified against its id, and written into every
 * file that wants it. A codec worker runs it for most restores; the restorer's own thread for a small
 * one, where starting workers would cost more than the work (restorer.ts).
 */
export class RestoreWriter {
  private readonly dctx = new binding.DCtx();
  private scratch: Buffer = Buffer.allocUnsafe(0);
  private segment: Buffer = Buffer.allocUnsafe(0);
  /**
   * Bytes of buffers let go of for bigger ones since the owner last looked (and set it back to 0): external
   * memory that V8 collects late, which a worker collects once enough piled up.
   */
  dropped = 0;

  /** `dictionaries`: those of the repository that this thread was given, for blobs of compression 2. */
  constructor(
    private readonly key: { encrypt: Buffer; id: Buffer } | null,
    private readonly dictionaries: Dictionaries | null = null,
  ) {}

  /**
   * `length` bytes of a local pack file at `start`, into a buffer kept from call to call (valid until the
   * next one); one grown past `keep` for a large blob is let go of after use (see `trim`).
   */
  readLocal(file: string, start: number, length: number): Buffer {
    if (this.segment.length < length) this.segment = this.replaced(this.segment, length);
    const into = this.segment.subarray(0, length);
    readRange(file, into, start);
    return into;
  }

  /** Lets go of a read buffer grown past `keep` bytes for one large blob: the next ranges are small again. */
  trim(keep: number): void {
    if (this.segment.length > keep) this.segment = this.replaced(this.segment, 0);
  }

  /** Writes the blobs of `input` (stored bytes at the blobs' offsets) where `writes` say; errors per blob and per write. */
  write(input: Buffer, blobs: RestoreBlob[], writes: RestoreWrite[], target: RestoreTarget, asRoot: boolean): RestoreResult {
    const byBlob: number[][] = blobs.map(() => []);
    writes.forEach((w, i) => byBlob[w.blob].push(i));
    const blobErrors: (string | null)[] = [];
    const writeErrors: (string | null)[] = new Array(writes.length).fill(null);
    blobs.forEach((b, bi) => {
      const raw = this.open(input.subarray(b.off, b.off + b.len), b);
      blobErrors.push(typeof raw === 'string' ? raw : null);
      if (typeof raw === 'string') return;
      for (const i of byBlob[bi]) {
        const w = writes[i];
        let fd = -1;
        try {
          if (w.whole) {
            fd = target.createFile(w.path);
            writeAll(fd, raw, 0);
            if (asRoot) fs.fchownSync(fd, w.uid, w.gid);
            fs.fchmodSync(fd, w.mode);
            fs.futimesSync(fd, w.mtime, w.mtime);
          } else {
            fd = target.openFile(w.path);
            writeAll(fd, raw, w.at);
          }
        } catch (e) {
          writeErrors[i] = (e as Error | undefined)?.message || String(e);
        } finally {
          if (fd >= 0) fs.closeSync(fd);
        }
      }
    });
    return { blobErrors, writeErrors };
  }

  /**
   * A stored blob's verdict (`check --read-data`): null when it opens, decompresses (no further than its
   * declared size) and hashes to its id; otherwise what is wrong, in check's words.
   */
  verdict(sealed: Buffer, zstd: boolean, raw: number, id: Uint8Array, dictionary?: string): string | null {
    const r = this.unpack(sealed, zstd, raw, dictionary);
    if (typeof r === 'string') return r;
    return this.idOf(r).equals(id) ? null : MISMATCH;
  }

  /** A blob's raw bytes (valid until the next call), or why they cannot be had. */
  private open(sealed: Buffer, b: RestoreBlob): Buffer | string {
    const r = this.unpack(sealed, b.zstd, b.raw, b.dictionary);
    if (typeof r === 'string') return r;
    return this.idOf(r).toString('hex') === b.id ? r : MISMATCH;
  }

  /** Opened (encrypted repository) and decompressed into the scratch buffer; or why not. */
  private unpack(sealed: Buffer, zstd: boolean, rawLength: number, dictionary?: string): Buffer | string {
    const stored = this.key ? tryOpen(this.key.encrypt, sealed) : sealed;
    if (!stored) return NOT_DECRYPTED;
    if (!zstd) return stored;
    // Compression 2: the dictionary was handed to this thread before the job (Repository.loadDictionaries).
    if (dictionary !== undefined && !this.dictionaries?.has(dictionary)) return `compressed with dictionary ${dictionary.slice(0, 12) || '(named by no index)'}, which is not in the repository`;
    // The declared size was bounded (blobProblem) before the job was made.
    if (this.scratch.length < rawLength) this.scratch = this.replaced(this.scratch, rawLength);
    try {
      return decompressBounded(this.dctx, stored, rawLength, this.scratch, dictionary !== undefined ? this.dictionaries!.ddict(dictionary) : undefined);
    } catch (e) {
      return `cannot decompress (${(e as Error).message})`;
    }
  }

  private idOf(raw: Buffer): Buffer {
    return blobIdOf(this.key?.id ?? null, raw);
  }

  private replaced(old: Buffer, size: number): Buffer {
    this.dropped += old.length;
    return Buffer.allocUnsafe(size);
  }
}

/** Fills `into` from `path` at `position`; a file shorter than that is an error, as the storage's read says. */
function readRange(path: string, into: Buffer, position: number): void {
  const fd = fs.openSync(path, 'r');
  try {
    for (let done = 0; done < into.length; ) {
      const n = fs.readSync(fd, into, done, into.length - done, position + done);
      if (n === 0) throw new Error(`reading data ${path.split('/').pop()!.slice(0, 12)}: truncated (wanted ${position}+${into.length})`);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

function writeAll(fd: number, buf: Buffer, at: number): void {
  let done = 0;
  while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done, at + done);
}
