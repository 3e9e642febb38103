// Deterministic pseudo-random numbers for generated data (the demo and benchmark mail spool, the reference host's
// seed, tests): the same seed gives the same data, byte for byte.

/**
 * The generator behind a stream. The reference host's seed draws from mulberry32 and the demo spool from
 * xorshift32; each keeps its own so that seeded installations and the benchmark's corpus stay what they were.
 */
export type PrngAlgorithm = 'mulberry32' | 'xorshift32';

export class Prng {
  private s: number;
  constructor(
    seed: number,
    private readonly algorithm: PrngAlgorithm = 'mulberry32',
  ) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  /** Uniform in [0, 1). */
  next(): number {
    if (this.algorithm === 'xorshift32') {
      let x = this.s;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.s = x >>> 0;
      return this.s / 4294967296;
    }
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** The generator's next 32 bits, as an integer in [0, 2^32). */
  uint32(): number {
    return this.next() * 4294967296;
  }
  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.next() * list.length)];
  }
  /** Uppercase UUID-shaped id, as BlueMind's entity uids. */
  uuid(): string {
    const hex = Array.from({ length: 32 }, () => Math.floor(this.next() * 16).toString(16)).join('').toUpperCase();
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-A${hex.slice(17, 20)}-${hex.slice(20)}`;
  }
  hex(n: number): string {
    return Array.from({ length: n }, () => Math.floor(this.next() * 16).toString(16)).join('');
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.uint32();
      b[i] = v & 255;
      if (i + 1 < n) b[i + 1] = (v >>> 8) & 255;
      if (i + 2 < n) b[i + 2] = (v >>> 16) & 255;
      if (i + 3 < n) b[i + 3] = v >>> 24;
    }
    return b;
  }
}
