import { spawn, type ChildProcess } from 'node:child_process';
import { redactPassword } from '../pg/redact.js';
import { describe, pgToolEnv, type ConnectionSettings } from '../pg/settings.js';

// pg_dump and pg_restore as child processes: the password travels in their environment only, and their failures
// carry the tool's own message with the password removed.

/** A PostgreSQL tool failed; the message is the tool's own. */
export class ToolError extends Error {}

/** Runs a PostgreSQL tool; its failure carries the tool's own message, with the password removed. */
export function pgTool(bin: string, args: string[], s: ConnectionSettings): { child: ChildProcess; done: Promise<void> } {
  const child = spawn(bin, args, { env: pgToolEnv(s), stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => {
    if (stderr.length < 16_384) stderr += b.toString();
  });
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (e) => reject(new ToolError(`${bin} could not be started: ${redactPassword(e.message, s)}`)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else {
        const why = redactPassword(stderr.trim(), s) || (signal ? `killed by ${signal}` : `exit code ${code}`);
        reject(new ToolError(`${bin} of ${describe(s)} failed: ${why}`));
      }
    });
  });
  done.catch(() => {});
  return { child, done };
}

/** `pg_dump --version` and the like, for the manifest; 'unknown' when it cannot be run. */
export async function toolVersion(bin: string): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn(bin, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    c.once('error', () => resolve('unknown'));
    c.once('close', () => resolve(out.trim() || 'unknown'));
  });
}

