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
 * filled in a pack slot, memory shared with the main thread (SharedArrayBuffer), which writes the finished
 * pack from there, indexes it and frees the slot (an atomic flag). Nothing is transferred or allocated per
 * pack, so neither thread's garbage collector runs for them.
 * Packs are kept apart per session (one backup's saver), so that concurrent backups never share a pack. A
 * session's slots are shared by all the workers: one more than there are workers (`sessionSlots`), so that
 * each can fill one while another is written, and its memory for packs is bounded by (workers + 1) packs
 * whatever the size of the backup. A worker that finds no slot free waits for a write to end.
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
  /** The session's slot flags (see SessionSlots) and this pack's slot. */
  flags: SharedArrayBuffer;
  slot: number;
  header: Uint8Array;
  /** Per blob, in order: id (32 bytes each), zstd or raw (1/0), stored length, raw length. */
  ids: Uint8Array;
  zstd: Uint8Array;
  lengths: Uint32Array;
  raws: Uint32Array;
}

/**
 * A session's pack slots, made on the main thread and shared with every worker: `flags` holds one Int32
 * per slot (FREE, FILLING, WRITING), then a count of slots freed, which a worker waiting for one watches.
 * Slots are untouched memory until a pack fills them.
 */
export interface SessionSlots {
  slots: SharedArrayBuffer[];
  flags: SharedArrayBuffer;
}

const FREE = 0;
const FILLING = 1;
const WRITING = 2;

/** Slots for a session of `workers` workers: each can fill one while one more is being written. */
export function sessionSlots(workers: number, packSize: number): SessionSlots {
  const slots = Array.from({ length: workers + 1 }, () => new SharedArrayBuffer(packSize));
  return { slots, flags: new SharedArrayBuffer(4 * (slots.length + 1)) };
}

/** The main thread's side: a written pack's slot back to the workers (one may be waiting for it). */
export function releasePack(pack: Pick<FinishedPack, 'flags' | 'slot'>): void {
  const flags = new Int32Array(pack.flags);
  Atomics.store(flags, pack.slot, FREE);
  Atomics.add(flags, flags.length - 1, 1);
  Atomics.notify(flags, flags.length - 1);
}

interface OpenPack {
  slot: number;
  /** The slot's memory, or a buffer of its own for a blob larger than a slot. */
  body: SharedArrayBuffer;
  buf: Buffer;
  used: number;
  hash: Hash;
  ids: Buffer[];
  zstd: number[];
  lengths: number[];
  raws: number[];
}

interface Session {
  slots: SharedArrayBuffer[];
  flags: Int32Array;
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

export class PackAssembly {
  private readonly open = new Map<number, OpenPack>();
  private readonly sessions = new Map<number, Session>();
  private scratch = Buffer.allocUnsafe(0);

  constructor(
    private readonly cctx: InstanceType<typeof binding.CCtx>,
    private readonly level: number,
    /** An encrypted repository's blob key: blobs and headers are sealed with it. */
    private readonly encryptKey: Buffer | null,
    private readonly emit: (pack: FinishedPack) => void,
    /** Told of each buffer let go of (its size), for the worker to collect them in time. */
    private readonly dropped: (bytes: number) => void = () => {},
    /**
     * Told of the bytes each blob sealed: the cipher hands its output in buffers of its own, copied into the
     * pack and garbage at once, which the worker collects often and cheaply (a young-generation collection)
     * rather than let them pile up to the engine's external-memory limit.
     */
    private readonly sealed: (bytes: number) => void = () => {},
  ) {}

  /** The session's slots (sessionSlots), before any of its blobs. */
  join(session: number, shared: SessionSlots): void {
    this.sessions.set(session, { slots: shared.slots, flags: new Int32Array(shared.flags) });
  }

  /** Emits the session's open pack, if it has blobs, and forgets the session. */
  end(session: number): void {
    this.finish(session);
    this.sessions.delete(session);
  }

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
      p = this.start(session, 1 + bound);
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
      this.sealed(stored);
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
    if (!p) return;
    const flags = this.sessions.get(session)!.flags;
    if (p.ids.length === 0) {
      releasePack({ flags: flags.buffer as SharedArrayBuffer, slot: p.slot });
      return;
    }
    const entries = p.ids.map((id, i) => ({ id, type: BlobType.Data, zstd: p.zstd[i] === 1, length: p.lengths[i], rawLength: p.raws[i] }));
    const key = this.encryptKey;
    const header = Buffer.concat(packHeader(entries, key ? (h) => seal(key, h, PACK_HEADER_AAD) : null));
    p.hash.update(header);
    Atomics.store(flags, p.slot, WRITING);
    // A pack of its own size is let go of here once posted (the main thread keeps it until written).
    if (p.body !== this.sessions.get(session)!.slots[p.slot]) this.dropped(p.body.byteLength);
    this.emit({
      op: 'pack',
      session,
      id: p.hash.digest('hex'),
      body: p.body,
      bodyBytes: p.used,
      flags: flags.buffer as SharedArrayBuffer,
      slot: p.slot,
      header,
      ids: Buffer.concat(p.ids),
      zstd: Uint8Array.from(p.zstd),
      lengths: Uint32Array.from(p.lengths),
      raws: Uint32Array.from(p.raws),
    });
  }

  /** A pack in a free slot of the session; `least`: the room its first blob needs. */
  private start(session: number, least: number): OpenPack {
    const s = this.sessions.get(session);
    if (!s) throw new Error(`pack session ${session} was not opened on this worker`);
    const slot = this.claim(s);
    let body = s.slots[slot];
    if (body.byteLength < least) {
      // A blob larger than a pack: a pack of its own size (the slot is still taken, so memory stays bounded).
      body = new SharedArrayBuffer(least);
    }
    const buf = Buffer.from(body);
    buf[0] = this.encryptKey ? ENCRYPTED_FORMAT : PLAIN_FORMAT;
    const hash = createHash('sha256').update(buf.subarray(0, 1));
    return { slot, body, buf, used: 1, hash, ids: [], zstd: [], lengths: [], raws: [] };
  }

  /** A free slot of the session, taken; waits for a write to end when there is none. */
  private claim(s: Session): number {
    const freed = s.flags.length - 1;
    for (;;) {
      const seen = Atomics.load(s.flags, freed);
      for (let k = 0; k < freed; k++) if (Atomics.compareExchange(s.flags, k, FREE, FILLING) === FREE) return k;
      // Every slot filling or being written: wait until the main thread frees one, a while at a time so that
      // a worker being terminated is not stuck here.
      Atomics.wait(s.flags, freed, seen, 100);
    }
  }
}
