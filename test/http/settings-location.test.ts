import 'reflect-metadata';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { InvalidInputError } from '../../server/dataprotect/errors.js';
import { checkRepositoryLocation, systemFolderOf } from '../../server/dataprotect/repository-location.js';
import { SettingsService } from '../../server/dataprotect/settings.js';
import type { HostPort } from '../../server/host/port.js';
import { SettingsStore } from '../../server/store/settings-store.js';
import { KEYS, startTestApi, type TestApi } from './harness.js';

// Where a repository may be saved: never a system folder, never a folder of other files, a folder that answers
// and takes writes now, and the console is told when it shares a disk with the data it protects.

const WORK = mkdtempSync(path.join(tmpdir(), 'dp-location-'));
let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api?.close();
  rmSync(WORK, { recursive: true, force: true });
});

const base = { retentionDays: 7, backupEmails: true, backupArchivedEmails: false, backupTime: '01:00', skippedTags: [] };
const save = (repositoryLocation: string) =>
  api.app.inject({
    method: 'PUT',
    url: '/api/dataprotect/settings',
    headers: { 'x-bm-apikey': KEYS.admin },
    payload: { ...base, repositoryLocation },
  });

function folder(name: string, files: Record<string, string> = {}): string {
  const dir = path.join(WORK, name);
  mkdirSync(dir, { recursive: true });
  for (const [f, content] of Object.entries(files)) writeFileSync(path.join(dir, f), content);
  return dir;
}

