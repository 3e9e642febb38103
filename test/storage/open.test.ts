import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, test } from 'vitest';
import { GuardedStorage, LocalStorage, openStorage, S3Storage } from '../../server/storage/index.js';
import { startS3 } from './s3-server.js';
import { runCli } from '../engine/cli-helpers.js';
import { tempDir } from '../engine/helpers.js';

test('an absolute directory or a file:// URL opens a local repository', async () => {
  const d = await tempDir('dp-open-');
  try {
    const byPath = openStorage(join(d.path, 'repo'));
    expect(byPath).toBeInstanceOf(GuardedStorage);
    expect((byPath as GuardedStorage).inner).toBeInstanceOf(LocalStorage);
    expect(byPath.location).toBe(join(d.path, 'repo'));
    await byPath.write('config', 'config', Buffer.from('cfg'));
    const byUrl = openStorage(pathToFileURL(join(d.path, 'repo')).href);
    expect(byUrl.location).toBe(join(d.path, 'repo'));
    expect((await byUrl.read('config', 'config')).toString()).toBe('cfg');
  } finally {
    await d.cleanup();
  }
});

test('s3://BUCKET/PREFIX opens an S3 repository; another scheme or a relative path is refused with what this build supports', () => {
  expect((openStorage('s3://backups/bluemind') as GuardedStorage).inner).toBeInstanceOf(S3Storage);
  expect(() => openStorage('sftp://nas/backups')).toThrow(/sftp:\/\/ repositories are not supported by this build; give an absolute directory path, a file:\/\/ URL or s3:\/\/BUCKET\/PREFIX/);
  expect(() => openStorage('backups/repo')).toThrow(/"backups\/repo" is not absolute/);
  expect(() => openStorage('')).toThrow(/not absolute/);
});

test('the command line resolves a relative --repo against its working directory and refuses an unknown scheme with exit code 1', async () => {
  const sftp = await runCli(['snapshots', '--repo', 'sftp://nas/backups']);
  expect(sftp.code).toBe(1);
  expect(sftp.stderr).toMatch(/sftp:\/\/ repositories are not supported by this build/);
  const relative = await runCli(['snapshots', '--repo', 'no-such-repo-here']);
  expect(relative.code).toBe(10);
  expect(relative.stderr).toContain(join(process.cwd(), 'no-such-repo-here'));
});

test('the command line works on an S3 repository named by its location alone (repo init, backup, snapshots, restore)', async () => {
  const s3 = await startS3();
  const d = await tempDir('dp-open-s3-');
  try {
    const repo = s3.location();
    const env = s3.env;
    await writeFile(join(d.path, 'mail.eml'), 'Subject: hello\r\n\r\nbody\r\n');
    expect((await runCli(['repo', 'init', '--repo', repo], { env })).code).toBe(0);
    expect((await runCli(['backup', '--repo', repo, '--tag', 'mail/imap', d.path], { env })).code).toBe(0);
    const list = await runCli(['snapshots', '--repo', repo, '--json'], { env });
    expect(list.code).toBe(0);
    expect(list.stdout).toContain('mail/imap');
    const target = join(d.path, 'restored');
    expect((await runCli(['restore', '--repo', repo, 'latest', '--target', target], { env })).code).toBe(0);
    expect(await readFile(join(target, d.path, 'mail.eml'), 'utf8').catch(() => readFile(join(target, 'mail.eml'), 'utf8'))).toContain('body');
  } finally {
    await d.cleanup();
    await s3.stop();
  }
});

test('the AWS SDK loads only when an S3 repository is opened (a local restore does not pay for it)', () => {
  const script = `
    import { createRequire } from 'node:module';
    const { openStorage } = await import(${JSON.stringify(new URL('../../dist/server/storage/index.js', import.meta.url).href)});
    const sdk = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('@aws-sdk'));
    openStorage('/tmp/dp-local-repository');
    const local = sdk();
    openStorage('s3://backups/bluemind');
    console.log(JSON.stringify({ local, s3: sdk() }));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  expect(JSON.parse(out)).toEqual({ local: false, s3: true });
});
