import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stopDovecot } from '../../server/host/reference/dovecot.js';
import { hostLayout } from '../../server/host/reference/layout.js';
import { dropDatabase } from '../../server/pg/databases.js';

// The reference console as a process (dist/plugin/standalone/main.js, from `npm run build`).

export const MAIN = 'dist/plugin/standalone/main.js';
export const built = existsSync(MAIN) && existsSync('dist/console/index.html');
export const PG_BASE = process.env.DP_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432';

export interface ConsoleProcess {
  child: ChildProcess;
  url: string;
  key: string;
  databaseUrl: string;
  work: string;
  output(): string;
  exited: Promise<number | null>;
  cleanup(): Promise<void>;
}

export async function startConsoleProcess(env: NodeJS.ProcessEnv = {}): Promise<ConsoleProcess> {
  const work = mkdtempSync(path.join(tmpdir(), 'dp-rel-'));
  const databaseUrl = `${PG_BASE}/dp_test_${randomBytes(6).toString('hex')}`;
  const key = `rel-key-${randomBytes(6).toString('hex')}`;
  const child = spawn(process.execPath, [MAIN], {
    // The server's log is off unless a test asks for it (or DP_TEST_LOG=1): tests read what the console prints.
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      DP_VAR_DIR: path.join(work, 'var'),
      DP_ADMIN_KEY: key,
      DP_LOG: process.env.DP_TEST_LOG === '1' ? '1' : '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code, signal) => r(code ?? (signal ? -1 : null))));
  const cleanup = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    // The reference host's Dovecot is a daemon of its own: a console killed, or one that gave up stopping, leaves
    // it running, and its folder is removed below.
    await stopDovecot(hostLayout(path.join(env.DP_VAR_DIR ?? path.join(work, 'var'), 'host'))).catch(() => {});
    await dropDatabase(databaseUrl).catch(() => {});
    await dropDatabase(`${databaseUrl}_host`).catch(() => {});
    rmSync(work, { recursive: true, force: true });
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed: ${out}`)), 60_000);
      child.stdout!.on('data', (d) => {
        out += d;
        const m = /console: (http:\/\/\S+)/.exec(out);
        if (m && out.includes('scheduler ')) {
          clearTimeout(timer);
          resolve(m[1].replace(/\/$/, ''));
        }
      });
      void exited.then((code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    return { child, url, key, databaseUrl, work, output: () => out, exited, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Polls until `check` gives a value (not undefined), or fails after `timeoutMs` with what it last saw. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
