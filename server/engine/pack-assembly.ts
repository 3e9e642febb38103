import { createHash, type Hash } from 'node:crypto';
import binding from 'zstd-napi/binding.js';
import { BlobType } from './blob-index.js';
import { SEAL_OVERHEAD, seal, sealInto } from './crypto.js';
import { ENCRYPTED_FORMAT, PLAIN_FORMAT } from './format.js';
import { PACK_HEADER_AAD, packHeader } from './pack.js';

/**
 * Data packs assembled on a codec worker (codec-worker.ts): each blob is compressed (and sealed) straight
 * into the pack's buffer and fed to the pack's hash while it is still in the cache, so a file's bytes are
 * read, hashed, compressed and hashed again on one thread and never cross to the main thread but once, in
 * a finished pack (transferred, not copied). The main thread writes it, indexes it and hands the buffer
 * back for the next pack: a worker's memory stays at a pack or two whatever the size of the backup.
 * Packs are kept apart per session (one backup's saver), so that concurrent backups never share a pack.
 */

/** A finished pack as posted to the main thread: `body` (transferred) holds the version byte and the blobs. */
export interface FinishedPack {
  op: 'pack';
  session: number;
  /** SHA-256 of body[0, bodyBytes) then header, hex: the pack's name. */
  id: string;
  body: ArrayBuffer;
  bodyBytes: number;
  header: Uint8Array;
  /** Per blob, in order: id (32 bytes each), zstd or raw (1/0), stored length, raw length. */
  ids: Uint8Array;
  zstd: Uint8Array;
  lengths: Uint32Array;
  raws: Uint32Array;
}

interface OpenPack {
  buf: Buffer;
  used: number;
  hash: Hash;
  ids: Buffer[];
  zstd: number[];
  lengths: number[];
  raws: number[];
}

/** Spare pack buffers a worker keeps for its next packs (handed back by the main thread after a write). */
const SPARE_BUFFERS = 1;

export class PackAssembly {
  private readonly open = new Map<number, OpenPack>();
  private spares: Buffer[] = [];
  private scratch = Buffer.allocUnsafe(0);

  constructor(
    private readonly cctx: InstanceType<typeof binding.CCtx>,
    private readonly level: number,
    /** An encrypted repository's blob key: blobs and headers are sealed with it. */
    private readonly encryptKey: Buffer | null,
    private readonly emit: (pack: FinishedPack) => void,
    /** Told of each buffer let go of (its size), for the worker to collect them in time. */
    private readonly dropped: (bytes: number) => void = () => {},
  ) {}

  /** Compresses `raw` into the session's data pack; a pack that reaches `packSize` is finished and emitted. */
  add(session: number, packSize: number, id: Buffer, raw: Buffer): void {
    const bound = binding.compressBound(raw.length) + (this.encryptKey ? SEAL_OVERHEAD : 0);
    let p = this.open.get(session);
    // Closed before it would overflow: a pack is never grown (nor copied).
    if (p && p.used + bound > p.buf.length) {
      this.finish(session);
      p = undefined;
    }
    if (!p) {
      p = this.start(Math.max(packSize, 1 + bound));
      this.open.set(session, p);
    }
    let stored: number;
    let zstd: boolean;
    if (this.encryptKey) {
      // Compressed into the scratch buffer, then sealed into the pack: one pass over each.
      const b = binding.compressBound(raw.length);
      if (this.scratch.length < b) this.scratch = Buffer.allocUnsafe(b);
      const n = raw.length > 0 ? this.cctx.compress(this.scratch, raw, this.level) : 0;
      zstd = n < raw.length;
      stored = sealInto(this.encryptKey, zstd ? this.scratch.subarray(0, n) : raw, p.buf, p.used);
    } else {
      const n = raw.length > 0 ? this.cctx.compress(p.buf.subarray(p.used), raw, this.level) : 0;
      zstd = n < raw.length;
      if (!zstd) raw.copy(p.buf, p.used);
      stored = zstd ? n : raw.length;
    }
    p.hash.update(p.buf.subarray(p.used, p.used + stored));
    p.used += stored;
    p.ids.push(id);
    p.zstd.push(zstd ? 1 : 0);
    p.lengths.push(stored);
    p.raws.push(raw.length);
    if (p.used >= packSize) this.finish(session);
  }

  /** Emits the session's open pack, if it has blobs. */
  finish(session: number): void {
    const p = this.open.get(session);
    this.open.delete(session);
    if (!p || p.ids.length === 0) {
      if (p) this.recycle(p.buf.buffer as ArrayBuffer);
      return;
    }
    const entries = p.ids.map((id, i) => ({ id, type: BlobType.Data, zstd: p.zstd[i] === 1, length: p.lengths[i], rawLength: p.raws[i] }));
    const key = this.encryptKey;
    const header = Buffer.concat(packHeader(entries, key ? (h) => seal(key, h, PACK_HEADER_AAD) : null));
    p.hash.update(header);
    this.emit({
      op: 'pack',
      session,
      id: p.hash.digest('hex'),
      body: p.buf.buffer as ArrayBuffer,
      bodyBytes: p.used,
      header,
      ids: Buffer.concat(p.ids),
      zstd: Uint8Array.from(p.zstd),
      lengths: Uint32Array.from(p.lengths),
      raws: Uint32Array.from(p.raws),
    });
  }

  /** A pack buffer back from the main thread once its pack is written. */
  recycle(body: ArrayBuffer): void {
    if (this.spares.length < SPARE_BUFFERS) this.spares.push(Buffer.from(body));
    else this.dropped(body.byteLength);
  }

  private start(capacity: number): OpenPack {
    const i = this.spares.findIndex((b) => b.length >= capacity);
    // A buffer that owns its whole ArrayBuffer, so that it can be transferred.
    const buf = i >= 0 ? this.spares.splice(i, 1)[0] : Buffer.allocUnsafeSlow(capacity);
    buf[0] = this.encryptKey ? ENCRYPTED_FORMAT : PLAIN_FORMAT;
    const hash = createHash('sha256').update(buf.subarray(0, 1));
    return { buf, used: 1, hash, ids: [], zstd: [], lengths: [], raws: [] };
  }
}
