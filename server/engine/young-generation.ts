import { setFlagsFromString } from 'node:v8';
import { isMainThread, workerData } from 'node:worker_threads';

/**
 * V8 grows a thread's young generation (two semi-spaces) each time as many bytes as it holds have survived
 * scavenges, up to 2 x 16 MiB on a 64-bit host. A restore or a check runs long and allocates steadily (trees,
 * plans, blob ids), so its threads reach that size: ~30 MiB of a restore's peak memory that is only garbage
 * waiting for the next scavenge. Node reads `--max-semi-space-size` only at start, but V8 reads the growth
 * factor at each growth: at 1 a thread's young generation keeps the size it has when it is set (a few MiB,
 * whatever loading the modules took). Scavenges come more often and each costs as little (few objects survive
 * one): no CPU we could measure. The factor is the process's, and V8 sets it back whenever a thread's isolate
 * starts: a codec worker applies it again as soon as its code runs (codec-pool.ts passes `smallYoung` on;
 * codec-worker.ts imports this module first). For a command line process only (the CLI sets it for restore and
 * check), never inside the server.
 */
let keptSmall = false;

/** From now on, in this process and the codec workers it starts. */
export function keepYoungGenerationSmall(): void {
  keptSmall = true;
  applyYoungGenerationLimit();
}

export function youngGenerationKeptSmall(): boolean {
  return keptSmall;
}

function applyYoungGenerationLimit(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

if (!isMainThread && (workerData as { smallYoung?: boolean } | null)?.smallYoung === true) applyYoungGenerationLimit();
