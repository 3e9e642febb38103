import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, test } from 'vitest';
import { LocalStorage, openStorage } from '../../server/storage/index.js';
import { runCli } from '../engine/cli-helpers.js';
import { tempDir } from '../engine/helpers.js';

test('an absolute directory or a file:// URL opens a local repository', async () => {
  const d = await tempDir('dp-open-');
  try {
    const byPath = openStorage(join(d.path, 'repo'));
    expect(byPath).toBeInstanceOf(LocalStorage);
    expect(byPath.location).toBe(join(d.path, 'repo'));
    await byPath.write('config', 'config', Buffer.from('cfg'));
    const byUrl = openStorage(pathToFileURL(join(d.path, 'repo')).href);
    expect(byUrl.location).toBe(join(d.path, 'repo'));
    expect((await byUrl.read('config', 'config')).toString()).toBe('cfg');
  } finally {
    await d.cleanup();
  }
});

test('an s3:// or other scheme, or a relative path, is refused with what this build supports', () => {
  expect(() => openStorage('s3://backups/bluemind')).toThrow(/s3:\/\/ repositories are not supported by this build; give an absolute directory path or a file:\/\/ URL/);
  expect(() => openStorage('sftp://nas/backups')).toThrow(/sftp:\/\/ repositories are not supported/);
  expect(() => openStorage('backups/repo')).toThrow(/"backups\/repo" is not absolute/);
  expect(() => openStorage('')).toThrow(/not absolute/);
});

test('the command line resolves a relative --repo against its working directory and refuses s3:// with exit code 1', async () => {
  const s3 = await runCli(['snapshots', '--repo', 's3://backups/bluemind']);
  expect(s3.code).toBe(1);
  expect(s3.stderr).toMatch(/s3:\/\/ repositories are not supported by this build/);
  const relative = await runCli(['snapshots', '--repo', 'no-such-repo-here']);
  expect(relative.code).toBe(10);
  expect(relative.stderr).toContain(join(process.cwd(), 'no-such-repo-here'));
});
