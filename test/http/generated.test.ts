import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';

it('openapi/generated is up to date with openapi/dataprotect.yaml (run `npm run gen:openapi`)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dp-gen-'));
  try {
    const out = path.join(dir, 'dataprotect.ts');
    execFileSync(process.execPath, ['node_modules/openapi-typescript/bin/cli.js', 'openapi/dataprotect.yaml', '-o', out], {
      stdio: 'pipe',
    });
    const fresh = readFileSync(out, 'utf8');
    const committed = readFileSync('openapi/generated/dataprotect.ts', 'utf8');
    expect(committed === fresh, 'openapi/generated/dataprotect.ts is stale: run `npm run gen:openapi`').toBe(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
