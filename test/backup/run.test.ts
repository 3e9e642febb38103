import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPartSnapshot, readGenerations } from '../../server/dataprotect/generation/format.js';
import { runGeneration } from '../../server/dataprotect/generation/run.js';
import { readDir } from '../../server/engine/index.js';
import { ALL_ON, seededHost, type BackupFixture } from './helpers.js';

let f: BackupFixture;
beforeAll(async () => {
  f = await seededHost('run');
});
afterAll(async () => {
  await f?.cleanup();
});

describe('a backup run', () => {
  it('two successive runs give two valid generations, the second much smaller', async () => {
    const r1 = await runGeneration({ repo: f.repo, host: f.host, trigger: 'cli', productVersion: 'test', ...ALL_ON });
    expect(r1.runStatus).toBe('OK');
    expect(r1.generation.status).toBe('VALID');
    const tags = r1.generation.parts.map((p) => `${p.server} ${p.tag}`);
    expect(tags).toEqual([
      'bm-master bm/pgsql', 'bm-master bm/conf', 'bm-mail bm/conf', 'bm-master filehosting/data', 'bm-mail mail/imap', 'bm-mail mail/archive',
    ]);
    for (const p of r1.generation.parts) {
      expect(p.status, `${p.server} ${p.tag}: ${p.messages.join('; ')}`).toBe('VALID');
      expect(p.sizeRead).toBeGreaterThan(0);
      expect(p.snapshot).toMatch(/^[0-9a-f]{64}$/);
    }
    const r2 = await runGeneration({ repo: f.repo, host: f.host, trigger: 'cli', productVersion: 'test', ...ALL_ON });
    expect(r2.runStatus).toBe('OK');
    const added1 = r1.generation.parts.reduce((n, p) => n + p.sizeAdded, 0);
    const added2 = r2.generation.parts.reduce((n, p) => n + p.sizeAdded, 0);
    expect(added2).toBeLessThan(added1 / 5);

    // Self-describing: the list comes back from the repository alone, newest first.
    const gens = await readGenerations(f.repo);
    expect(gens.map((g) => g.record.id)).toEqual([r2.generation.id, r1.generation.id]);
    expect(gens.every((g) => !g.interrupted && g.record.status === 'VALID' && g.record.runStatus === 'OK')).toBe(true);
    expect(gens[0].record.formatVersion).toBe(1);
    expect(gens[0].record.productVersion).toBe('test');

    // The lookup restores use: the mail part of generation 1 holds the spool.
    const snap = await findPartSnapshot(f.repo, r1.generation.id, 'bm-mail', 'mail/imap');
    expect(snap.meta?.generation).toBe(r1.generation.id);
    expect((await readDir(f.repo, snap, '/spool')).map((n) => n.name).sort()).toEqual(expect.arrayContaining(['acme.lan']));
    const latest = await findPartSnapshot(f.repo, 'latest', 'bm-master', 'bm/pgsql');
    expect(latest.meta?.generation).toBe(r2.generation.id);
  });

  it('"Backup emails" off leaves the mail parts out of the next generation', async () => {
    const r = await runGeneration({ repo: f.repo, host: f.host, trigger: 'cli', productVersion: 'test', backupEmails: false, backupArchivedEmails: false, skippedTags: ['filehosting/data'] });
    expect(r.generation.parts.map((p) => p.tag)).toEqual(['bm/pgsql', 'bm/conf', 'bm/conf']);
    expect(r.generation.status).toBe('VALID');
  });

  it('a part that fails is INVALID with its reason, the others VALID, and the run is ERROR', async () => {
    // A database with a wrong password, and mail that cannot be read: a folder without permissions (when the
    // tests do not run as root, who reads anything) and a spool location that is gone (always).
    const spool = f.host.layout.spool;
    const root = process.getuid?.() === 0;
    const blocker = path.join(spool, 'acme.lan', 'zz-unreadable');
    if (!root) {
      await mkdir(blocker, { recursive: true });
      await writeFile(path.join(blocker, 'x'), 'x');
      await chmod(blocker, 0o000);
    }
    const host = Object.create(f.host) as typeof f.host;
    const badDb = { ...f.sb.db, user: 'dp_no_such_role', password: 'secret-pw-123' };
    host.databases = async () => [{ server: 'bm-master', tag: 'bm/pgsql', connection: badDb }];
    const dataLocations = f.host.dataLocations.bind(f.host);
    host.dataLocations = async (server, tag) =>
      tag === 'mail/imap' ? [...(await dataLocations(server, tag)), { server, tag, virtualPath: '/broken', fsPath: path.join(spool, 'no-such-dir') }] : dataLocations(server, tag);
    const logs: string[] = [];
    const r = await runGeneration({
      repo: f.repo, host, trigger: 'cli', productVersion: 'test', ...ALL_ON,
      log: { info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m) },
    });
    if (!root) await chmod(blocker, 0o755);
    expect(r.runStatus).toBe('ERROR');
    expect(r.generation.status).toBe('INVALID');
    const byTag = Object.fromEntries(r.generation.parts.map((p) => [`${p.server} ${p.tag}`, p]));
    expect(byTag['bm-master bm/pgsql'].status).toBe('INVALID');
    expect(byTag['bm-master bm/pgsql'].messages.join(' ')).toMatch(/dp_no_such_role/);
    expect(byTag['bm-mail mail/imap'].status).toBe('INVALID');
    expect(byTag['bm-mail mail/imap'].messages.join(' ')).toMatch(/no-such-dir/);
    if (!root) expect(byTag['bm-mail mail/imap'].messages.join(' ')).toMatch(/zz-unreadable/);
    for (const k of ['bm-master bm/conf', 'bm-mail bm/conf', 'bm-master filehosting/data', 'bm-mail mail/archive']) expect(byTag[k].status).toBe('VALID');
    // Secrets never in messages or logs.
    expect(JSON.stringify(r.generation) + logs.join('\n')).not.toContain('secret-pw-123');
  });
});
