import { BlobType } from './blob-index.js';
import type { RepositoryCipher } from './crypto.js';
import { RepositoryDamagedError } from './errors.js';
import { decodeMetadata, encodeMetadata } from './format.js';
import { ID_BYTES, fromHex, toHex } from './hash.js';
import type { PackEntry } from './pack.js';

/**
 * An index file maps the blobs of some packs to their place in them.
 * After the 2 metadata header bytes: supersedes count u32 LE, superseded index ids (32 bytes each),
 * pack count u32 LE, then per pack: pack id (32 bytes), blob count u32 LE, and per blob 46 bytes:
 * id (32), type u8, compression u8, offset u32 LE, stored length u32 LE, raw length u32 LE.
 */
export interface IndexFile {
  supersedes: string[];
  packs: { id: string; blobs: PackEntry[] }[];
}

const BLOB_BYTES = ID_BYTES + 2 + 12;

export function encodeIndex(index: IndexFile, cipher: RepositoryCipher | null = null): Buffer {
  let size = 4 + index.supersedes.length * ID_BYTES + 4;
  for (const p of index.packs) size += ID_BYTES + 4 + p.blobs.length * BLOB_BYTES;
  const b = Buffer.alloc(size);
  let o = b.writeUInt32LE(index.supersedes.length, 0);
  for (const s of index.supersedes) o += fromHex(s).copy(b, o);
  o = b.writeUInt32LE(index.packs.length, o);
  for (const p of index.packs) {
    o += fromHex(p.id).copy(b, o);
    o = b.writeUInt32LE(p.blobs.length, o);
    for (const e of p.blobs) {
      o += e.id.copy(b, o);
      b[o++] = e.type;
      b[o++] = e.zstd ? 1 : 0;
      o = b.writeUInt32LE(e.offset, o);
      o = b.writeUInt32LE(e.length, o);
      o = b.writeUInt32LE(e.rawLength, o);
    }
  }
  return encodeMetadata(b, false, cipher, 'index');
}

export function decodeIndex(name: string, file: Buffer, cipher: RepositoryCipher | null = null): IndexFile {
  const packs: IndexFile['packs'] = [];
  const supersedes = walkIndex(name, file, cipher, {
    pack: (id) => void packs.push({ id, blobs: [] }),
    blob: (b) => void packs[packs.length - 1].blobs.push({ id: Buffer.from(b.id), type: b.type, zstd: b.zstd, offset: b.offset, length: b.length, rawLength: b.rawLength }),
  });
  return { supersedes, packs };
}

/** A blob of an index file as walkIndex hands it over: one object reused from blob to blob, its id a view. */
export interface IndexedBlob extends PackEntry {
  pack: string;
}

/**
 * Every pack and blob of an index file in order, without building the file's objects (loading the index of a
 * large repository allocates next to nothing per blob); returns the ids of the index files it supersedes.
 * The whole file is checked first: a damaged one throws before anything is handed over. `blob` gets one
 * object reused for every blob: copy what is kept.
 */
export function walkIndex(name: string, file: Buffer, cipher: RepositoryCipher | null, visit: { pack?(id: string, blobs: number): void; blob(b: IndexedBlob): void }): string[] {
  const what = `index ${name.slice(0, 12)}`;
  const b = decodeMetadata(file, what, cipher, 'index');
  const need = (o: number, n: number) => {
    if (o + n > b.length) throw new RepositoryDamagedError(`${what}: truncated at ${b.length} bytes (needed ${o + n})`);
  };
  let o = 0;
  need(o, 4);
  const nSup = b.readUInt32LE(o);
  o += 4;
  need(o, nSup * ID_BYTES + 4);
  const supersedes: string[] = [];
  for (let i = 0; i < nSup; i++, o += ID_BYTES) supersedes.push(toHex(b.subarray(o, o + ID_BYTES)));
  const nPacks = b.readUInt32LE(o);
  o += 4;
  const first = o;
  for (let p = 0; p < nPacks; p++) {
    need(o, ID_BYTES + 4);
    const n = b.readUInt32LE(o + ID_BYTES);
    o += ID_BYTES + 4;
    need(o, n * BLOB_BYTES);
    o += n * BLOB_BYTES;
  }
  o = first;
  const blob: IndexedBlob = { pack: '', id: b.subarray(0, 0), type: BlobType.Data, zstd: false, offset: 0, length: 0, rawLength: 0 };
  for (let p = 0; p < nPacks; p++) {
    const id = toHex(b.subarray(o, o + ID_BYTES));
    const n = b.readUInt32LE(o + ID_BYTES);
    o += ID_BYTES + 4;
    visit.pack?.(id, n);
    blob.pack = id;
    for (let i = 0; i < n; i++, o += BLOB_BYTES) {
      blob.id = b.subarray(o, o + ID_BYTES);
      blob.type = b[o + ID_BYTES] === 1 ? BlobType.Tree : BlobType.Data;
      blob.zstd = b[o + ID_BYTES + 1] === 1;
      blob.offset = b.readUInt32LE(o + ID_BYTES + 2);
      blob.length = b.readUInt32LE(o + ID_BYTES + 6);
      blob.rawLength = b.readUInt32LE(o + ID_BYTES + 10);
      visit.blob(blob);
    }
  }
  return supersedes;
}
