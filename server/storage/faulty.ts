import { partsKept, type FileInfo, type FileType, type PartWriter, type Storage } from '../engine/index.js';

/**
 * What a failing disk or server does to one call:
 * - EIO, ENOSPC: the call fails with that code, nothing is stored;
 * - short: a write stores fewer bytes than given and the backend's length check reports it (nothing lands under
 *   the file's name: writes go through a temp file); a read answers fewer bytes than asked, without an error;
 * - slow: the call answers, `delayMs` late;
 * - hang: the call never answers (an NFS server that went away).
 */
export type Fault = { kind: 'EIO' | 'ENOSPC' | 'short' | 'hang' } | { kind: 'slow'; delayMs: number };

export type StorageCall = 'list' | 'read' | 'write' | 'delete' | 'stat';

/** Decides, for each call, whether it fails and how. `n` counts the calls of this kind from 0. */
export type FaultPlan = (call: StorageCall, type: FileType, name: string, n: number) => Fault | null;

/** A Storage that injects faults into another, for reliability tests: the engine must fail cleanly on each. */
export class FaultyStorage implements Storage {
  readonly removeStaleTempFiles?: () => Promise<number>;
  private readonly counts = new Map<StorageCall, number>();
  /** The faults injected so far, for test reports. */
  readonly injected: { call: StorageCall; type: FileType; name: string; fault: Fault['kind'] }[] = [];

  constructor(
    readonly inner: Storage,
    private readonly plan: FaultPlan,
  ) {
    const clean = inner.removeStaleTempFiles?.bind(inner);
    if (clean) this.removeStaleTempFiles = clean;
  }

  get location(): string {
    return this.inner.location;
  }

  async *list(type: FileType): AsyncIterable<FileInfo> {
    await this.before('list', type, '');
    yield* this.inner.list(type);
  }

  read(type: FileType, name: string, offset?: number, length?: number): Promise<Buffer> {
    return this.tracked(async () => {
      const fault = await this.before('read', type, name, true);
      const data = await this.inner.read(type, name, offset, length);
      return fault === 'short' ? data.subarray(0, Math.floor(data.length / 2)) : data;
    });
  }

  write(type: FileType, name: string, data: Buffer | readonly Uint8Array[]): Promise<void> {
    return this.tracked(async () => {
      const fault = await this.before('write', type, name, true);
      if (fault === 'short') {
        const size = Buffer.isBuffer(data) ? data.length : data.reduce((a, b) => a + b.byteLength, 0);
        throw ioError('EIO', `writing ${type} ${name.slice(0, 12)} at ${this.location}: short write, ${Math.floor(size / 2)} of ${size} bytes written`);
      }
      return this.inner.write(type, name, data);
    });
  }

  /** Kept whole and written at commit: the plan sees one write, as for a file written at once. */
  writeParts(type: FileType): PartWriter {
    return partsKept((name, parts) => this.write(type, name, parts));
  }

  delete(type: FileType, name: string): Promise<void> {
    return this.tracked(async () => {
      await this.before('delete', type, name);
      return this.inner.delete(type, name);
    });
  }

  stat(type: FileType, name: string): Promise<FileInfo | null> {
    return this.tracked(async () => {
      await this.before('stat', type, name);
      return this.inner.stat(type, name);
    });
  }

  /** Resolves once every call made so far has ended, including those a timeout gave up on (never, after a hang). */
  async settled(): Promise<void> {
    while (this.calls.size) await Promise.allSettled([...this.calls]);
  }

  private readonly calls = new Set<Promise<unknown>>();

  private tracked<T>(fn: () => Promise<T>): Promise<T> {
    const p = fn();
    const forget = (): void => void this.calls.delete(done);
    const done: Promise<void> = p.then(forget, forget);
    this.calls.add(done);
    return p;
  }

  /** Throws or waits as the plan says; answers 'short' for a call that can be short (`canBeShort`). */
  private async before(call: StorageCall, type: FileType, name: string, canBeShort = false): Promise<'short' | null> {
    const n = this.counts.get(call) ?? 0;
    this.counts.set(call, n + 1);
    const fault = this.plan(call, type, name, n);
    if (!fault) return null;
    this.injected.push({ call, type, name, fault: fault.kind });
    switch (fault.kind) {
      case 'slow':
        await new Promise((r) => setTimeout(r, fault.delayMs));
        return null;
      case 'hang':
        return new Promise<never>(() => {});
      case 'short':
        if (canBeShort) return 'short';
        throw ioError('EIO', `${call} ${type} ${name.slice(0, 12)} at ${this.location}: input/output error`);
      case 'ENOSPC':
        throw ioError('ENOSPC', `${call} ${type} ${name.slice(0, 12)} at ${this.location}: no space left on device`);
      default:
        throw ioError('EIO', `${call} ${type} ${name.slice(0, 12)} at ${this.location}: input/output error`);
    }
  }
}

function ioError(code: string, message: string): NodeJS.ErrnoException {
  const err = new Error(message) as NodeJS.ErrnoException;
  err.code = code;
  return err;
}
