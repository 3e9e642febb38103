import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startConsole, type RunningConsole } from '../../plugin/standalone/console.js';
import type { ServerServices } from '../../plugin/server.js';
import type { ExtraAccount } from '../../plugin/standalone/auth.js';
import { dropDatabase } from '../../server/pg/databases.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
export const SCREENSHOTS = path.resolve('test-results/ui');
export const ACCOUNT = { login: 'admin0@global.virt', password: 'console-test-password', apiKey: `key-${randomBytes(8).toString('hex')}` };

export interface ConsoleUnderTest {
  console: RunningConsole;
  browser: Browser;
  close(): Promise<void>;
}

/**
 * The console as `npm start` runs it (startConsole, the same composition), on a fresh database and port 0, with
 * the UI freshly built by Vite into a temporary directory; and Debian's chromium.
 */
export const RESTORER: ExtraAccount = { login: 'restorer@example.test', password: 'restorer-password', roles: ['manageRestore'] };

export async function startConsoleUnderTest(services?: ServerServices): Promise<ConsoleUnderTest> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const work = mkdtempSync(path.join(tmpdir(), 'dp-console-'));
  const staticDir = path.join(work, 'console');
  execFileSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--outDir', staticDir, '--emptyOutDir'], { stdio: 'pipe' });
  const databaseUrl = `${process.env.DP_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432'}/dp_test_${randomBytes(6).toString('hex')}`;
  const running = await startConsole({
    port: 0,
    host: '127.0.0.1',
    databaseUrl,
    varDir: path.join(work, 'var'),
    account: ACCOUNT,
    staticDir,
    services,
    extraAccounts: [RESTORER],
    // Quiet unless asked: DP_TEST_LOG=1 shows the server's log.
    ...(process.env.DP_TEST_LOG === '1' ? { log: { env: process.env } } : {}),
  });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  return {
    console: running,
    browser,
    async close() {
      await browser.close();
      await running.close();
      await dropDatabase(databaseUrl).catch((err: Error) => console.warn(`could not drop ${databaseUrl}: ${err.message}`));
      rmSync(work, { recursive: true, force: true });
    },
  };
}
