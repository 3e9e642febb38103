import { keepYoungGenerationSmall } from '../engine/young-generation.js';

/**
 * `restore` and `check` keep V8's young generation small (engine/young-generation.ts says why). Set on this
 * module's import, which main.ts makes its first: by the time main() runs, the other modules' code has already
 * grown it.
 */
const COMMANDS: ReadonlySet<string> = new Set(['restore', 'check']);

/** Whether `command` (the CLI's first word) keeps the young generation small; it does from now on when so. */
export function youngGenerationFor(command: string | undefined): boolean {
  if (!command || !COMMANDS.has(command)) return false;
  keepYoungGenerationSmall();
  return true;
}

const self = process.argv[1] ?? '';
if (self.endsWith('/cli/main.js') || self.endsWith('/bm-dataprotect')) youngGenerationFor(process.argv.slice(2).find((a) => !a.startsWith('-')));
