import { createHash, type Hash } from 'node:crypto';
import binding from 'zstd-napi/binding.js';
import { BlobType } from './blob-index.js';
import { SEAL_OVERHEAD, seal, sealInto } from './crypto.js';
import { ENCRYPTED_FORMAT, PLAIN_FORMAT } from './format.js';
import { PACK_HEADER_AAD, packHeader } from './pack.js';

/**
 * Data packs assembled on a codec worker (codec-worker.ts): each blob is compressed (and sealed) straight
 * into the pack's buffer and fed to the pack's hash while it is still in the cache, so a file's bytes are
 * read, hashed, compressed and hashed again on one thread and never copied to the main thread: a pack is
 * filled in one of the worker's two pack slots, memory shared with the main thread (SharedArrayBuffer), which
 * writes the finished pack from there, indexes it and frees the slot (an atomic flag). Nothing is transferred
 * or allocated per pack, so neither thread's garbage collector runs for them, and a worker's memory for packs
 * is two slots whatever the size of the backup: a worker that finds both slots still being written waits.
 * Packs are kept apart per session (one backup's saver), so that concurrent backups never share a pack.
 */

/**
 * A finished pack as posted to the main thread: `body` (the slot, shared) holds the version byte and the
 * blobs; `release(pack)` once it is written hands the slot back.
 */
export interface FinishedPack {
  op: 'pack';
  session: number;
  /** SHA-256 of body[0, bodyBytes) then header, hex: the pack's name. */
  id: string;
  body: SharedArrayBuffer;
  bodyBytes: number;
  /** The worker's slot flags (1: being written) and this pack's slot. */
  flags: SharedArrayBuffer;
  slot: number;
  header: Uint8Array;
  /** Per blob, in order: id (32 bytes each), zstd or raw (1/0), stored length, raw length. */
  ids: Uint8Array;
  zstd: Uint8Array;
  lengths: Uint32Array;
  raws: Uint32Array;
}

interface OpenPack {
  slot: number;
  buf: Buffer;
  used: number;
  hash: Hash;
  ids: Buffer[];
  zstd: number[];
  lengths: number[];
  raws: number[];
}

/**
 * A base64 body (an attachment, cut out of its message by mime-cuts.ts) is most often a compressed file (PDF,
 * image, office document, archive) encoded: what zstd gains on it is the entropy coding of its 64 letters, the
 * same at level 1 as at 3, and level 1 takes a sixth less time. Used when the repository's level is 3 or below;
 * a higher configured level is kept for every blob. Readers decode a zstd frame whatever its level.
 */
const BASE64_LEVEL = 1;
/** How much of a blob's start is looked at; a body is at least MIN_MIME_BODY (4 KiB). */
const BASE64_PROBE = 256;
const BASE64_MIN = 4096;
const BASE64_BYTES = (() => {
  const t = new Uint8Array(256);
  for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n') t[c.charCodeAt(0)] = 1;
  return t;
})();

/** Whether a blob looks like a base64 body: long enough, and its start only base64 letters and line ends. */
export function looksBase64(raw: Uint8Array): boolean {
  if (raw.length < BASE64_MIN) return false;
  for (let i = 0; i < BASE64_PROBE; i++) if (BASE64_BYTES[raw[i]] === 0) return false;
  return true;
}

/** Pack slots of a worker: one filling while the other is written (one more per other open session). */
const SLOTS = 2;
const MAX_SLOTS = 16;
const FREE = 0;
const WRITING = 1;

/** The main thread's side: a written pack's slot back to its worker (which may be waiting for it). */
export function releasePack(pack: Pick<FinishedPack, 'flags' | 'slot'>): void {
  const flags = new Int32Array(pack.flags);
  Atomics.store(flags, pack.slot, FREE);
  Atomics.notify(flags, pack.slot);
}

