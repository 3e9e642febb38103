import { partsKept, RepositoryFullError, type FileInfo, type FileType, type PartWriter, type Storage } from '../../server/engine/index.js';

/**
 * A storage whose disk holds `capacity` bytes: a write that would go past it fails as a full disk does
 * (nothing stored), deletes give the room back. Deterministic, for tests of what a full repository does.
 */
export class LimitedStorage implements Storage {
  writesRefused = 0;

  constructor(
    private readonly inner: Storage,
    public capacity: number,
  ) {}

  get location(): string {
    return this.inner.location;
  }

  async used(): Promise<number> {
    let total = 0;
    for (const t of ['config', 'data', 'index', 'snapshot', 'lock', 'reference'] as const) for await (const f of this.inner.list(t)) total += f.size;
    return total;
  }

  list(type: FileType): AsyncIterable<FileInfo> {
    return this.inner.list(type);
  }

  read(type: FileType, name: string, offset?: number, length?: number): Promise<Buffer> {
    return this.inner.read(type, name, offset, length);
  }

  async write(type: FileType, name: string, data: Buffer | readonly Uint8Array[]): Promise<void> {
    const size = Buffer.isBuffer(data) ? data.length : data.reduce((a, p) => a + p.byteLength, 0);
    const replaced = (await this.inner.stat(type, name))?.size ?? 0;
    const free = this.capacity - (await this.used());
    if (size - replaced > free) {
      this.writesRefused++;
      throw new RepositoryFullError(`the repository's disk is full (${Math.max(0, free)} bytes free): writing ${type} ${name.slice(0, 12)}`);
    }
    await this.inner.write(type, name, data);
  }

  writeParts(type: FileType): PartWriter {
    return partsKept((name, parts) => this.write(type, name, parts));
  }

  delete(type: FileType, name: string): Promise<void> {
    return this.inner.delete(type, name);
  }

  stat(type: FileType, name: string): Promise<FileInfo | null> {
    return this.inner.stat(type, name);
  }
}
