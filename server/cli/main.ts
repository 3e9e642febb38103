#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { EngineError } from '../engine/index.js';
import { UsageError } from './context.js';
import { register as backup } from './commands/backup.js';
import { register as check } from './commands/check.js';
import { register as diff } from './commands/diff.js';
import { register as forget } from './commands/forget.js';
import { register as repo } from './commands/repo.js';
import { register as restore } from './commands/restore.js';
import { register as snapshots } from './commands/snapshots.js';
import { register as host } from './commands/host.js';
import { register as db } from './commands/db.js';

/**
 * Exit codes: 0 success; 1 failure; 2 usage error; 3 backup saved but some files could not be read;
 * 10 no repository; 11 repository locked; 12 repository damaged.
 */
export function buildProgram(): Command {
  const program = new Command('bm-dataprotect')
    .description('Backup and restore for BlueMind: deduplicated, compressed, incremental snapshots')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const r of [repo, backup, snapshots, restore, diff, check, forget, host, db]) r(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    const code = err instanceof UsageError ? 2 : err instanceof EngineError ? err.exitCode : 1;
    const message = err instanceof Error ? err.message : String(err);
    if (json) process.stdout.write(JSON.stringify({ type: 'fatal', message, exitCode: code }) + '\n');
    process.stderr.write(`bm-dataprotect: ${message}\n`);
    return code;
  }
}

const self = process.argv[1] ?? '';
if (self.endsWith('/cli/main.js') || self.endsWith('/bm-dataprotect')) {
  main(process.argv).then((code) => process.exit(code));
}
