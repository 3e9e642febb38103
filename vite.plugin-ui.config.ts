import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The plugin's UI entry as an ES module a host console loads (manifest ui.entry: dist/ui/plugin-ui.js).
// lit, @lit/context, @lit/task and ky are bundled so that the host needs nothing else.
export default defineConfig({
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('./dist/ui', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    lib: {
      entry: fileURLToPath(new URL('./plugin/ui/index.ts', import.meta.url)),
      formats: ['es'],
      fileName: () => 'plugin-ui.js',
    },
  },
});
