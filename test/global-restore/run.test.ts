import { promises as fs, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkGlobalRestore } from '../../server/dataprotect/global-restore/check.js';
import { discoverGenerations } from '../../server/dataprotect/global-restore/discover.js';
import { GlobalRestoreRefusedError, runGlobalRestore } from '../../server/dataprotect/global-restore/run.js';
import { rehearseGlobalRestore } from '../../server/dataprotect/global-restore/sandbox.js';
import { databaseExists } from '../../server/pg/databases.js';
import { Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { everyMailbox, globalFixture, recordFiles, recordTables, referenceInstallation, wipeInstallation, type GlobalFixture } from './helpers.js';

// The disaster: a seeded, backed-up installation loses its database and its data directories; the global
// restore brings back every row, every file with its mode, owner and times, and Dovecot serves every message.

let f: GlobalFixture;
beforeAll(async () => {
  f = await globalFixture('run', 8);
});
afterAll(async () => {
  await f?.close();
});

describe('global restore of the reference host', () => {
  it('discovers the generation from the repository alone', async () => {
    const gens = await discoverGenerations(f.repo);
    expect(gens.map((g) => g.id)).toEqual([f.generation]);
    expect(gens[0]).toMatchObject({ status: 'VALID', productVersion: '5.1.0-reference', formatVersion: 1 });
    expect(gens[0].parts.map((p) => `${p.server} ${p.tag} ${p.serverAddress}`)).toContain('bm-mail mail/imap 127.0.0.2');
  });

  it('check refuses the live installation (not blank) and says to wipe, touching nothing', async () => {
    const inst = referenceInstallation(f.host);
    const c = await checkGlobalRestore({ repo: f.repo, installation: inst, generation: 'latest' });
    expect(c.ok).toBe(false);
    const byId = Object.fromEntries(c.prerequisites.map((p) => [p.id, p]));
    expect(byId.generation.status).toBe('met');
    expect(byId.repository.status).toBe('met');
    expect(byId.product.status).toBe('met');
    expect(byId.servers.status).toBe('met');
    expect(byId.databases).toMatchObject({ status: 'not-met', advice: expect.stringContaining('--wipe') });
    expect(byId.directories.status).toBe('not-met');
    await expect(runGlobalRestore({ repo: f.repo, installation: inst, generation: 'latest' })).rejects.toThrow(GlobalRestoreRefusedError);
    expect(await recordTables(f.sb.db)).toEqual(f.tables);
    expect(await recordFiles(f.host.layout)).toEqual(f.files);
  });

  it('refuses a product of another major version, or older than the generation', async () => {
    for (const [running, status] of [['4.9.0', 'not-met'], ['5.0.9', 'not-met'], ['5.3.1', 'met']] as const) {
      const inst = { ...referenceInstallation(f.host), productVersion: running };
      const c = await checkGlobalRestore({ repo: f.repo, installation: inst, generation: 'latest' });
      expect(c.prerequisites.find((p) => p.id === 'product')!.status, running).toBe(status);
    }
  });

  it('the rehearsal restores into a sandbox, finds it exact, removes it, and leaves the installation alone', async () => {
    const dir = path.join(await mkdtemp(path.join(tmpdir(), 'dp-rehearsal-')), 'sandbox');
    const r = await rehearseGlobalRestore({ repo: f.repo, installation: referenceInstallation(f.host), generation: 'latest', dir });
    expect(r.parts.map((p) => [p.key, p.differences])).toEqual(r.parts.map((p) => [p.key, []]));
    expect(r.ok).toBe(true);
    expect(r.failure).toBeNull();
    expect(r.parts.length).toBe(6);
    expect(r.parts.every((p) => p.compared > 0)).toBe(true);
    await expect(fs.access(dir)).rejects.toThrow();
    expect(await databaseExists(f.sb.db, `${f.sb.db.database}_rehearsal_x`)).toBe(false);
    expect(await recordTables(f.sb.db)).toEqual(f.tables);
    expect(await recordFiles(f.host.layout)).toEqual(f.files);
  });

  it('the rehearsal compares contents: a file corrupted in the sandbox (same size, mode and mtime) fails it', async () => {
    const dir = path.join(await mkdtemp(path.join(tmpdir(), 'dp-rehearsal-')), 'sandbox');
    let corrupted = '';
    const r = await rehearseGlobalRestore({
      repo: f.repo, installation: referenceInstallation(f.host), generation: 'latest', dir,
      onPart: (key, state) => {
        if (key !== 'bm-mail mail/imap' || state !== 'done') return;
        // The spool is in the sandbox and not yet compared: one message changes its bytes but nothing else.
        const spool = path.join(dir, 'servers', 'bm-mail', 'mail_imap', 'spool');
        const file = readdirSync(spool, { recursive: true, encoding: 'utf8' }).sort().map((n) => path.join(spool, n)).find((p) => path.basename(path.dirname(p)) === 'cur' && statSync(p).isFile())!;
        const st = statSync(file);
        const bytes = readFileSync(file);
        bytes[bytes.length - 2] ^= 0x20;
        writeFileSync(file, bytes);
        utimesSync(file, st.atime, st.mtime);
        corrupted = path.relative(spool, file);
      },
    });
    expect(corrupted).not.toBe('');
    expect(r.ok).toBe(false);
    expect(r.failure).toBeNull();
    const imapPart = r.parts.find((p) => p.key === 'bm-mail mail/imap')!;
    expect(imapPart.differences).toEqual([`/spool/${corrupted}: content differs from the generation (blob digests)`]);
    expect(r.parts.filter((p) => p !== imapPart).every((p) => p.differences.length === 0)).toBe(true);
    // Table fingerprints were compared too, one per table.
    expect(r.parts.find((p) => p.key === 'bm-master bm/pgsql')!.compared).toBeGreaterThan(10);
    await expect(fs.access(dir)).rejects.toThrow();
  });

  it('the rehearsal of a repository with a damaged pack fails and says where', async () => {
    const copy = await mkdtemp(path.join(tmpdir(), 'dp-repo-damaged-'));
    await fs.cp(f.repoDir, copy, { recursive: true });
    // The largest pack holds mail: a few bytes flipped in its middle.
    const packs: { file: string; size: number }[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else packs.push({ file: p, size: statSync(p).size });
      }
    };
    walk(path.join(copy, 'data'));
    const biggest = packs.sort((a, b) => b.size - a.size)[0];
    const bytes = readFileSync(biggest.file);
    for (let i = 0; i < 64; i++) bytes[Math.floor(bytes.length / 2) + i] ^= 0xff;
    writeFileSync(biggest.file, bytes);
    const repo = await Repository.open(new LocalStorage(copy));
    try {
      const dir = path.join(await mkdtemp(path.join(tmpdir(), 'dp-rehearsal-')), 'sandbox');
      const r = await rehearseGlobalRestore({ repo, installation: referenceInstallation(f.host), generation: 'latest', dir });
      expect(r.ok).toBe(false);
      expect(r.failure).toMatch(/part .*error|damaged|does not match|hash/i);
      await expect(fs.access(dir)).rejects.toThrow();
    } finally {
      await repo.close();
      await fs.rm(copy, { recursive: true, force: true });
    }
    expect(await recordTables(f.sb.db)).toEqual(f.tables);
  });

  it('after a wipe, restores every table row for row and every file exactly, and IMAP serves every message with its flags', async () => {
    await wipeInstallation(f.host);
    const inst = referenceInstallation(f.host);
    const before = await checkGlobalRestore({ repo: f.repo, installation: inst, generation: f.generation });
    expect(before.prerequisites.filter((p) => p.status !== 'met')).toEqual([]);
    const seen: string[] = [];
    const r = await runGlobalRestore({ repo: f.repo, installation: inst, generation: f.generation, onPart: (k, s) => seen.push(`${s} ${k}`) });
    // Dependency order: the database first, configuration and files next, mail last.
    expect(r.parts.map((p) => p.key)).toEqual([
      'bm-master bm/pgsql', 'bm-master bm/conf', 'bm-mail bm/conf', 'bm-master filehosting/data', 'bm-mail mail/imap', 'bm-mail mail/archive',
    ]);
    expect(r.parts.every((p) => p.state === 'restored')).toBe(true);
    expect(seen.filter((s) => s.startsWith('done')).length).toBe(r.parts.length);
    expect(await recordTables(f.sb.db)).toEqual(f.tables);
    expect(await recordFiles(f.host.layout)).toEqual(f.files);
    const imap = await everyMailbox(f.host.layout);
    expect([...imap.keys()]).toEqual([...f.imap.keys()]);
    for (const [login, folders] of f.imap) expect(imap.get(login), login).toEqual(folders);
    // Every mailbox has mail, and some of it carries flags.
    const all = [...imap.values()].flatMap((m) => [...m.values()].flat());
    expect(all.length).toBeGreaterThan(40);
    expect(all.some((m) => m.flags.includes('\\Seen'))).toBe(true);
    expect(all.some((m) => m.flags.includes('\\Flagged'))).toBe(true);

    // Once finished, a second run of the same generation (the first killed as it ended, say) has nothing to do:
    // it says so and touches nothing; only --wipe would restore it again.
    const again = await runGlobalRestore({ repo: f.repo, installation: inst, generation: f.generation });
    expect(again.alreadyRestored).toBe(true);
    expect(again.parts.map((p) => p.state)).toEqual(r.parts.map(() => 'already restored'));
    expect(await recordTables(f.sb.db)).toEqual(f.tables);
    const check = await checkGlobalRestore({ repo: f.repo, installation: inst, generation: f.generation });
    expect(check.prerequisites.find((p) => p.id === 'resume')).toMatchObject({ status: 'met', message: expect.stringMatching(/already restored completely/) });
    // A host emptied since (another disaster) is not "already restored": only part of it is not blank either.
    await fs.rm(f.host.layout.archive, { recursive: true, force: true });
    const partly = await checkGlobalRestore({ repo: f.repo, installation: inst, generation: f.generation });
    expect(partly.alreadyRestored).toBe(false);
    await expect(runGlobalRestore({ repo: f.repo, installation: inst, generation: f.generation })).rejects.toThrow(/not blank/);
  });
});
