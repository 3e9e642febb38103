import { createHash, type Hash } from 'node:crypto';
import binding from 'zstd-napi/binding.js';
import { BlobType } from './blob-index.js';
import { SEAL_OVERHEAD, seal, sealInto } from './crypto.js';
import { ENCRYPTED_FORMAT, PLAIN_FORMAT } from './format.js';
import { PACK_HEADER_AAD, packHeader } from './pack.js';

/**
 * Data packs assembled on a codec worker (codec-worker.ts): each blob is compressed (and sealed) straight
 * into the pack and fed to the pack's hash while it is still in the cache, so a file's bytes are read, hashed,
 * compressed and hashed again on one thread and never copied to the main thread. A pack is filled a part at a
 * time, in part slots: memory shared with the main thread (SharedArrayBuffer), which appends each full part to
 * the pack's file (Storage.writeParts) and frees the slot (an atomic flag); the pack's header and name come
 * last, and the main thread commits the file under that name and indexes it. Nothing is transferred or
 * allocated per part, so neither thread's garbage collector runs for them, and no thread holds a whole pack.
 * Packs are kept apart per session (one backup's saver), so that concurrent backups never share a pack. A
 * session's slots are shared by all the workers, two per worker and one more (`sessionSlots`), so that each can
 * fill one while its last is written: its memory for packs is bounded by that many parts, whatever the size of
 * the backup or of a pack. A worker that finds no slot free waits for a write to end.
 */

/** The size of a part slot: a few per worker, however large the repository's packs. */
export const PART_BYTES = 1 << 20;

/** A full part of an open pack, as posted to the main thread: `release(part)` once appended hands the slot back. */
export interface PackPart {
  op: 'part';
  session: number;
  /** The pack it belongs to, unique in the process: its parts come in order, then its FinishedPack. */
  pack: string;
  /** The slot (shared) and how much of it the part fills. */
  body: SharedArrayBuffer;
  bytes: number;
  /** The session's slot flags (see SessionSlots) and this part's slot. */
  flags: SharedArrayBuffer;
  slot: number;
}

/**
 * The end of a pack, after all its parts: its header, to append last, and its name. Its parts hold the version
 * byte and the blobs.
 */
export interface FinishedPack {
  op: 'pack';
  session: number;
  pack: string;
  /** SHA-256 of the parts then header, hex: the pack's name. */
  id: string;
  header: Uint8Array;
  /** Per blob, in order: id (32 bytes each), zstd or raw (1/0), stored length, raw length. */
  ids: Uint8Array;
  zstd: Uint8Array;
  lengths: Uint32Array;
  raws: Uint32Array;
}

/**
 * A session's part slots, made on the main thread and shared with every worker: `flags` holds one Int32
 * per slot (FREE, FILLING, WRITING), then a count of slots freed, which a worker waiting for one watches.
 * Slots are untouched memory until a part fills them. `marks`: packs a prune marked for deletion (see finish).
 */
export interface SessionSlots {
  slots: SharedArrayBuffer[];
  flags: SharedArrayBuffer;
  marks: string[];
}

const FREE = 0;
const FILLING = 1;
const WRITING = 2;

/** Slots for a session of `workers` workers: each can fill one while its previous ones are written. */
export function sessionSlots(workers: number, partBytes = PART_BYTES, marks: string[] = []): SessionSlots {
  const slots = Array.from({ length: 2 * workers + 1 }, () => new SharedArrayBuffer(partBytes));
  return { slots, flags: new SharedArrayBuffer(4 * (slots.length + 1)), marks };
}

/** The main thread's side: an appended part's slot back to the workers (one may be waiting for it). */
export function releasePack(part: Pick<PackPart, 'flags' | 'slot'>): void {
  const flags = new Int32Array(part.flags);
  Atomics.store(flags, part.slot, FREE);
  Atomics.add(flags, flags.length - 1, 1);
  Atomics.notify(flags, flags.length - 1);
}

interface OpenPack {
  session: number;
  name: string;
  /** The part being filled: its slot, memory and bytes used. */
  slot: number;
  buf: Buffer<ArrayBufferLike>;
  used: number;
  /** Bytes of the pack so far (parts posted and this one). */
  size: number;
  hash: Hash;
  ids: Buffer[];
  zstd: number[];
  lengths: number[];
  raws: number[];
  /** The first blob's stored bytes, kept when the session has prune marks (see finish). */
  first?: Buffer;
}

