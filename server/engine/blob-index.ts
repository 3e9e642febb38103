import { ID_BYTES } from './hash.js';

export enum BlobType {
  Data = 0,
  Tree = 1,
}

export interface BlobLocation {
  pack: string;
  type: BlobType;
  /** True when the stored bytes are zstd. */
  zstd: boolean;
  offset: number;
  /** Bytes in the pack. */
  length: number;
  /** Bytes once decompressed. */
  rawLength: number;
}

const FLAG_TREE = 1;
const FLAG_ZSTD = 2;

/** Entries per chunk of the entry arrays (a power of two: entry i is at chunk i >> CHUNK_BITS). */
const CHUNK_BITS = 14;
const CHUNK = 1 << CHUNK_BITS;
/** Words per entry in a chunk's `meta`: pack ordinal, offset, stored length, raw length. */
const META = 4;

/** One chunk of entries: ids, flags and locations of up to CHUNK blobs, in the order they were added. */
interface Chunk {
  ids: Uint8Array;
  flags: Uint8Array;
  meta: Uint32Array;
}

/**
 * Blob id -> location, for every blob of the repository, over typed arrays only (ids never become strings),
 * so that a spool of tens of millions of messages fits (see README, "bytes per blob").
 *
 * Entries are dense, in the order blobs were added: 32 bytes of id, 1 of flags and 16 of location
 * (49 bytes a blob), in chunks of 16,384 so that growing never copies them. The hash table beside them
 * holds only a 4-byte entry number and a 1-byte tag per slot (open addressing, linear probing, load at most
 * 0.8), so that its empty slots cost 5 bytes each instead of a whole entry: about 57 bytes a blob at 10 million.
 * Ids are SHA-256 (or an HMAC of it), so their first 4 bytes are a uniform hash already.
 */
export class BlobIndex {
  private mask: number;
  /** Entry number + 1 per slot; 0 is an empty slot. */
  private slots: Uint32Array;
  /** Byte 4 of each slot's id: most probes that miss are told apart here, without a read of the entry. */
  private tags: Uint8Array;
  private readonly chunks: Chunk[] = [];
  private count = 0;
  /** Pack ids by ordinal; the entries store ordinals. */
  readonly packs: string[] = [];
  private readonly packOrdinal = new Map<string, number>();

  constructor(expected = 1024) {
    let cap = 1024;
    while (cap * 0.8 < expected) cap *= 2;
    this.mask = cap - 1;
    this.slots = new Uint32Array(cap);
    this.tags = new Uint8Array(cap);
  }

  get size(): number {
    return this.count;
  }

  /** Memory held by the table, for the README's measured bytes-per-blob figure. */
  get byteSize(): number {
    let bytes = this.slots.byteLength + this.tags.byteLength;
    for (const c of this.chunks) bytes += c.ids.byteLength + c.flags.byteLength + c.meta.byteLength;
    return bytes;
  }

  has(id: Uint8Array): boolean {
    return this.find(id, 0) >= 0;
  }

  get(id: Uint8Array): BlobLocation | undefined {
    const e = this.find(id, 0);
    return e < 0 ? undefined : this.location(e);
  }

  /** Adds a blob; a blob already present keeps its first location (duplicates are the prune's business). */
  add(id: Uint8Array, loc: BlobLocation): boolean {
    return this.addAt(id, 0, this.ordinalOf(loc.pack), loc.type, loc.zstd, loc.offset, loc.length, loc.rawLength);
  }

