/**
 * Slows down password guessing at the console's sign-in: after `max` failures within `windowMs` from one address
 * or for one login, further attempts are refused until the oldest failure leaves the window. Counting per login
 * too stops a guesser that changes addresses; counting per address stops one that tries many logins.
 */
export class SignInLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly max = 5,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds to wait before trying again, or 0 when an attempt is allowed now. */
  retryAfter(ip: string, login: string): number {
    const t = this.now();
    let wait = 0;
    for (const key of keys(ip, login)) {
      const recent = this.recent(key, t);
      if (recent.length >= this.max) wait = Math.max(wait, recent[recent.length - this.max] + this.windowMs - t);
    }
    return wait > 0 ? Math.ceil(wait / 1000) : 0;
  }

  failed(ip: string, login: string): void {
    const t = this.now();
    for (const key of keys(ip, login)) this.failures.set(key, [...this.recent(key, t), t]);
    // Keeps memory bounded under a flood of distinct logins: forget whoever has no failure left in the window.
    if (this.failures.size > 10_000) for (const key of [...this.failures.keys()]) if (!this.recent(key, t).length) this.failures.delete(key);
  }

  /** A good password clears the login's failures (not the address's: one right guess does not unlock others). */
  succeeded(login: string): void {
    this.failures.delete(`login:${login.toLowerCase()}`);
  }

  private recent(key: string, t: number): number[] {
    const list = (this.failures.get(key) ?? []).filter((x) => x > t - this.windowMs);
    if (list.length) this.failures.set(key, list);
    else this.failures.delete(key);
    return list;
  }
}

function keys(ip: string, login: string): string[] {
  return [`ip:${ip}`, `login:${login.toLowerCase()}`];
}
