import { expect, it } from 'vitest';
import { relaunchArgs, SEMI_SPACE_MB } from '../../server/cli/relaunch.js';
import { jsonLines, runCli } from '../engine/cli-helpers.js';
import { tempDir } from '../engine/helpers.js';

const argv = (...words: string[]) => ['/usr/bin/node', '/opt/bm-dataprotect/main.js', ...words];

it('restore and check run in a child with a small young generation; Node options and arguments are kept', () => {
  for (const word of ['restore', 'check']) {
    expect(relaunchArgs(argv('--password-file', '/p', word, '--repo', '/r'), ['--enable-source-maps'], {})).toEqual([
      '--enable-source-maps',
      `--max-semi-space-size=${SEMI_SPACE_MB}`,
      '/opt/bm-dataprotect/main.js',
      '--password-file',
      '/p',
      word,
      '--repo',
      '/r',
    ]);
  }
});

it('other commands, the child itself and a semi-space size the user chose run here', () => {
  expect(relaunchArgs(argv('backup', '--repo', '/r'), [], {})).toBeNull();
  expect(relaunchArgs(argv('--help'), [], {})).toBeNull();
  expect(relaunchArgs(argv('check', '--repo', '/r'), [], { BM_DATAPROTECT_RELAUNCHED: '1' })).toBeNull();
  expect(relaunchArgs(argv('check', '--repo', '/r'), ['--max-semi-space-size=8'], {})).toBeNull();
  expect(relaunchArgs(argv('restore', 'latest'), [], { NODE_OPTIONS: '--max-semi-space-size=4' })).toBeNull();
});

it("the child's output and exit code are the command's", async () => {
  const dir = await tempDir();
  try {
    const repo = `${dir.path}/repo`;
    expect((await runCli(['repo', 'init', '--repo', repo])).code).toBe(0);
    const ok = await runCli(['check', '--read-data', '--repo', repo, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(jsonLines(ok.stdout).at(-1)).toMatchObject({ type: 'summary', ok: true });
    const missing = await runCli(['restore', 'latest', '--repo', `${dir.path}/none`, '--target', `${dir.path}/out`, '--json']);
    expect(missing.code).not.toBe(0);
    expect(jsonLines(missing.stdout).at(-1)).toMatchObject({ type: 'fatal' });
    expect(missing.stderr).toContain('bm-dataprotect:');
  } finally {
    await dir.cleanup();
  }
});
