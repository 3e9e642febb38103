import binding from 'zstd-napi/binding.js';

/**
 * zstd dictionaries of a repository (FORMAT.md, "Dictionaries"), by the id of the blob that holds each one,
 * prepared once per thread: a dictionary is a raw-content zstd dictionary (any bytes), loaded into a
 * decompression dictionary for reading and, on the threads that compress, a compression one per level.
 * Each thread that reads or writes such blobs (the main thread, every codec worker) has its own.
 */
export class Dictionaries {
  private readonly raw = new Map<string, Uint8Array>();
  private readonly ddicts = new Map<string, InstanceType<typeof binding.DDict>>();
  private readonly cdicts = new Map<string, InstanceType<typeof binding.CDict>>();

  has(id: string): boolean {
    return this.raw.has(id);
  }

  add(id: string, bytes: Uint8Array): void {
    if (!this.raw.has(id)) this.raw.set(id, Buffer.from(bytes));
  }

  ids(): string[] {
    return [...this.raw.keys()];
  }

  bytes(id: string): Uint8Array {
    const b = this.raw.get(id);
    if (!b) throw new Error(`dictionary ${id.slice(0, 12)} is not loaded`);
    return b;
  }

  /** For decompression. */
  ddict(id: string): InstanceType<typeof binding.DDict> {
    let d = this.ddicts.get(id);
    if (!d) this.ddicts.set(id, (d = new binding.DDict(this.bytes(id))));
    return d;
  }

  /** For compression at `level`. */
  cdict(id: string, level: number): InstanceType<typeof binding.CDict> {
    const key = `${level}:${id}`;
    let d = this.cdicts.get(key);
    if (!d) this.cdicts.set(key, (d = new binding.CDict(this.bytes(id), level)));
    return d;
  }
}

/**
 * Level of the blobs compressed with a dictionary: they are small rows of a database dump, which a higher
 * level shrinks by a tenth more for a small cost, being small (measured: test/bench/dictionary-measure.ts).
 */
export function dictionaryLevel(level: number): number {
  return Math.max(level, 12);
}

/**
 * Raw-content dictionary bytes never start with zstd's dictionary magic number (a dictionary with its own
 * header and entropy tables would be parsed instead): such a sample gets one byte in front.
 */
export function asRawDictionary(sample: Uint8Array): Buffer {
  const b = Buffer.from(sample);
  return b.length >= 4 && b.readUInt32LE(0) === binding.MAGIC_DICTIONARY ? Buffer.concat([Buffer.from('\n'), b]) : b;
}
