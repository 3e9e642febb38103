import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const MODULE = fileURLToPath(new URL('../../dist/server/cli/young-generation.js', import.meta.url));

/**
 * The young generation's size (MiB) in a fresh Node process after it allocated objects of which some survive
 * many scavenges (as a restore's plan does), with or without keepYoungGenerationSmall first.
 */
function newSpaceAfterWork(small: boolean): number {
  const script = `
    const { getHeapSpaceStatistics } = await import('node:v8');
    ${small ? `(await import(${JSON.stringify(MODULE)})).keepYoungGenerationSmall();` : ''}
    let held = [];
    for (let i = 0; i < 2e6; i++) { held.push({ i, s: 'x' + i }); if (held.length > 20000) held = []; }
    process.stdout.write(String(getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 2 ** 20));
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return Number(r.stdout);
}

it('keeps the young generation at its starting size, where V8 would grow it', () => {
  // A process left alone grows it (this is what the setting is for); one that set it keeps it at 1 MiB semi-spaces.
  expect(newSpaceAfterWork(false)).toBeGreaterThan(4);
  expect(newSpaceAfterWork(true)).toBeLessThanOrEqual(2);
});