interface Session {
  slots: SharedArrayBuffer[];
  flags: Int32Array;
  marks: ReadonlySet<string>;
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

let packCount = 0;

export class PackAssembly {
  private readonly open = new Map<number, OpenPack>();
  private readonly sessions = new Map<number, Session>();
  /**
   * Compressed bytes before sealing (encrypted), and stored bytes that go to more than one part: kept from blob to
   * blob at the size of the largest (at most a chunk's bound). Let go of and allocated again for each large blob,
   * they were garbage that piled up until a collection, and the allocator kept what they had taken.
   */
  private scratch: Buffer<ArrayBufferLike> = Buffer.allocUnsafe(0);
  private staged: Buffer<ArrayBufferLike> = Buffer.allocUnsafe(0);

  constructor(
    private readonly cctx: InstanceType<typeof binding.CCtx>,
    private readonly level: number,
    /** An encrypted repository's blob key: blobs and headers are sealed with it. */
    private readonly encryptKey: Buffer | null,
    private readonly emit: (message: PackPart | FinishedPack) => void,
    /**
     * Told of the bytes each blob sealed: the cipher hands its output in buffers of its own, copied into the
     * pack and garbage at once, which the worker collects often and cheaply (a young-generation collection)
     * rather than let them pile up to the engine's external-memory limit.
     */
    private readonly sealed: (bytes: number) => void = () => {},
    /** Names packs apart from other threads' (a worker's thread id). */
    private readonly thread = 0,
  ) {}

  /** The session's slots (sessionSlots), before any of its blobs. */
  join(session: number, shared: SessionSlots): void {
    this.sessions.set(session, { slots: shared.slots, flags: new Int32Array(shared.flags), marks: new Set(shared.marks) });
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
    // Closed before it would pass the pack size (a pack larger than that holds one blob only).
    if (p && p.ids.length > 0 && p.size + bound > packSize) {
      this.finish(session);
      p = undefined;
    }
    if (!p) {
      p = this.start(session);
      this.open.set(session, p);
    }
    const s = this.sessions.get(session)!;
    let stored: number;
    let zstd: boolean;
    const level = this.level <= 3 && looksBase64(raw) ? Math.min(this.level, BASE64_LEVEL) : this.level;
    const room = p.buf.length - p.used;
    if (this.encryptKey) {
      // Compressed into the scratch buffer, then sealed into the part (or staged when it would not fit): one pass over each.
      const b = binding.compressBound(raw.length);
      if (this.scratch.length < b) this.scratch = Buffer.allocUnsafeSlow(b);
      const n = raw.length > 0 ? this.cctx.compress(this.scratch, raw, level) : 0;
      zstd = n < raw.length;
      const plain = zstd ? this.scratch.subarray(0, n) : raw;
      if (plain.length + SEAL_OVERHEAD <= room) {
        stored = sealInto(this.encryptKey, plain, p.buf, p.used);
        this.stored(s, p, p.buf.subarray(p.used, p.used + stored), false);
      } else {
        if (this.staged.length < plain.length + SEAL_OVERHEAD) this.staged = Buffer.allocUnsafeSlow(plain.length + SEAL_OVERHEAD);
        stored = sealInto(this.encryptKey, plain, this.staged, 0);
        this.stored(s, p, this.staged.subarray(0, stored), true);
      }
      this.sealed(stored);
    } else if (bound <= room) {
      const n = raw.length > 0 ? this.cctx.compress(p.buf.subarray(p.used), raw, level) : 0;
      zstd = n < raw.length;
      if (!zstd) raw.copy(p.buf, p.used);
      stored = zstd ? n : raw.length;
      this.stored(s, p, p.buf.subarray(p.used, p.used + stored), false);
    } else {
      // Larger than what is left of the part: staged, then copied over as many parts as it takes.
      if (this.staged.length < bound) this.staged = Buffer.allocUnsafeSlow(bound);
      const n = raw.length > 0 ? this.cctx.compress(this.staged, raw, level) : 0;
      zstd = n < raw.length;
      stored = zstd ? n : raw.length;
      this.stored(s, p, zstd ? this.staged.subarray(0, n) : raw, true);
    }
    p.ids.push(id);
    p.zstd.push(zstd ? 1 : 0);
    p.lengths.push(stored);
    p.raws.push(raw.length);
    if (p.size >= packSize) this.finish(session);
  }

