import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGlobalRestore } from '../../server/dataprotect/global-restore/run.js';
import { rehearseGlobalRestore } from '../../server/dataprotect/global-restore/sandbox.js';
import { Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { everyMailbox, globalFixture, recordFiles, recordTables, referenceInstallation, wipeInstallation, type GlobalFixture } from './helpers.js';

// The disaster again, from an encrypted repository: the rehearsal compares restored files by their keyed blob
// ids, and the restore itself brings back every row, every file and every message.

const PASSWORD = 'global restore from an encrypted repository';
let f: GlobalFixture;
beforeAll(async () => {
  f = await globalFixture('crypt', 4, { password: PASSWORD });
});
afterAll(async () => {
  await f?.close();
});

describe('global restore from an encrypted repository', () => {
  it('the rehearsal finds the sandbox exact, and after a wipe every table, file and message comes back', async () => {
    expect(f.repo.encrypted).toBe(true);
    const dir = path.join(await mkdtemp(path.join(tmpdir(), 'dp-rehearsal-crypt-')), 'sandbox');
    const rehearsal = await rehearseGlobalRestore({ repo: f.repo, installation: referenceInstallation(f.host), generation: 'latest', dir });
    expect(rehearsal.parts.map((p) => [p.key, p.differences])).toEqual(rehearsal.parts.map((p) => [p.key, []]));
    expect(rehearsal.ok).toBe(true);
    expect(rehearsal.parts.every((p) => p.compared > 0)).toBe(true);

    await wipeInstallation(f.host);
    // Opened again with its password, as the command line or the console would.
    const repo = await Repository.open(new LocalStorage(f.repoDir), { password: PASSWORD });
    try {
      const r = await runGlobalRestore({ repo, installation: referenceInstallation(f.host), generation: f.generation });
      expect(r.parts.every((p) => p.state === 'restored')).toBe(true);
    } finally {
      await repo.close();
    }
    expect(await recordTables(f.sb.db)).toEqual(f.tables);
    expect(await recordFiles(f.host.layout)).toEqual(f.files);
    const imap = await everyMailbox(f.host.layout);
    expect([...imap.keys()]).toEqual([...f.imap.keys()]);
    for (const [login, folders] of f.imap) expect(imap.get(login), login).toEqual(folders);
  });
});
