import { EngineError, type FileInfo, type FileType, type PartWriter, type Storage } from '../engine/index.js';

/** How long one storage call may take before it fails, unless DP_STORAGE_TIMEOUT_MS says otherwise. */
export const DEFAULT_STORAGE_TIMEOUT_MS = 120_000;
/** After a cancel, what is left to do (the final record, releasing a lock) gets this long per call. */
export const CANCEL_GRACE_MS = 5_000;

export interface GuardOptions {
  /** Per call (and per listing page); 0 turns the timeout off. */
  timeoutMs?: number;
  /** A cancelled run stops waiting at once for calls in flight; calls made afterwards get the short grace. */
  signal?: AbortSignal;
  graceMs?: number;
}

/** DP_STORAGE_TIMEOUT_MS, checked: a bad value is a clear error, not a silent default. */
export function storageTimeoutFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.DP_STORAGE_TIMEOUT_MS;
  if (raw === undefined || raw === '') return DEFAULT_STORAGE_TIMEOUT_MS;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new EngineError(`DP_STORAGE_TIMEOUT_MS=${raw} is not a number of milliseconds`);
  return n;
}

/**
 * Puts a bound on every call to a backend: a repository on an NFS server that went away (calls that never
 * answer) fails with a message naming the location and the call, instead of holding a run "Running" forever.
 * A call that timed out may still complete behind our back; that is harmless because writes are atomic.
 */
export class GuardedStorage implements Storage {
  readonly removeStaleTempFiles?: () => Promise<number>;
  /** The backend's own: a worker reading a local file is not under this wrapper's timeout (a local disk answers). */
  readonly localPath?: (type: FileType, name: string) => string;
  private readonly timeoutMs: number;
  private readonly graceMs: number;

  constructor(
    readonly inner: Storage,
    private readonly opts: GuardOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_STORAGE_TIMEOUT_MS;
    this.graceMs = opts.graceMs ?? CANCEL_GRACE_MS;
    const clean = inner.removeStaleTempFiles?.bind(inner);
    if (clean) this.removeStaleTempFiles = () => this.guard('removing stale temp files', clean);
    this.localPath = inner.localPath?.bind(inner);
  }

  get listingLagMs(): number | undefined {
    return this.inner.listingLagMs;
  }

  get location(): string {
    return this.inner.location;
  }

  async *list(type: FileType): AsyncIterable<FileInfo> {
    const it = this.inner.list(type)[Symbol.asyncIterator]();
    try {
      for (;;) {
        const r = await this.guard(`listing ${type} files`, () => it.next());
        if (r.done) return;
        yield r.value;
      }
    } finally {
      // Ends the backend's listing when the caller stops early; never waits for a backend that hangs.
      void Promise.resolve(it.return?.()).catch(() => {});
    }
  }

  read(type: FileType, name: string, offset?: number, length?: number): Promise<Buffer> {
    return this.guard(`reading ${type} ${short(name)}`, () => this.inner.read(type, name, offset, length));
  }

  write(type: FileType, name: string, data: Buffer | readonly Uint8Array[]): Promise<void> {
    return this.guard(`writing ${type} ${short(name)}`, () => this.inner.write(type, name, data));
  }

  writeParts(type: FileType): PartWriter {
    const inner = this.inner.writeParts(type);
    return {
      append: (data) => this.guard(`writing ${type} (a part)`, () => inner.append(data)),
      commit: (name) => this.guard(`writing ${type} ${short(name)}`, () => inner.commit(name)),
      abort: () => inner.abort(),
    };
  }

  delete(type: FileType, name: string): Promise<void> {
    return this.guard(`deleting ${type} ${short(name)}`, () => this.inner.delete(type, name));
  }

  stat(type: FileType, name: string): Promise<FileInfo | null> {
    return this.guard(`looking up ${type} ${short(name)}`, () => this.inner.stat(type, name));
  }

  private guard<T>(what: string, call: () => Promise<T>): Promise<T> {
    const signal = this.opts.signal;
    const cancelled = signal?.aborted ?? false;
    const limit = cancelled ? (this.timeoutMs > 0 ? Math.min(this.timeoutMs, this.graceMs) : this.graceMs) : this.timeoutMs;
    if (limit <= 0 && !signal) return call();
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => finish(() => reject(new EngineError(`${what} at ${this.location}: stopped waiting, the run was cancelled`)));
      const finish = (settle: () => void) => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        settle();
      };
      if (limit > 0) {
        timer = setTimeout(() => {
          const err = new EngineError(`${what} at ${this.location}: no answer within ${seconds(limit)} (is the repository's location reachable? DP_STORAGE_TIMEOUT_MS sets the limit)`);
          (err as NodeJS.ErrnoException).code = 'ETIMEDOUT';
          finish(() => reject(err));
        }, limit);
      }
      // Calls in flight when the run is cancelled are abandoned at once; later ones only get the grace.
      if (signal && !cancelled) signal.addEventListener('abort', onAbort, { once: true });
      let started: Promise<T>;
      try {
        started = call();
      } catch (err) {
        finish(() => reject(err));
        return;
      }
      started.then(
        (v) => finish(() => resolve(v)),
        (e) => finish(() => reject(e)),
      );
    });
  }
}

/** openStorage's wrapper with the configured timeout. */
export function guardStorage(storage: Storage, opts: GuardOptions = {}): GuardedStorage {
  return new GuardedStorage(storage, { timeoutMs: opts.timeoutMs ?? storageTimeoutFromEnv(), signal: opts.signal, graceMs: opts.graceMs });
}

function short(name: string): string {
  return name.length > 16 ? name.slice(0, 12) : name;
}

function seconds(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}