  /**
   * Adds a blob whose id is the 32 bytes of `ids` at `at` (an index file's bytes, read in place: loading
   * an index allocates nothing per blob). `pack` is an ordinal from `packNumber`.
   */
  addAt(ids: Uint8Array, at: number, pack: number, type: BlobType, zstd: boolean, offset: number, length: number, rawLength: number): boolean {
    if (this.count + 1 > (this.mask + 1) * 0.8) this.grow();
    let s = hashAt(ids, at) & this.mask;
    const tag = ids[at + 4];
    for (;;) {
      const e = this.slots[s];
      if (e === 0) break;
      if (this.tags[s] === tag && this.equals(e - 1, ids, at)) return false;
      s = (s + 1) & this.mask;
    }
    const e = this.count++;
    if ((e & (CHUNK - 1)) === 0 && e >>> CHUNK_BITS === this.chunks.length) this.chunks.push(newChunk(Math.min(CHUNK, Math.max(1024, this.mask + 1))));
    let c = this.chunks[e >>> CHUNK_BITS];
    const i = e & (CHUNK - 1);
    // The first chunk starts small (a small repository) and doubles until it is whole.
    if (i >= c.flags.length) c = this.widenFirstChunk();
    // Byte by byte: a subarray per blob would cost more than the copy.
    const to = c.ids;
    for (let k = 0, d = i * ID_BYTES; k < ID_BYTES; k++) to[d + k] = ids[at + k];
    this.setLocation(c, i, pack, type, zstd, offset, length, rawLength);
    this.slots[s] = e + 1;
    this.tags[s] = tag;
    return true;
  }

  /** The ordinal of a pack id, for `addAt` (assigned on first use). */
  packNumber(pack: string): number {
    return this.ordinalOf(pack);
  }

  /** The pack a blob is located in, without building a whole location. */
  packOf(id: Uint8Array): string | undefined {
    const e = this.find(id, 0);
    return e < 0 ? undefined : this.packs[this.chunks[e >>> CHUNK_BITS].meta[(e & (CHUNK - 1)) * META]];
  }

  /** Moves a blob already present to another location. */
  replace(id: Uint8Array, loc: BlobLocation): void {
    const e = this.find(id, 0);
    if (e < 0) throw new Error('replace: blob not in the index');
    this.setLocation(this.chunks[e >>> CHUNK_BITS], e & (CHUNK - 1), this.ordinalOf(loc.pack), loc.type, loc.zstd, loc.offset, loc.length, loc.rawLength);
  }

  hasPack(pack: string): boolean {
    return this.packOrdinal.has(pack);
  }

  /** Every blob, in the order they were added. */
  *entries(): IterableIterator<[Buffer, BlobLocation]> {
    for (let e = 0; e < this.count; e++) {
      const i = e & (CHUNK - 1);
      const id = Buffer.from(this.chunks[e >>> CHUNK_BITS].ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES));
      yield [id, this.location(e)];
    }
  }

  private location(e: number): BlobLocation {
    const c = this.chunks[e >>> CHUNK_BITS];
    const i = e & (CHUNK - 1);
    const f = c.flags[i];
    const m = i * META;
    return {
      pack: this.packs[c.meta[m]],
      type: f & FLAG_TREE ? BlobType.Tree : BlobType.Data,
      zstd: (f & FLAG_ZSTD) !== 0,
      offset: c.meta[m + 1],
      length: c.meta[m + 2],
      rawLength: c.meta[m + 3],
    };
  }

  private setLocation(c: Chunk, i: number, pack: number, type: BlobType, zstd: boolean, offset: number, length: number, rawLength: number): void {
    c.flags[i] = (type === BlobType.Tree ? FLAG_TREE : 0) | (zstd ? FLAG_ZSTD : 0);
    const m = i * META;
    c.meta[m] = pack;
    c.meta[m + 1] = offset;
    c.meta[m + 2] = length;
    c.meta[m + 3] = rawLength;
  }

  private widenFirstChunk(): Chunk {
    const old = this.chunks[0];
    const c = newChunk(Math.min(CHUNK, old.flags.length * 2));
    c.ids.set(old.ids);
    c.flags.set(old.flags);
    c.meta.set(old.meta);
    this.chunks[0] = c;
    return c;
  }

  private ordinalOf(pack: string): number {
    let o = this.packOrdinal.get(pack);
    if (o === undefined) {
      o = this.packs.length;
      this.packs.push(pack);
      this.packOrdinal.set(pack, o);
    }
    return o;
  }

  /** Whether entry `e` has the id at `ids[at..]`. */
  private equals(e: number, ids: Uint8Array, at: number): boolean {
    const stored = this.chunks[e >>> CHUNK_BITS].ids;
    const base = (e & (CHUNK - 1)) * ID_BYTES;
    for (let i = 0; i < ID_BYTES; i++) if (stored[base + i] !== ids[at + i]) return false;
    return true;
  }

  /** The entry number of an id, or -1. */
  private find(ids: Uint8Array, at: number): number {
    let s = hashAt(ids, at) & this.mask;
    const tag = ids[at + 4];
    for (;;) {
      const e = this.slots[s];
      if (e === 0) return -1;
      if (this.tags[s] === tag && this.equals(e - 1, ids, at)) return e - 1;
      s = (s + 1) & this.mask;
    }
  }

  private grow(): void {
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.slots = new Uint32Array(cap);
    this.tags = new Uint8Array(cap);
    for (let e = 0; e < this.count; e++) {
      const ids = this.chunks[e >>> CHUNK_BITS].ids;
      const at = (e & (CHUNK - 1)) * ID_BYTES;
      let s = hashAt(ids, at) & this.mask;
      while (this.slots[s] !== 0) s = (s + 1) & this.mask;
      this.slots[s] = e + 1;
      this.tags[s] = ids[at + 4];
    }
  }
}

