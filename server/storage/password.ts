import { open } from 'node:fs/promises';
import { PasswordError, type PasswordSource } from '../engine/index.js';

/**
 * The password of encrypted repositories, from the environment: `DP_REPOSITORY_PASSWORD_FILE` (a file only its
 * owner can read: what the plugin and scripts should use) or `DP_REPOSITORY_PASSWORD`. Read when a repository
 * turns out to be encrypted, never stored, never logged.
 */
export const PASSWORD_ENV = 'DP_REPOSITORY_PASSWORD';
export const PASSWORD_FILE_ENV = 'DP_REPOSITORY_PASSWORD_FILE';

/** A password file's content (one trailing newline dropped); refused when others than its owner can read it. */
export async function readPasswordFile(path: string): Promise<string> {
  let text: string;
  try {
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new PasswordError(`password file ${path} is not a regular file`);
      if (st.mode & 0o077) {
        throw new PasswordError(`password file ${path} can be read or written by others than its owner (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): run 'chmod 600 ${path}' first`);
      }
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (err instanceof PasswordError) throw err;
    throw new PasswordError(`cannot read password file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const password = text.replace(/\r?\n$/, '');
  if (!password) throw new PasswordError(`password file ${path} is empty`);
  return password;
}

/** The configured password, or undefined when none is: the file wins over the variable. */
export async function passwordFromEnvironment(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const file = env[PASSWORD_FILE_ENV];
  if (file) return readPasswordFile(file);
  return env[PASSWORD_ENV] || undefined;
}

/** Whether a password is configured (then repositories created here are encrypted). */
export function passwordConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env[PASSWORD_FILE_ENV] || env[PASSWORD_ENV]);
}

/** A source for Repository.open: the environment, read only if the repository is encrypted. */
export const environmentPassword: PasswordSource = () => passwordFromEnvironment();