  /** Emits the session's open pack, if it has blobs: its last part, then its header and name. */
  finish(session: number): void {
    const p = this.open.get(session);
    this.open.delete(session);
    if (!p) return;
    const s = this.sessions.get(session)!;
    if (p.ids.length === 0) {
      // Nothing posted yet (a pack's first part holds its first blob): only the slot to give back.
      releasePack({ flags: s.flags.buffer as SharedArrayBuffer, slot: p.slot });
      return;
    }
    const entries = p.ids.map((id, i) => ({ id, type: BlobType.Data, zstd: p.zstd[i] === 1, length: p.lengths[i], rawLength: p.raws[i] }));
    const before = s.marks.size > 0 ? p.hash.copy() : null;
    let header = this.header(entries);
    let id = p.hash.update(header).digest('hex');
    if (before && s.marks.has(id)) {
      // Byte for byte a pack a prune marked for deletion (the same blobs stored again): written under that name
      // it would be the very file the prune deletes once the grace period ends, perhaps before this backup's
      // snapshot exists. Its first blob once more makes it a new file.
      const first = p.first!;
      this.put(s, p, first);
      before.update(first);
      entries.push({ ...entries[0] });
      p.ids.push(p.ids[0]);
      p.zstd.push(p.zstd[0]);
      p.lengths.push(p.lengths[0]);
      p.raws.push(p.raws[0]);
      header = this.header(entries);
      id = before.update(header).digest('hex');
    }
    this.post(s, p);
    this.emit({
      op: 'pack',
      session,
      pack: p.name,
      id,
      header,
      ids: Buffer.concat(p.ids),
      zstd: Uint8Array.from(p.zstd),
      lengths: Uint32Array.from(p.lengths),
      raws: Uint32Array.from(p.raws),
    });
  }

  private header(entries: { id: Buffer; type: BlobType; zstd: boolean; length: number; rawLength: number }[]): Buffer {
    const key = this.encryptKey;
    return Buffer.concat(packHeader(entries, key ? (h) => seal(key, h, PACK_HEADER_AAD) : null));
  }

  /**
   * A blob's stored bytes, now in the pack: hashed, and `copy`: copied in from elsewhere (over as many parts as
   * it takes) rather than already written at the part's end. Kept when it is the first of a pack that may need it again.
   */
  private stored(s: Session, p: OpenPack, bytes: Buffer<ArrayBufferLike>, copy: boolean): void {
    if (p.ids.length === 0 && s.marks.size > 0) p.first = Buffer.from(bytes);
    p.hash.update(bytes);
    if (copy) {
      this.put(s, p, bytes);
      return;
    }
    p.used += bytes.length;
    p.size += bytes.length;
    if (p.used === p.buf.length) this.next(s, p);
  }

  /** Copies `bytes` (hashed by the caller) to the pack's end, posting each part it fills. */
  private put(s: Session, p: OpenPack, bytes: Buffer<ArrayBufferLike>): void {
    let off = 0;
    while (off < bytes.length) {
      const k = Math.min(bytes.length - off, p.buf.length - p.used);
      bytes.copy(p.buf, p.used, off, off + k);
      off += k;
      p.used += k;
      p.size += k;
      if (p.used === p.buf.length) this.next(s, p);
    }
  }

  /** Posts the full part and takes another slot. */
  private next(s: Session, p: OpenPack): void {
    this.post(s, p);
    p.slot = this.claim(s);
    p.buf = Buffer.from(s.slots[p.slot]);
    p.used = 0;
  }

  private post(s: Session, p: OpenPack): void {
    Atomics.store(s.flags, p.slot, WRITING);
    this.emit({ op: 'part', session: p.session, pack: p.name, body: s.slots[p.slot], bytes: p.used, flags: s.flags.buffer as SharedArrayBuffer, slot: p.slot });
  }

  /** A pack begun in a free slot of the session. */
  private start(session: number): OpenPack {
    const s = this.sessions.get(session);
    if (!s) throw new Error(`pack session ${session} was not opened on this worker`);
    const slot = this.claim(s);
    const buf = Buffer.from(s.slots[slot]);
    buf[0] = this.encryptKey ? ENCRYPTED_FORMAT : PLAIN_FORMAT;
    const hash = createHash('sha256').update(buf.subarray(0, 1));
    return { session, name: `${this.thread}.${++packCount}`, slot, buf, used: 1, size: 1, hash, ids: [], zstd: [], lengths: [], raws: [] };
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
