import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MAIN, startConsoleProcess, type ConsoleProcess } from '../reliability/console-process.js';

// The BlueMind-style script (curl calls as BlueMind's documentation writes them) against the reference console
// started as `npm start` starts it (dist/plugin/standalone/main.js: the reference host seeded, Dovecot, PostgreSQL).

const run = promisify(execFile);
const SCRIPT = 'test/http/bluemind-compat.sh';
const ready = existsSync(MAIN);

let c: ConsoleProcess;
beforeAll(async () => {
  // The server's log on, as `npm start` has it: the script's requests are in it, its API key is not.
  if (ready) c = await startConsoleProcess({ DP_LOG: '1', DP_LOG_LEVEL: 'info' });
}, 300_000);
afterAll(async () => c?.cleanup());

it.skipIf(!ready)("a script written for BlueMind's API backs up, lists generations, reads capabilities and content, restores and reads the logs", async () => {
  const { stdout, stderr } = await run('bash', [SCRIPT], {
    env: { ...process.env, BM_URL: c.url, BM_APIKEY: c.key },
    timeout: 600_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  expect(stderr).toBe('');
  expect(stdout).toMatch(/^== backup\nbackup task [0-9a-f-]{36}\n/);
  // The first start backed up already: the script's run makes at least a second generation, numbered in BlueMind's way.
  const generations = [...stdout.matchAll(/^generation (\d+) of (\S+), BlueMind (\d+\.\d+), (\d+) parts, errors: false$/gm)];
  expect(generations.length).toBeGreaterThanOrEqual(1);
  expect(generations.every((g) => Number(g[4]) >= 4)).toBe(true);
  expect(stdout).toMatch(/^\{"daily":\d+,"weekly":\d+,"monthly":\d+\}$/m);
  expect(stdout).toMatch(/^replace\.mailbox USER$/m);
  expect(stdout).toMatch(/^complete\.restore\.user null$/m);
  expect(stdout).toMatch(/with the mail part:\n(.*\n)*replace\.mailbox\n/);
  expect(stdout).toMatch(/^\d+ domains, \d+ entries$/m);
  const restore = /^restore task ([0-9a-f-]{36})$/m.exec(stdout)?.[1];
  expect(restore).toBeDefined();
  expect(stdout).toMatch(/^logs:\n.+\n/m);
  expect(stdout).toContain('{"end":true,"status":"Success"}');
  expect(stdout).toContain(`restore ${restore} done`);

  const lines = c.output().split('\n').filter((l) => l.startsWith('{'));
  const log = lines.map((l) => JSON.parse(l) as { level: number; reqId?: string; req?: { url: string } });
  expect(log.some((l) => l.level === 30 && l.req?.url === '/api/dataprotect/_backup' && /^req-[0-9a-f]{12}$/.test(l.reqId ?? ''))).toBe(true);
  expect(log.some((l) => l.req?.url?.startsWith('/api/tasks/'))).toBe(true);
  // The start-up banner prints the key for the administrator; the log never does.
  expect(lines.join('\n')).not.toContain(c.key);
}, 900_000);