function newChunk(entries: number): Chunk {
  return { ids: new Uint8Array(entries * ID_BYTES), flags: new Uint8Array(entries), meta: new Uint32Array(entries * META) };
}

function hashAt(ids: Uint8Array, at: number): number {
  return (ids[at] << 24) | (ids[at + 1] << 16) | (ids[at + 2] << 8) | ids[at + 3];
}

/** A set of blob ids over one flat typed array (prune's "used" set, check's "seen" set). */
export class BlobIdSet {
  private capacity = 1024;
  private mask = 1023;
  private ids = new Uint8Array(1024 * ID_BYTES);
  private used = new Uint8Array(1024);
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Returns false when the id was already there. */
  add(id: Uint8Array): boolean {
    if (this.count + 1 > this.capacity * 0.7) this.grow();
    let s = this.hash(id);
    while (this.used[s]) {
      if (this.equals(s, id)) return false;
      s = (s + 1) & this.mask;
    }
    this.ids.set(id.subarray(0, ID_BYTES), s * ID_BYTES);
    this.used[s] = 1;
    this.count++;
    return true;
  }

  has(id: Uint8Array): boolean {
    let s = this.hash(id);
    while (this.used[s]) {
      if (this.equals(s, id)) return true;
      s = (s + 1) & this.mask;
    }
    return false;
  }

  private hash(id: Uint8Array): number {
    return ((id[0] << 24) | (id[1] << 16) | (id[2] << 8) | id[3]) & this.mask;
  }

  private equals(s: number, id: Uint8Array): boolean {
    const base = s * ID_BYTES;
    for (let i = 0; i < ID_BYTES; i++) if (this.ids[base + i] !== id[i]) return false;
    return true;
  }

  private grow(): void {
    const oldIds = this.ids;
    const oldUsed = this.used;
    const oldCap = this.capacity;
    this.capacity *= 2;
    this.mask = this.capacity - 1;
    this.ids = new Uint8Array(this.capacity * ID_BYTES);
    this.used = new Uint8Array(this.capacity);
    for (let o = 0; o < oldCap; o++) {
      if (!oldUsed[o]) continue;
      const id = oldIds.subarray(o * ID_BYTES, (o + 1) * ID_BYTES);
      let s = this.hash(id);
      while (this.used[s]) s = (s + 1) & this.mask;
      this.ids.set(id, s * ID_BYTES);
      this.used[s] = 1;
    }
  }
}
