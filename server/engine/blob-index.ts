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

const EMPTY = 0;
const FLAG_USED = 1;
const FLAG_TREE = 2;
const FLAG_ZSTD = 4;

/**
 * Blob id -> location, for every blob of the repository. Open addressing with linear probing over
 * typed arrays: ids live in one flat byte array, never as strings, so a mail spool of tens of millions
 * of messages fits (see README, "bytes per blob"). Ids are SHA-256, so their first 4 bytes are a
 * uniform hash already.
 */
export class BlobIndex {
  private capacity: number;
  private mask: number;
  private ids: Uint8Array;
  private flags: Uint8Array;
  private pack: Uint32Array;
  private offset: Uint32Array;
  private length: Uint32Array;
  private rawLength: Uint32Array;
  private count = 0;
  /** Pack ids by ordinal; the table stores ordinals. */
  readonly packs: string[] = [];
  private readonly packOrdinal = new Map<string, number>();

  constructor(expected = 1024) {
    let cap = 1024;
    while (cap * 0.8 < expected) cap *= 2;
    this.capacity = cap;
    this.mask = cap - 1;
    this.ids = new Uint8Array(cap * ID_BYTES);
    this.flags = new Uint8Array(cap);
    this.pack = new Uint32Array(cap);
    this.offset = new Uint32Array(cap);
    this.length = new Uint32Array(cap);
    this.rawLength = new Uint32Array(cap);
  }

  get size(): number {
    return this.count;
  }

  /** Memory held by the table, for the README's measured bytes-per-blob figure. */
  get byteSize(): number {
    return this.ids.byteLength + this.flags.byteLength + 4 * 4 * this.capacity;
  }

  has(id: Uint8Array): boolean {
    return this.slot(id) >= 0;
  }

  get(id: Uint8Array): BlobLocation | undefined {
    const s = this.slot(id);
    if (s < 0) return undefined;
    const f = this.flags[s];
    return {
      pack: this.packs[this.pack[s]],
      type: f & FLAG_TREE ? BlobType.Tree : BlobType.Data,
      zstd: (f & FLAG_ZSTD) !== 0,
      offset: this.offset[s],
      length: this.length[s],
      rawLength: this.rawLength[s],
    };
  }

  /** Adds a blob; a blob already present keeps its first location (duplicates are the prune's business). */
  add(id: Uint8Array, loc: BlobLocation): boolean {
    if (this.count + 1 > this.capacity * 0.8) this.grow();
    let s = this.hash(id);
    for (;;) {
      if (this.flags[s] === EMPTY) break;
      if (this.equals(s, id)) return false;
      s = (s + 1) & this.mask;
    }
    this.ids.set(id.subarray(0, ID_BYTES), s * ID_BYTES);
    this.flags[s] = FLAG_USED | (loc.type === BlobType.Tree ? FLAG_TREE : 0) | (loc.zstd ? FLAG_ZSTD : 0);
    this.pack[s] = this.ordinalOf(loc.pack);
    this.offset[s] = loc.offset;
    this.length[s] = loc.length;
    this.rawLength[s] = loc.rawLength;
    this.count++;
    return true;
  }

  /** The pack a blob is located in, without building a whole location. */
  packOf(id: Uint8Array): string | undefined {
    const s = this.slot(id);
    return s < 0 ? undefined : this.packs[this.pack[s]];
  }

  /** Moves a blob already present to another location. */
  replace(id: Uint8Array, loc: BlobLocation): void {
    const s = this.slot(id);
    if (s < 0) throw new Error('replace: blob not in the index');
    this.flags[s] = FLAG_USED | (loc.type === BlobType.Tree ? FLAG_TREE : 0) | (loc.zstd ? FLAG_ZSTD : 0);
    this.pack[s] = this.ordinalOf(loc.pack);
    this.offset[s] = loc.offset;
    this.length[s] = loc.length;
    this.rawLength[s] = loc.rawLength;
  }

  hasPack(pack: string): boolean {
    return this.packOrdinal.has(pack);
  }

  /** Every blob, in table order. */
  *entries(): IterableIterator<[Buffer, BlobLocation]> {
    for (let s = 0; s < this.capacity; s++) {
      if (this.flags[s] === EMPTY) continue;
      const id = Buffer.from(this.ids.subarray(s * ID_BYTES, (s + 1) * ID_BYTES));
      yield [id, this.get(id)!];
    }
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

  private hash(id: Uint8Array): number {
    return ((id[0] << 24) | (id[1] << 16) | (id[2] << 8) | id[3]) & this.mask;
  }

  private equals(s: number, id: Uint8Array): boolean {
    const base = s * ID_BYTES;
    const ids = this.ids;
    for (let i = 0; i < ID_BYTES; i++) if (ids[base + i] !== id[i]) return false;
    return true;
  }

  private slot(id: Uint8Array): number {
    let s = this.hash(id);
    for (;;) {
      if (this.flags[s] === EMPTY) return -1;
      if (this.equals(s, id)) return s;
      s = (s + 1) & this.mask;
    }
  }

  private grow(): void {
    const old = { ids: this.ids, flags: this.flags, pack: this.pack, offset: this.offset, length: this.length, rawLength: this.rawLength, cap: this.capacity };
    this.capacity *= 2;
    this.mask = this.capacity - 1;
    this.ids = new Uint8Array(this.capacity * ID_BYTES);
    this.flags = new Uint8Array(this.capacity);
    this.pack = new Uint32Array(this.capacity);
    this.offset = new Uint32Array(this.capacity);
    this.length = new Uint32Array(this.capacity);
    this.rawLength = new Uint32Array(this.capacity);
    for (let o = 0; o < old.cap; o++) {
      if (old.flags[o] === EMPTY) continue;
      const id = old.ids.subarray(o * ID_BYTES, (o + 1) * ID_BYTES);
      let s = this.hash(id);
      while (this.flags[s] !== EMPTY) s = (s + 1) & this.mask;
      this.ids.set(id, s * ID_BYTES);
      this.flags[s] = old.flags[o];
      this.pack[s] = old.pack[o];
      this.offset[s] = old.offset[o];
      this.length[s] = old.length[o];
      this.rawLength[s] = old.rawLength[o];
    }
  }
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
