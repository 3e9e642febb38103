import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startConsole, type RunningConsole } from '../../plugin/standalone/console.js';
import { SignInLimiter } from '../../plugin/standalone/sign-in-limit.js';
import { dropDatabase } from '../../server/pg/databases.js';
import { PG_BASE } from './console-process.js';

const databaseUrl = `${PG_BASE}/dp_test_${randomBytes(6).toString('hex')}`;
const work = mkdtempSync(path.join(tmpdir(), 'dp-signin-'));
let running: RunningConsole;

beforeAll(async () => {
  running = await startConsole({
    port: 0, host: '127.0.0.1', databaseUrl, varDir: work, staticDir: work,
    account: { login: 'admin0@global.virt', password: 'right-password', apiKey: `k-${randomBytes(6).toString('hex')}` },
  });
}, 300_000);
afterAll(async () => {
  await running?.close();
  await dropDatabase(databaseUrl).catch(() => {});
  rmSync(work, { recursive: true, force: true });
});

const login = (body: unknown) =>
  fetch(`${running.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

it('the console sign-in refuses a sixth wrong password within a minute with 429 and Retry-After, even with the right one', async () => {
  for (let i = 0; i < 5; i++) expect((await login({ login: 'admin0@global.virt', password: `guess-${i}` })).status).toBe(401);
  const limited = await login({ login: 'admin0@global.virt', password: 'right-password' });
  expect(limited.status).toBe(429);
  const wait = Number(limited.headers.get('retry-after'));
  expect(wait).toBeGreaterThan(0);
  expect(wait).toBeLessThanOrEqual(60);
  expect(((await limited.json()) as { detail: string }).detail).toMatch(/Too many failed sign-ins: try again in \d+ s/);
  // Another login from the same address is limited too: the address has used its failures.
  expect((await login({ login: 'someone@else', password: 'x' })).status).toBe(429);
});

it('counts failures per address and per login, forgets them after the window, and a good password clears the login', () => {
  let now = 1_000_000;
  const l = new SignInLimiter(5, 60_000, () => now);
  for (let i = 0; i < 5; i++) {
    expect(l.retryAfter(`10.0.0.${i}`, 'Admin')).toBe(0);
    l.failed(`10.0.0.${i}`, 'Admin');
  }
  // Five addresses, one login: the login is limited from a sixth address, another login is not.
  expect(l.retryAfter('10.0.0.9', 'admin')).toBe(60);
  expect(l.retryAfter('10.0.0.9', 'other')).toBe(0);
  now += 30_000;
  expect(l.retryAfter('10.0.0.9', 'admin')).toBe(30);
  now += 30_001;
  expect(l.retryAfter('10.0.0.9', 'admin')).toBe(0);
  for (let i = 0; i < 4; i++) l.failed('10.0.0.1', 'admin');
  l.succeeded('admin');
  l.failed('10.0.0.1', 'admin');
  expect(l.retryAfter('10.0.0.2', 'admin')).toBe(0);
  expect(l.retryAfter('10.0.0.1', 'another')).toBeGreaterThan(0);
});
