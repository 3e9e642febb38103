import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../../server/cli/main.js';
import { describe as describeDb } from '../../server/pg/settings.js';
import { withClient } from '../../server/pg/client.js';
import { freePort } from '../../server/host/reference/dovecot.js';
import { sandbox, type Sandbox } from './helpers.js';

let sb: Sandbox;
let repoDir: string;

beforeAll(async () => {
  sb = await sandbox('cli');
  repoDir = await mkdtemp(path.join(tmpdir(), 'dp-repo-cli-'));
  process.env.DATABASE_URL = `postgres://${sb.db.user}@${sb.db.host}:${sb.db.port}/${sb.db.database}`;
});
afterAll(async () => {
  delete process.env.DATABASE_URL;
  await sb?.cleanup();
  if (repoDir) await rm(repoDir, { recursive: true, force: true });
});

/** Runs the CLI in-process and returns its JSON lines. */
async function cli(...args: string[]): Promise<Record<string, any>[]> {
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: any) => {
    lines.push(String(chunk));
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await (await buildProgram()).parseAsync(['node', 'bm-dataprotect', ...args]);
  } finally {
    spy.mockRestore();
    err.mockRestore();
  }
  return lines.join('').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
}

describe('bm-dataprotect host and db commands', () => {
  it('seeds with DATABASE_URL and --host-root, backs up, restores latest into a new database, and runs Dovecot', async () => {
    const root = path.join(sb.root, 'host');
    const [seed] = await cli('host', 'seed', '--users', '9', '--host-root', root, '--json').then((l) => l.filter((x) => x.type === 'summary'));
    expect(seed).toMatchObject({ users: 9, domains: 2, database: sb.db.database });

    await cli('repo', 'init', '--repo', repoDir, '--json');
    const backup = (await cli('db', 'backup', '--repo', repoDir, '--host-root', root, '--json')).find((x) => x.type === 'summary')!;
    expect(backup.database).toBe(sb.db.database);
    expect(backup.entities).toBeGreaterThan(9);

    const target = sb.extraDb('cli_restore');
    const restored = (await cli('db', 'restore', 'latest', '--repo', repoDir, '--database', target.database, '--json')).find((x) => x.type === 'summary')!;
    expect(restored).toMatchObject({ database: target.database, snapshot: backup.snapshot, tables: 20 });
    const users = await withClient(target, async (c) => Number((await c.query('SELECT count(*) n FROM t_domain_user')).rows[0].n));
    expect(users).toBe(9);
    expect(describeDb(target)).toContain(target.database);

    // A generation id (as the backup runs record it in the part's metadata) names the part too.
    const { Repository } = await import('../../server/engine/index.js');
    const { LocalStorage } = await import('../../server/storage/index.js');
    const repo = await Repository.open(new LocalStorage(repoDir));
    const { backupDatabase } = await import('../../server/sources/pgsql-backup.js');
    const tagged = await backupDatabase({ repo, server: 'bm-master', connection: sb.db, meta: { generation: 42 } });
    await repo.close();
    const byGeneration = sb.extraDb('cli_gen');
    const r42 = (await cli('db', 'restore', '42', '--repo', repoDir, '--database', byGeneration.database, '--json')).find((x) => x.type === 'summary')!;
    expect(r42.snapshot).toBe(tagged.snapshot.id);
    await expect(cli('db', 'restore', 'latest', '--repo', repoDir, '--database', byGeneration.database, '--json')).rejects.toThrow(/already exists/);

    // db export: a user's calendars, books and task lists as ICS / VCF; notes (no such form) only as JSON lines.
    const [owner] = await withClient(sb.db, async (c) => (await c.query<{ owner: string }>(`SELECT owner FROM t_container WHERE container_type = 'notes' ORDER BY owner LIMIT 1`)).rows);
    const out = path.join(sb.root, 'export.txt');
    await cli('db', 'export', backup.snapshot, '--repo', repoDir, '--entity', owner.owner, '--output', out, '--host-root', root);
    const text = await (await import('node:fs/promises')).readFile(out, 'utf8');
    expect(text).toContain('BEGIN:VCALENDAR');
    expect(text).toContain('BEGIN:VCARD');
    expect(text).toContain('BEGIN:VTODO');
    const notes = `notes:default_${owner.owner}`;
    await expect(cli('db', 'export', backup.snapshot, '--repo', repoDir, '--entity', owner.owner, '--container', notes, '--host-root', root)).rejects.toThrow(/no ICS or VCF form: use --format jsonl/);
    await cli('db', 'export', backup.snapshot, '--repo', repoDir, '--entity', owner.owner, '--container', notes, '--format', 'jsonl', '--output', out, '--host-root', root);
    const lines = (await (await import('node:fs/promises')).readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0].container).toMatchObject({ uid: notes, container_type: 'notes' });
    expect(lines.length).toBeGreaterThan(1);

    const port = await freePort();
    const started = (await cli('host', 'dovecot', 'start', '--port', String(port), '--host-root', root, '--json'))[0];
    expect(started).toMatchObject({ running: true, port, host: '127.0.0.2' });
    const stopped = (await cli('host', 'dovecot', 'stop', '--host-root', root, '--json'))[0];
    expect(stopped).toMatchObject({ wasRunning: true });
  });
});
