// The per-installation secret the coordinator presents to every node agent: from a file only its owner can read
// (DP_AGENT_SECRET_FILE, what installations should use) or DP_AGENT_SECRET. Never logged, never in a message.

import { createHash, timingSafeEqual } from 'node:crypto';
import { open } from 'node:fs/promises';

export const AGENT_SECRET_ENV = 'DP_AGENT_SECRET';
export const AGENT_SECRET_FILE_ENV = 'DP_AGENT_SECRET_FILE';

export class AgentSecretError extends Error {}

/** A secret file's content (one trailing newline dropped); refused when others than its owner can read it. */
export async function readSecretFile(path: string): Promise<string> {
  let text: string;
  try {
    const fh = await open(path, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new AgentSecretError(`agent secret file ${path} is not a regular file`);
      if (st.mode & 0o077) {
        throw new AgentSecretError(`agent secret file ${path} can be read or written by others than its owner: run 'chmod 600 ${path}' first`);
      }
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (err instanceof AgentSecretError) throw err;
    throw new AgentSecretError(`cannot read agent secret file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret.length < 16) throw new AgentSecretError(`agent secret file ${path} holds fewer than 16 characters: put a long random secret in it (e.g. 'openssl rand -hex 32')`);
  return secret;
}

/** The configured secret, or undefined when none is: the file wins over the variable. */
export async function agentSecretFromEnvironment(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const file = env[AGENT_SECRET_FILE_ENV];
  if (file) return readSecretFile(file);
  const s = env[AGENT_SECRET_ENV];
  if (s && s.length < 16) throw new AgentSecretError(`${AGENT_SECRET_ENV} holds fewer than 16 characters: give a long random secret`);
  return s || undefined;
}

/**
 * Whether an Authorization header carries the secret. Both sides are hashed first, so the comparison is
 * constant-time whatever the lengths.
 */
export function authorized(header: string | undefined, secret: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  if (!m) return false;
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(m[1]), digest(secret));
}
