import { setFlagsFromString } from 'node:v8';

/**
 * V8 grows a thread's young generation (two semi-spaces) each time as many bytes as it holds have survived
 * scavenges, up to 2 x 16 MiB on a 64-bit host. A restore or a check runs long and allocates steadily (trees,
 * plans, blob ids), so its threads reach that size: ~30 MiB of a restore's peak memory that is only garbage
 * waiting for the next scavenge. Node reads `--max-semi-space-size` only at start, but V8 reads the growth
 * factor at each growth: at 1 the young generation of every thread of the process (this one and the codec
 * workers) keeps the size it has, 1 MiB semi-spaces at start. Scavenges come more often and each costs as
 * little (few objects survive one): no measurable CPU. Process-wide, so for these CLI commands only, never
 * inside the server.
 */
export function keepYoungGenerationSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}
