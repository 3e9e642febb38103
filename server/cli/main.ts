#!/usr/bin/env node
// First: it sets how V8 sizes the heap for the commands that run long, before the other modules load.
import './memory.js';
import { Command, CommanderError } from 'commander';
import nodeModule from 'node:module';
import { join, resolve } from 'node:path';
import { defaultCacheDir } from '../engine/files-cache.js';
import { PASSWORD_ENV, PASSWORD_FILE_ENV } from '../storage/password.js';
import { exitCodeOf } from './exit-codes.js';
type Register = (program: Command) => void;

/**
 * The command groups, loaded on demand: `bm-dataprotect restore` does not pay for the PostgreSQL and
 * IMAP clients that `host` and `db` load. The key is the first word of the command line.
 * To add a group: one line here, and a module exporting `register(program)`.
 */
const COMMANDS: Record<string, () => Promise<{ register: Register }>> = {
  repo: () => import('./commands/repo.js'),
  backup: () => import('./commands/backup.js'),
  snapshots: () => import('./commands/snapshots.js'),
  restore: () => import('./commands/restore.js'),
  diff: () => import('./commands/diff.js'),
  check: () => import('./commands/check.js'),
  forget: () => import('./commands/forget.js'),
  prune: () => import('./commands/forget.js'),
  host: () => import('./commands/host.js'),
  db: () => import('./commands/db.js'),
  generation: () => import('./commands/generation.js'),
  entity: () => import('./commands/entity.js'),
  'global-restore': () => import('./commands/global-restore.js'),
  dump: () => import('./commands/dump.js'),
  agent: () => import('./commands/agent.js'),
};

/**
 * Node 22.1 and later keep V8's compiled code of the modules loaded from here on (the command group wanted
 * and its chunks, see cli.bundle.config.ts) in the local cache folder, so that a short command compiles
 * almost nothing; Node 20 has no such cache, and runs as before.
 */
function compileCache(): void {
  const enable = (nodeModule as { enableCompileCache?: (dir?: string) => unknown }).enableCompileCache;
  try {
    enable?.(join(defaultCacheDir(), 'compile'));
  } catch {
    // A cache that cannot be set up (no home directory, a read-only one) only costs the compile.
  }
}

/** Exit codes: see exit-codes.ts. */
export async function buildProgram(argv: string[] = []): Promise<Command> {
  const program = new Command('bm-dataprotect')
    .description('Backup and restore for BlueMind: deduplicated, compressed, incremental snapshots')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .option('--password-file <file>', `password of an encrypted repository, from a file only its owner can read (or ${PASSWORD_FILE_ENV}, or ${PASSWORD_ENV})`)
    .exitOverride();
  // One place for the password, whatever opens the repository: the environment, read only when it is encrypted.
  program.hook('preAction', () => {
    const file = program.opts<{ passwordFile?: string }>().passwordFile;
    if (file) process.env[PASSWORD_FILE_ENV] = resolve(file);
  });
  const word = argv.slice(2).find((a) => !a.startsWith('-'));
  const wanted = word && COMMANDS[word] ? [COMMANDS[word]] : [...new Set(Object.values(COMMANDS))];
  const loaded = new Set<Register>();
  for (const load of wanted) {
    const { register } = await load();
    if (!loaded.has(register)) register(program);
    loaded.add(register);
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(argv);
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    const code = exitCodeOf(err);
    const message = err instanceof Error ? err.message : String(err);
    if (json) process.stdout.write(JSON.stringify({ type: 'fatal', message, exitCode: code }) + '\n');
    process.stderr.write(`bm-dataprotect: ${message}\n`);
    return code;
  }
}

const self = process.argv[1] ?? '';
if (self.endsWith('/cli/main.js') || self.endsWith('/bm-dataprotect')) {
  compileCache();
  main(process.argv).then((code) => process.exit(code));
}
