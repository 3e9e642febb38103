import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'rolldown';

/**
 * The command line (dist/server/cli/main.js) as a few files instead of some seventy modules. Node's module
 * loader costs about a millisecond per module (resolve, read, link), so that a one-mailbox restore spent more
 * time loading the program than restoring. The build bundles tsc's output (decorators are compiled already)
 * over tsc's main.js, with the command groups that main.ts imports on demand as chunks beside it; packages
 * stay external (native bindings, lazily required SDKs), except commander, which every command loads.
 * The other modules of dist/ stay as tsc wrote them (the codec worker, the plugin, the tests' imports).
 */
const CLI = fileURLToPath(new URL('./dist/server/cli/', import.meta.url));
const MARK = '// bm-dataprotect command line, bundled';
const CHUNK = 'bundle-';

// The input is tsc's main.js: a second run without tsc would bundle the bundle.
if (readFileSync(join(CLI, 'main.js'), 'utf8').includes(MARK)) throw new Error(`${CLI}main.js is bundled already: run tsc first (npm run build)`);
// Chunks of an earlier build (their names carry a hash of their content).
for (const f of readdirSync(CLI)) if (f.startsWith(CHUNK)) rmSync(join(CLI, f));

export default defineConfig({
  input: { main: join(CLI, 'main.js') },
  platform: 'node',
  external: (id) => !id.startsWith('.') && !id.startsWith('/') && id !== 'commander',
  output: {
    dir: CLI,
    format: 'esm',
    entryFileNames: '[name].js',
    chunkFileNames: `${CHUNK}[name]-[hash].js`,
    banner: MARK,
    sourcemap: true,
  },
});
