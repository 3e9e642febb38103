import { subscribe } from 'node:diagnostics_channel';
import { setFlagsFromString } from 'node:v8';
import type { Worker } from 'node:worker_threads';

/**
 * V8 sizes a process's heap for speed: a thread's young generation grows each time as many bytes as it holds
 * have survived scavenges, up to 2 x 16 MiB, and the old generation grows by up to half again before a full
 * collection. A backup's main thread makes mostly short-lived objects (stats, tree nodes, ids) and sat on some
 * 65 MiB of heap while holding about 15; a long restore or check reaches the young generation's full size, all
 * of it garbage waiting for a scavenge. Node reads `--max-semi-space-size` only at start, but V8 reads the
 * growth factor at each growth: at 1 the young generation keeps the size it has (a few MiB, whatever loading the
 * modules took). Scavenges come more often and each costs as little (few objects survive one): CPU time
 * measured the same.
 * The flags are the process's, and V8 sets the growth factor back whenever an isolate is made, as each worker
 * thread's is: they are set again once each worker runs. This module is main.ts's first import, so that they
 * are set before the rest loads (loading the engine grows the young generation, which never shrinks back).
 * For a command line process only, never inside the server.
 */
const YOUNG_KEPT_SMALL = '--semi-space-growth-factor=1';
const OLD_GROWS_LITTLE = '--heap-growing-percent=10';

/** The flags of each command that runs long over a repository; the old generation's only where measured. */
const FLAGS: Readonly<Record<string, readonly string[]>> = {
  backup: [YOUNG_KEPT_SMALL, OLD_GROWS_LITTLE],
  generation: [YOUNG_KEPT_SMALL, OLD_GROWS_LITTLE],
  restore: [YOUNG_KEPT_SMALL],
  check: [YOUNG_KEPT_SMALL],
};

/** Sets `flags` from now on, in this process and again as each worker thread it starts runs. */
export function keepHeapSmall(flags: readonly string[]): void {
  const set = (): void => {
    for (const f of flags) setFlagsFromString(f);
  };
  set();
  subscribe('worker_threads', (m) => {
    // The worker's isolate is made on its own thread, some time before it runs: until then, set again every
    // millisecond, so that this thread's young generation does not grow twice over in the meantime.
    // Unref'd, and stopped however the worker ends (it emits 'exit' after any 'error'): a worker that ends
    // before it runs must not keep the process alive.
    const again = setInterval(set, 1).unref();
    const worker = (m as { worker: Worker }).worker;
    const stop = () => {
      clearInterval(again);
      worker.off('online', online).off('exit', stop);
    };
    const online = () => {
      stop();
      set();
    };
    worker.once('online', online).once('exit', stop);
  });
}

/** The heap flags for `command` (the CLI's first word), set when it has some; returns them. */
export function heapFlagsFor(command: string | undefined): readonly string[] {
  const flags = (command !== undefined && Object.hasOwn(FLAGS, command) ? FLAGS[command] : undefined) ?? [];
  if (flags.length > 0) keepHeapSmall(flags);
  return flags;
}

const self = process.argv[1] ?? '';
if (self.endsWith('/cli/main.js') || self.endsWith('/bm-dataprotect')) heapFlagsFor(process.argv.slice(2).find((a) => !a.startsWith('-')));
