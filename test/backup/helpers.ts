// Fixtures for the backup suites: a seeded reference host (own database, own root) and a fresh repository.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Repository } from '../../server/engine/index.js';
import { LocalStorage } from '../../server/storage/index.js';
import { ReferenceHost } from '../../server/host/reference/host.js';
import { seedReference } from '../../server/host/reference/seed.js';
import { sandbox, type Sandbox } from '../host/helpers.js';

export interface BackupFixture {
  sb: Sandbox;
  host: ReferenceHost;
  repoDir: string;
  repo: Repository;
  cleanup(): Promise<void>;
}

export async function seededHost(tag: string, users = 6): Promise<BackupFixture> {
  const sb = await sandbox(tag);
  await seedReference({ connection: sb.db, root: sb.root, users, messagesPerUser: 8, eventsPerUser: 6, contactsPerUser: 5, todosPerUser: 2 });
  const host = new ReferenceHost(sb.root, sb.db);
  const repoDir = await mkdtemp(path.join(tmpdir(), `dp-repo-${tag}-`));
  const repo = await Repository.init(new LocalStorage(repoDir));
  return {
    sb, host, repoDir, repo,
    async cleanup() {
      await repo.close().catch(() => {});
      await sb.cleanup();
      await rm(repoDir, { recursive: true, force: true });
    },
  };
}

export const ALL_ON = { backupEmails: true, backupArchivedEmails: true, skippedTags: [] as string[] };
