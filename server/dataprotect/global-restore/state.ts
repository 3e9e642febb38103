// The resumable state of a global restore: one file per installation recording which generation is being put
// back and which of its parts are finished. Written atomically (temp file, fsync, rename, fsync of the
// directory), so that a kill -9 leaves either the old or the new state, never half of one.

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export const STATE_FILE = 'state.json';

export interface GlobalRestoreState {
  kind: 'bm-dataprotect/global-restore';
  generation: string;
  repository: string;
  startedAt: string;
  /** Generation server uid → server uid of this installation. */
  servers: Record<string, string>;
  /** Keys (`server tag`) of the parts completely restored. */
  done: string[];
  finishedAt: string | null;
}

export async function readState(dir: string): Promise<GlobalRestoreState | null> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, STATE_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const s = JSON.parse(text) as GlobalRestoreState;
  if (s.kind !== 'bm-dataprotect/global-restore' || typeof s.generation !== 'string' || !Array.isArray(s.done)) {
    throw new Error(`${path.join(dir, STATE_FILE)} is not the state of a global restore: remove it, or restore with --wipe`);
  }
  return s;
}

export async function writeState(dir: string, s: GlobalRestoreState): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, STATE_FILE);
  const tmp = path.join(dir, `.${STATE_FILE}.${process.pid}.${randomBytes(4).toString('hex')}`);
  const h = await fs.open(tmp, 'w', 0o600);
  try {
    await h.writeFile(JSON.stringify(s, null, 1) + '\n');
    await h.sync();
  } finally {
    await h.close();
  }
  await fs.rename(tmp, file);
  const d = await fs.open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

export async function removeState(dir: string): Promise<void> {
  await fs.rm(path.join(dir, STATE_FILE), { force: true });
}
