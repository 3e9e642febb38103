import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverGenerations } from '../../server/dataprotect/global-restore/discover.js';
import { runGlobalRestore } from '../../server/dataprotect/global-restore/run.js';
import { Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { ReferenceHost } from '../../server/host/reference/host.js';
import { referenceInstallation } from '../../server/host/reference/installation.js';
import { sandbox, type Sandbox } from '../host/helpers.js';
import { recordFiles, recordTables, type FileEntry } from './helpers.js';

// The golden generation of generation format 1, checked in (golden-maker.ts): every later version must restore
// it onto a blank installation exactly. If a format change breaks this, the change is wrong, not the fixture.
const GOLDEN = fileURLToPath(new URL('../fixtures/golden-generation-v1', import.meta.url));

describe('golden generation of format 1', () => {
  let sb: Sandbox;
  let repoDir: string;
  let repo: Repository;
  let expected: { generation: string; productVersion: string; parts: string[]; tables: Record<string, string[]>; files: FileEntry[] };
  beforeAll(async () => {
    sb = await sandbox('gr_golden');
    // A copy: restoring reads only, but a fixture must never be touched by a test.
    repoDir = await mkdtemp(join(tmpdir(), 'dp-golden-generation-'));
    await cp(join(GOLDEN, 'repo'), repoDir, { recursive: true });
    repo = await Repository.open(new LocalStorage(repoDir));
    expected = JSON.parse(await readFile(join(GOLDEN, 'expected.json'), 'utf8'));
  });
  afterAll(async () => {
    await repo?.close();
    await sb?.cleanup();
    await rm(repoDir, { recursive: true, force: true });
  });

  it('is discovered with its parts', async () => {
    const [g] = await discoverGenerations(repo);
    expect(g).toMatchObject({ id: expected.generation, status: 'VALID', formatVersion: 1, productVersion: expected.productVersion });
    expect(g.parts.map((p) => `${p.server} ${p.tag}`)).toEqual(expected.parts);
  });

  it('restores onto a blank installation exactly: every table row for row, every file with its mode and mtime', async () => {
    const host = new ReferenceHost(sb.root, sb.db);
    const r = await runGlobalRestore({ repo, installation: referenceInstallation(host), generation: 'latest' });
    expect(r.generation).toBe(expected.generation);
    expect(r.parts.map((p) => p.state)).toEqual(expected.parts.map(() => 'restored'));
    expect(await recordTables(sb.db)).toEqual(expected.tables);
    // Owners are those of the machine that wrote the fixture (the spool belongs to its dovecot user): not compared.
    const anyOwner = (l: FileEntry[]) => l.map(({ uid: _u, gid: _g, ...e }) => e);
    expect(anyOwner(await recordFiles(host.layout))).toEqual(anyOwner(expected.files));
  });
});
