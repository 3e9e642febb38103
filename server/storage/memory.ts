import { partsKept, RESERVED_REFERENCE_NAMES, type FileInfo, type FileType, type PartWriter, type Storage } from '../engine/index.js';

/**
 * A repository held in memory, for fast unit tests: the same contract as a directory (names checked, reads of
 * missing files fail with ENOENT, ranges checked) without touching a disk. Everything is lost with the object.
 */
export class MemoryStorage implements Storage {
  private readonly files = new Map<FileType, Map<string, Buffer>>();

  constructor(readonly location = 'memory:') {}

  async *list(type: FileType): AsyncIterable<FileInfo> {
    // A copy: a caller may delete while it lists (prune does).
    for (const [name, data] of [...this.of(type)]) yield { name, size: data.length };
  }

  async read(type: FileType, name: string, offset = 0, length?: number): Promise<Buffer> {
    const data = this.of(type).get(checkName(type, name));
    if (!data) throw missing(type, name);
    const want = length ?? data.length - offset;
    if (offset < 0 || want < 0 || offset + want > data.length) {
      throw new Error(`reading ${type} ${name.slice(0, 12)}: truncated at ${data.length} bytes (wanted ${offset}+${want})`);
    }
    return Buffer.from(data.subarray(offset, offset + want));
  }

  async write(type: FileType, name: string, data: Buffer | readonly Uint8Array[]): Promise<void> {
    checkName(type, name);
    // A copy, so that the caller reusing its buffers cannot change a stored file.
    this.of(type).set(name, Buffer.concat(Buffer.isBuffer(data) ? [data] : (data as Uint8Array[])));
  }

  writeParts(type: FileType): PartWriter {
    return partsKept((name, parts) => this.write(type, name, parts));
  }

  async delete(type: FileType, name: string): Promise<void> {
    this.of(type).delete(checkName(type, name));
  }

  async stat(type: FileType, name: string): Promise<FileInfo | null> {
    const data = this.of(type).get(checkName(type, name));
    return data ? { name, size: data.length } : null;
  }

  private of(type: FileType): Map<string, Buffer> {
    let m = this.files.get(type);
    if (!m) this.files.set(type, (m = new Map()));
    return m;
  }
}

function checkName(type: FileType, name: string): string {
  const reserved = type === 'reference' && RESERVED_REFERENCE_NAMES.has(name);
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith('.') || (type === 'config' && name !== 'config') || reserved) {
    throw new Error(`invalid ${type} file name ${JSON.stringify(name)}`);
  }
  return name;
}

function missing(type: FileType, name: string): NodeJS.ErrnoException {
  const err = new Error(`${type} ${name.slice(0, 12)} does not exist`) as NodeJS.ErrnoException;
  err.code = 'ENOENT';
  return err;
}
