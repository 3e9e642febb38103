/** Runs an async source ahead of its consumer, holding at most `limit` (by `size`) in memory. */
export class Prefetch<T> implements AsyncIterable<T> {
  private readonly buf: T[] = [];
  private held = 0;
  private ended = false;
  private stopped = false;
  private failure: unknown;
  private wakeConsumer: (() => void) | null = null;
  private wakeProducer: (() => void) | null = null;

  constructor(
    source: AsyncIterable<T>,
    private readonly size: (t: T) => number,
    limit: number,
  ) {
    void (async () => {
      try {
        for await (const x of source) {
          if (this.stopped) break;
          this.buf.push(x);
          this.held += size(x);
          this.wake('consumer');
          while (this.held > limit && !this.stopped) await new Promise<void>((r) => (this.wakeProducer = r));
        }
      } catch (e) {
        this.failure = e;
      } finally {
        this.ended = true;
        this.wake('consumer');
      }
    })();
  }

  private wake(who: 'consumer' | 'producer'): void {
    const f = who === 'consumer' ? this.wakeConsumer : this.wakeProducer;
    if (who === 'consumer') this.wakeConsumer = null;
    else this.wakeProducer = null;
    f?.();
  }

  stop(): void {
    this.stopped = true;
    this.wake('producer');
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      if (this.buf.length) {
        const x = this.buf.shift()!;
        this.held -= this.size(x);
        this.wake('producer');
        yield x;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.ended) return;
      await new Promise<void>((r) => (this.wakeConsumer = r));
    }
  }
}

