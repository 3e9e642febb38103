/**
 * Memory for the blobs a codec worker holds between reading them and storing them (codec-worker.ts): one
 * buffer used as a ring. Batches are stored about in the order they were read, so room frees at the tail
 * while the head fills; a piece that does not fit (the ring is full, or the piece is larger than the ring)
 * gets a buffer of its own, let go of when released. A worker's memory for held blobs is then the ring,
 * allocated once, however many small batches go through it.
 */
export interface ArenaPiece {
  buf: Buffer;
  /** Its place in the ring; absent for a buffer of its own. */
  slot?: { start: number; end: number; done: boolean };
}

export class ArenaRing {
  private ring: Buffer | null = null;
  private head = 0;
  /** Pieces of the ring in use, in the order they were taken (which is their order in the ring). */
  private readonly live: { start: number; end: number; done: boolean }[] = [];

  constructor(
    private readonly size: number,
    /** Told of each buffer of its own released (its size): the worker collects them in time. */
    private readonly dropped: (bytes: number) => void = () => {},
  ) {}

  take(n: number): ArenaPiece {
    if (n > this.size) return { buf: Buffer.allocUnsafeSlow(n) };
    this.ring ??= Buffer.allocUnsafeSlow(this.size);
    if (this.live.length === 0) this.head = 0;
    const tail = this.live.length > 0 ? this.live[0].start : 0;
    let start = -1;
    if (this.live.length === 0 || this.head > tail || (this.head === tail && this.live.length === 0)) {
      // Free: [head, size) then [0, tail).
      if (this.head + n <= this.size) start = this.head;
      else if (n <= tail) start = 0;
    } else if (this.head < tail && this.head + n <= tail) start = this.head;
    if (start < 0) return { buf: Buffer.allocUnsafeSlow(n) };
    const slot = { start, end: start + n, done: false };
    this.live.push(slot);
    this.head = start + n;
    return { buf: this.ring.subarray(start, start + n), slot };
  }

  release(piece: ArenaPiece): void {
    if (!piece.slot) {
      this.dropped(piece.buf.length);
      return;
    }
    piece.slot.done = true;
    while (this.live.length > 0 && this.live[0].done) this.live.shift();
  }
}