export class PackAssembly {
  private readonly open = new Map<number, OpenPack>();
  private readonly slots: { sab: SharedArrayBuffer; buf: Buffer; inUse: boolean }[] = [];
  private readonly flags = new Int32Array(new SharedArrayBuffer(4 * MAX_SLOTS));
  /** Slots handed to the main thread, oldest first: the one to wait for when none is free. */
  private readonly writing: number[] = [];
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
    const level = this.level <= 3 && looksBase64(raw) ? Math.min(this.level, BASE64_LEVEL) : this.level;
    if (this.encryptKey) {
      // Compressed into the scratch buffer, then sealed into the pack: one pass over each.
      const b = binding.compressBound(raw.length);
      if (this.scratch.length < b) this.scratch = Buffer.allocUnsafe(b);
      const n = raw.length > 0 ? this.cctx.compress(this.scratch, raw, level) : 0;
      zstd = n < raw.length;
      stored = sealInto(this.encryptKey, zstd ? this.scratch.subarray(0, n) : raw, p.buf, p.used);
    } else {
      const n = raw.length > 0 ? this.cctx.compress(p.buf.subarray(p.used), raw, level) : 0;
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
      if (p) this.slots[p.slot].inUse = false;
      return;
    }
    const entries = p.ids.map((id, i) => ({ id, type: BlobType.Data, zstd: p.zstd[i] === 1, length: p.lengths[i], rawLength: p.raws[i] }));
    const key = this.encryptKey;
    const header = Buffer.concat(packHeader(entries, key ? (h) => seal(key, h, PACK_HEADER_AAD) : null));
    p.hash.update(header);
    Atomics.store(this.flags, p.slot, WRITING);
    this.slots[p.slot].inUse = false;
    this.writing.push(p.slot);
    this.emit({
      op: 'pack',
      session,
      id: p.hash.digest('hex'),
      body: this.slots[p.slot].sab,
      bodyBytes: p.used,
      flags: this.flags.buffer as SharedArrayBuffer,
      slot: p.slot,
      header,
      ids: Buffer.concat(p.ids),
      zstd: Uint8Array.from(p.zstd),
      lengths: Uint32Array.from(p.lengths),
      raws: Uint32Array.from(p.raws),
    });
  }

  private start(capacity: number): OpenPack {
    const slot = this.freeSlot();
    let s = this.slots[slot];
    if (!s || s.buf.length < capacity) {
      // A first pack, or a blob larger than a pack: a slot of that size (memory shared with the main thread).
      if (s) this.dropped(s.buf.length);
      const sab = new SharedArrayBuffer(capacity);
      s = this.slots[slot] = { sab, buf: Buffer.from(sab), inUse: false };
    }
    s.inUse = true;
    const buf = s.buf;
    buf[0] = this.encryptKey ? ENCRYPTED_FORMAT : PLAIN_FORMAT;
    const hash = createHash('sha256').update(buf.subarray(0, 1));
    return { slot, buf, used: 1, hash, ids: [], zstd: [], lengths: [], raws: [] };
  }

  /** A slot neither filling nor being written; waits for the oldest write when there is none. */
  private freeSlot(): number {
    for (;;) {
      for (let i = this.writing.length - 1; i >= 0; i--) if (Atomics.load(this.flags, this.writing[i]) === FREE) this.writing.splice(i, 1);
      const slots = Math.min(MAX_SLOTS, Math.max(SLOTS, this.open.size + 1));
      for (let k = 0; k < slots; k++) if (!this.slots[k]?.inUse && !this.writing.includes(k)) return k;
      // Both slots taken: the other session's open pack, or packs being written. Wait for the oldest write,
      // a while at a time so that a worker being terminated is not stuck here.
      const oldest = this.writing[0];
      if (oldest === undefined) throw new Error(`no pack slot free and none being written: more than ${MAX_SLOTS - 1} backups at once`);
      Atomics.wait(this.flags, oldest, WRITING, 100);
    }
  }
}
