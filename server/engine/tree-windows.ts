/** Reads `length` bytes of a pack at `offset`. */
export type PackRangeReader = (pack: string, offset: number, length: number) => Promise<Buffer>;

interface Window {
  start: number;
  end: number;
  data: Promise<Buffer | null>;
}

/** The first window read in a pack; each further miss in the same pack doubles it, up to MAX_WINDOW. */
const FIRST_WINDOW = 256 * 1024;
const MAX_WINDOW = 4 * 1024 * 1024;

/**
 * Stored tree blobs read a window of their pack at a time. A backup writes a directory's tree after the
 * trees of everything below it, so the trees a walk wants next sit just before the one it reads: a miss
 * reads the window that ends with the blob. Restoring one mailbox of a large installation then reads the
 * root tree's window and the mailbox's, not whole packs of every mailbox's trees; a walk of a whole
 * snapshot reads ever larger windows (doubling per miss in a pack), so a few reads still cover a pack.
 * At most `limit` bytes are kept, whole packs' windows evicted oldest first.
 */
export class TreeWindows {
  private readonly packs = new Map<string, { windows: Window[]; next: number; bytes: number }>();
  private bytes = 0;

  constructor(
    private readonly read: PackRangeReader,
    private readonly limit = 8 * 1024 * 1024,
  ) {}

  /**
   * The stored bytes of the blob at [offset, offset + length) of `pack`, or null when its window could not
   * be read (the caller reads the blob alone, which reports damage precisely).
   */
  async blob(pack: string, offset: number, length: number): Promise<Buffer | null> {
    const end = offset + length;
    let p = this.packs.get(pack);
    if (!p) this.packs.set(pack, (p = { windows: [], next: FIRST_WINDOW, bytes: 0 }));
    let w = p.windows.find((x) => x.start <= offset && end <= x.end);
    if (!w) {
      // Never before byte 1 (the pack's version byte), nor over a window already read below the blob.
      let start = Math.max(1, Math.min(offset, end - p.next));
      for (const x of p.windows) if (x.end > start && x.end <= offset) start = x.end;
      if (end - start > this.limit) start = offset;
      w = { start, end, data: this.read(pack, start, end - start).catch(() => null) };
      p.windows.push(w);
      p.next = Math.min(MAX_WINDOW, p.next * 2);
      p.bytes += end - start;
      this.bytes += end - start;
      this.evict(pack);
    }
    const data = await w.data;
    return data ? data.subarray(offset - w.start, end - w.start) : null;
  }

  private evict(keep: string): void {
    for (const [pack, p] of this.packs) {
      if (this.bytes <= this.limit) return;
      if (pack === keep) continue;
      this.packs.delete(pack);
      this.bytes -= p.bytes;
    }
  }
}
