import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The reference console (plugin/standalone/public) → dist/console, served by `npm start`.
export default defineConfig({
  root: fileURLToPath(new URL('./plugin/standalone/public', import.meta.url)),
  base: './',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('./dist/console', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
  },
});