describe('repository location', () => {
  const system: [string, RegExp][] = [
    ['/', /root folder/],
    ['/etc', /system folder \/etc/],
    ['/proc/self', /system folder \/proc/],
    ['/dev/zero', /system folder \/dev/],
    ['/usr/local/backups', /system folder \/usr/],
    ['/lib64/dp', /system folder \/lib64/],
    ['/var/lib/postgresql/15/main', /system folder \/var\/lib\/postgresql/],
    ['/run/dp', /system folder \/run/],
  ];
  for (const [location, message] of system) {
    it(`refuses ${location} (400 naming the field)`, async () => {
      const r = await save(location);
      expect(r.statusCode).toBe(400);
      expect(r.json().errors[0].field).toBe('body.repositoryLocation');
      expect(r.json().detail).toMatch(message);
    });
  }

  it('refuses a symbolic link that leads into a system folder', async () => {
    const link = path.join(WORK, 'to-etc');
    symlinkSync('/etc', link);
    const r = await save(link);
    expect(r.statusCode).toBe(400);
    expect(r.json().detail).toMatch(/system folder \/etc \(it leads to \/etc\)/);
  });

  it('never adopts a folder of other files, and leaves them untouched', async () => {
    const dir = folder('busy', { latest: 'mine\n', 'notes.txt': 'keep\n' });
    const r = await save(dir);
    expect(r.statusCode).toBe(400);
    expect(r.json().detail).toMatch(/holds other files \(.*latest.*\) and is not a bm-dataprotect repository/);
    expect(readFileSync(path.join(dir, 'latest'), 'utf8')).toBe('mine\n');
    const foreign = folder('foreign', { config: 'not ours' });
    expect((await save(foreign)).statusCode).toBe(400);
  });

  it('refuses a file, and a path through a file', async () => {
    folder('files', { plain: 'x' });
    const file = await save(path.join(WORK, 'files', 'plain'));
    expect(file.statusCode).toBe(400);
    expect(file.json().detail).toMatch(/is not a folder/);
    const through = await save(path.join(WORK, 'files', 'plain', 'repo'));
    expect(through.statusCode).toBe(400);
    expect(through.json().detail).toMatch(/not a folder/);
  });

  it('refuses control characters (a NUL never reaches the filesystem or the database)', async () => {
    const r = await save(`${WORK}/a\u0000b`);
    expect(r.statusCode).toBe(400);
    expect(r.json().errors[0].field).toBe('body.repositoryLocation');
  });

  it('takes an empty folder, an absent one in a writable folder (not created yet), and an existing repository', async () => {
    const empty = folder('empty');
    expect((await save(empty)).statusCode).toBe(200);
    const absent = path.join(WORK, 'later', 'repository');
    const r = await save(absent);
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json().repositoryLocation).toBe(absent);
    expect(existsSync(path.join(WORK, 'later'))).toBe(false);
    const repoDir = folder('repository');
    const repo = await Repository.init(new LocalStorage(repoDir));
    await repo.close();
    const ours = await save(`${repoDir}/`);
    expect(ours.statusCode, ours.body).toBe(200);
    expect(ours.json()).toMatchObject({ repositoryLocation: repoDir, repositoryFilesystem: { sameAsData: false, dataPaths: [] } });
  });

  it('takes an encrypted repository only when the service has its password, and says what to set otherwise', async () => {
    const repoDir = folder('encrypted');
    await (await Repository.init(new LocalStorage(repoDir), { password: 'the right one', scrypt: { N: 1024, r: 8, p: 1 } })).close();
    const pwFile = path.join(WORK, 'password');
    writeFileSync(pwFile, 'the right one\n', { mode: 0o600 });
    const saved = { file: process.env.DP_REPOSITORY_PASSWORD_FILE, pw: process.env.DP_REPOSITORY_PASSWORD };
    delete process.env.DP_REPOSITORY_PASSWORD;
    try {
      delete process.env.DP_REPOSITORY_PASSWORD_FILE;
      const none = await save(repoDir);
      expect(none.statusCode).toBe(400);
      expect(none.json().errors[0].field).toBe('body.repositoryLocation');
      expect(none.json().detail).toMatch(/is an encrypted bm-dataprotect repository and no password is configured: set DP_REPOSITORY_PASSWORD_FILE/);
      process.env.DP_REPOSITORY_PASSWORD = 'not the right one';
      const wrong = await save(repoDir);
      expect(wrong.statusCode).toBe(400);
      expect(wrong.json().detail).toMatch(/the configured password \(DP_REPOSITORY_PASSWORD_FILE\) is not one of its passwords/);
      expect(wrong.body).not.toContain('not the right one');
      delete process.env.DP_REPOSITORY_PASSWORD;
      process.env.DP_REPOSITORY_PASSWORD_FILE = pwFile;
      const ok = await save(repoDir);
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.body).not.toContain('the right one');
    } finally {
      for (const [k, v] of [['DP_REPOSITORY_PASSWORD_FILE', saved.file], ['DP_REPOSITORY_PASSWORD', saved.pw]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('says when the repository is on the same filesystem as the data it protects, and refuses one inside it', async () => {
    const spool = folder('spool');
    const host = {
      servers: async () => [{ uid: 'bm-master', address: '127.0.0.1', tags: ['mail/imap', 'bm/conf'] }],
      dataLocations: async (_server: string, tag: string) =>
        tag === 'mail/imap' ? [{ server: 'bm-master', tag, virtualPath: '/spool', fsPath: spool }] : [{ server: 'bm-master', tag, virtualPath: '/conf', fsPath: '/proc' }],
    } as unknown as HostPort;
    const settings = new SettingsService(new SettingsStore(api.pool), api.deps.audit, { repositoryLocation: '/var/backups/bluemind/dp' }, host);
    const admin = { uid: 'a', login: 'admin0@global.virt', displayName: 'admin0', email: null, domainUid: 'global.virt', globalAdmin: true, roles: [], restoreOrgUnits: [] };
    const saved = await settings.update({ ...base, repositoryLocation: folder('same-disk') }, admin);
    expect(saved.repositoryFilesystem).toEqual({ sameAsData: true, dataPaths: [spool] });
    expect((await settings.get()).repositoryFilesystem).toEqual({ sameAsData: true, dataPaths: [spool] });
    await expect(settings.update({ ...base, repositoryLocation: path.join(spool, 'dp') }, admin)).rejects.toThrow(/inside .*spool, data it protects/);
  });

  it('answers within the timeout when the folder never answers (a hung network share)', async () => {
    const started = Date.now();
    const hung = checkRepositoryLocation(path.join(WORK, 'nfs'), { timeoutMs: 300, inspect: () => new Promise(() => {}) });
    await expect(hung).rejects.toThrow(InvalidInputError);
    await expect(hung).rejects.toThrow(/did not answer within 0.3 s/);
    // It answers rather than hang: the bound is loose, for a busy machine (the folder would never answer).
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('knows the system folders', () => {
    expect(systemFolderOf('/lib')).toBe('/lib');
    expect(systemFolderOf('/libx32/a')).toBe('/libx32');
    expect(systemFolderOf('/library/backups')).toBeNull();
    expect(systemFolderOf('/etcetera')).toBeNull();
    expect(systemFolderOf('/var/backups/bluemind/dp')).toBeNull();
  });
});
