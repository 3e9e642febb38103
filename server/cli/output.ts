import type cliProgress from 'cli-progress';
import { createRequire } from 'node:module';

/** The progress bar's library, loaded when a bar is first drawn (a command run with --json or in a script never draws one). */
const progressBars = (): typeof cliProgress => createRequire(import.meta.url)('cli-progress') as typeof cliProgress;

/** How a command talks to its user: JSON lines with --json, a progress bar on a terminal, plain lines otherwise. */
export class Output {
  private bar: cliProgress.SingleBar | undefined;
  private lastJson = 0;
  private lastBar = 0;
  readonly tty: boolean;

  constructor(readonly json: boolean) {
    this.tty = !json && Boolean(process.stderr.isTTY);
  }

  /**
   * Whether a progress event given now would show (a JSON line at most every 200 ms, a bar redrawn at most
   * every 100 ms; nothing otherwise): a command told of every file builds its event only then.
   */
  progressDue(): boolean {
    const now = Date.now();
    if (this.json) return now - this.lastJson >= 200;
    if (!this.tty || now - this.lastBar < 100) return false;
    this.lastBar = now;
    return true;
  }

  /** A progress event; JSON lines are throttled to 5 per second, the bar redraws itself. */
  progress(event: Record<string, unknown>, bar?: { value: number; total: number; line: string }): void {
    if (this.json) {
      const now = Date.now();
      if (now - this.lastJson < 200) return;
      this.lastJson = now;
      this.line({ type: 'progress', ...event });
      return;
    }
    if (!this.tty || !bar) return;
    if (!this.bar) {
      const cliProgress = progressBars();
      this.bar = new cliProgress.SingleBar(
        { format: '{bar} {percentage}% | {line}', stream: process.stderr, hideCursor: true, etaBuffer: 50, fps: 5, barsize: 24 },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(Math.max(1, bar.total), 0, { line: bar.line });
    }
    this.bar.setTotal(Math.max(1, bar.total, bar.value));
    this.bar.update(bar.value, { line: bar.line });
  }

  stopProgress(): void {
    this.bar?.stop();
    this.bar = undefined;
  }

  /** A JSON line on stdout. */
  line(obj: Record<string, unknown>): void {
    process.stdout.write(JSON.stringify(obj) + '\n');
  }

  /** Human text on stdout (nothing with --json). */
  say(text: string): void {
    if (!this.json) process.stdout.write(text + '\n');
  }

  /** A problem with one item that does not stop the command. */
  warn(message: string, extra: Record<string, unknown> = {}): void {
    if (this.json) this.line({ type: 'error', message, ...extra });
    else {
      const redraw = this.bar !== undefined;
      if (redraw) process.stderr.write('\n');
      process.stderr.write(`warning: ${message}\n`);
    }
  }

  notice(message: string): void {
    if (this.json) this.line({ type: 'notice', message });
    else process.stderr.write(`${message}\n`);
  }

  /** The final result: a summary object with --json, a paragraph otherwise. */
  summary(obj: Record<string, unknown>, text: string): void {
    this.stopProgress();
    if (this.json) this.line({ type: 'summary', ...obj });
    else process.stdout.write(text + '\n');
  }
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function duration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** Time left at the average rate so far, or '?' while it cannot be told. */
export function eta(done: number, total: number, ms: number): string {
  if (!(done > 0 && total > done && ms > 500)) return done >= total && total > 0 ? '0 s' : '?';
  return duration(Math.round(((total - done) * ms) / done));
}

export function rate(bytesDone: number, ms: number): string {
  return ms > 0 ? `${bytes((bytesDone * 1000) / ms)}/s` : '-';
}
