import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { jsonLines, runCli } from './cli-helpers.js';
import { bytesOf, manifest, tempDir } from './helpers.js';

let dir: { path: string; cleanup: () => Promise<void> };
let src: string;
const files: Record<string, string> = {};

beforeAll(async () => {
  dir = await tempDir('dp-cli-crypt-');
  src = join(dir.path, 'spool');
  await mkdir(join(src, 'alice/Maildir/cur'), { recursive: true });
  for (let i = 0; i < 5; i++) await writeFile(join(src, 'alice/Maildir/cur', `m${i}:2,`), bytesOf(i + 1, 4000, true));
  for (const [name, content, mode] of [
    ['first', 'first password\n', 0o600],
    ['second', 'second password', 0o600],
    ['loose', 'readable by all', 0o644],
    ['empty', '', 0o600],
  ] as const) {
    files[name] = join(dir.path, `${name}.pw`);
    await writeFile(files[name], content);
    await chmod(files[name], mode);
  }
});
afterAll(async () => {
  await dir.cleanup();
});

// The test process may itself have a password in its environment: never let it leak into the CLI's.
const clean = { DP_REPOSITORY_PASSWORD: '', DP_REPOSITORY_PASSWORD_FILE: '', DP_NEW_REPOSITORY_PASSWORD: '' };

describe('bm-dataprotect with an encrypted repository', () => {
  test('init --encryption, backup, restore; a missing or wrong password exits 13 with a clear message; key add/list/remove', async () => {
    const repo = join(dir.path, 'repo');
    const noPassword = await runCli(['repo', 'init', '--repo', repo, '--encryption'], { env: clean });
    expect(noPassword.code).toBe(13);
    expect(noPassword.stderr).toMatch(/repo init --encryption needs a password: give --password-file FILE/);
    const loose = await runCli(['repo', 'init', '--repo', repo, '--encryption', '--password-file', files.loose], { env: clean });
    expect(loose.code).toBe(13);
    expect(loose.stderr).toContain(`password file ${files.loose} can be read or written by others than its owner (mode 0644): run 'chmod 600`);
    expect(loose.stderr).not.toContain('readable by all');
    const empty = await runCli(['repo', 'init', '--repo', repo, '--encryption', '--password-file', files.empty], { env: clean });
    expect(empty.code).toBe(13);
    expect(empty.stderr).toMatch(/is empty/);

    const init = await runCli(['repo', 'init', '--repo', repo, '--encryption', '--password-file', files.first, '--json'], { env: clean });
    expect(init.code).toBe(0);
    expect(jsonLines(init.stdout).at(-1)).toMatchObject({ version: 2, encrypted: true });

    // The password from the environment, as the plugin and scripts give it.
    const b = await runCli(['backup', '--repo', repo, '--tag', 'mail/imap', '--server', 'mail1', src], { env: { ...clean, DP_REPOSITORY_PASSWORD: 'first password' } });
    expect(b.code).toBe(0);
    expect(b.stdout).toMatch(/files: 5 new/);

    const missing = await runCli(['snapshots', '--repo', repo], { env: clean });
    expect(missing.code).toBe(13);
    expect(missing.stderr).toContain(`bm-dataprotect: repository ${repo} is encrypted: give its password (DP_REPOSITORY_PASSWORD, or --password-file FILE)`);
    const wrong = await runCli(['snapshots', '--repo', repo, '--json'], { env: { ...clean, DP_REPOSITORY_PASSWORD: 'first passwor' } });
    expect(wrong.code).toBe(13);
    expect(jsonLines(wrong.stdout).at(-1)).toMatchObject({ type: 'fatal', exitCode: 13 });
    expect(wrong.stderr).toMatch(/wrong password for repository .*: none of its 1 key\(s\) opens with it/);
    expect(wrong.stderr + wrong.stdout).not.toContain('first passwor');

    const out = join(dir.path, 'out');
    const r = await runCli(['restore', '--repo', repo, 'latest', '--target', out, '--password-file', files.first], { env: clean });
    expect(r.code).toBe(0);
    expect(await manifest(join(out, src))).toEqual(await manifest(src));

    const add = await runCli(['repo', 'key', 'add', '--repo', repo, '--password-file', files.first, '--new-password-file', files.second, '--json'], { env: clean });
    expect(add.code).toBe(0);
    const added = jsonLines(add.stdout).at(-1)!.key as string;
    const list = await runCli(['--password-file', files.second, 'repo', 'key', 'list', '--repo', repo, '--json'], { env: clean });
    expect(list.code).toBe(0);
    const keys = jsonLines(list.stdout).at(-1)!.keys as { id: string; current: boolean }[];
    expect(keys.length).toBe(2);
    expect(keys.find((k) => k.current)!.id).toBe(added);
    const first = keys.find((k) => !k.current)!.id;

    const rm = await runCli(['repo', 'key', 'remove', first.slice(0, 10), '--repo', repo], { env: { ...clean, DP_REPOSITORY_PASSWORD: 'second password' } });
    expect(rm.code).toBe(0);
    expect(rm.stdout).toContain(`removed key ${first.slice(0, 8)}`);
    expect((await runCli(['snapshots', '--repo', repo, '--password-file', files.first], { env: clean })).code).toBe(13);
    const last = await runCli(['repo', 'key', 'remove', added, '--repo', repo, '--password-file', files.second], { env: clean });
    expect(last.code).toBe(1);
    expect(last.stderr).toMatch(/only key: add another before removing it/);
    expect((await runCli(['check', '--repo', repo, '--read-data', '--password-file', files.second], { env: clean })).code).toBe(0);
  });
});
