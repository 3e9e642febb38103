// `bm-dataprotect generation …`: backup runs of the whole installation (generations), as the schedule runs them.
// Every command honours DATABASE_URL (the host's database; default postgres://postgres@127.0.0.1:5432/bj) and
// --host-root DIR (the reference host's files, default ./var/host), like the host commands.

import 'reflect-metadata';
import { Command } from 'commander';
import { EngineError, LockHeldError, NotFoundError, RepositoryNotFoundError, type Repository } from '../../engine/index.js';
import { GenerationCache } from '../../dataprotect/generation/cache.js';
import {
  deleteGeneration, GenerationNotFoundError, readGenerations, readLatest, refreshLatest, toGeneration, type GenerationRecord, type Trigger,
} from '../../dataprotect/generation/format.js';
import { withDatabaseLock } from '../../dataprotect/generation/process-lock.js';
import { openLocation, snapshotFingerprint } from '../../dataprotect/generation/repository.js';
import { setProtection } from '../../dataprotect/generation/protection.js';
import { checkRetentionPolicy, dayOf, RetentionPolicyError, type RetentionPolicy } from '../../dataprotect/generation/retention.js';
import { runGeneration } from '../../dataprotect/generation/run.js';
import { BACKUP_LOCK } from '../../dataprotect/generation/runner.js';
import { DEFAULT_POST_BACKUP_SCRIPT, defaultSettings } from '../../dataprotect/settings.js';
import { describe } from '../../pg/settings.js';
import { settingsFromEnv } from '../../host/connection.js';
import { ReferenceHost } from '../../host/reference/host.js';
import { DEFAULT_HOST_ROOT } from '../../host/reference/layout.js';
import { SCHEMA_VERSION } from '../../host/reference/schema.js';
import { createPool } from '../../pg/client.js';
import { migrate } from '../../store/migrations.js';
import { databaseUrl, hostDatabase, installation } from '../compose.js';
import { collect, output, repoPath, UsageError, wholeNumber, type RepoOptions } from '../context.js';
import { bytes, duration } from '../output.js';

interface BackupOpts extends RepoOptions {
  hostRoot: string;
  emails: boolean;
  archivedEmails?: boolean;
  skipTag: string[];
  retentionDays: number;
  keepWeekly: number;
  keepMonthly: number;
  retention: boolean;
  postScript: string | false;
  hookTimeout: number;
  scheduled?: boolean;
  recoveryPoint?: boolean;
  recoveryPointDays: number;
}

const POLICY_OPTIONS: Record<string, string> = {
  retentionDays: '--retention-days', keepWeekly: '--keep-weekly', keepMonthly: '--keep-monthly', recoveryPointRetentionDays: '--recovery-point-days',
};

/** The run's retention policy, refused (exit 2) before the backup starts when it cannot be applied. */
function policyOf(opts: BackupOpts): RetentionPolicy | undefined {
  if (!opts.retention) return undefined;
  const policy = { days: opts.retentionDays, weekly: opts.keepWeekly, monthly: opts.keepMonthly, recoveryPointDays: opts.recoveryPointDays };
  try {
    checkRetentionPolicy(policy);
  } catch (err) {
    if (err instanceof RetentionPolicyError) throw new UsageError(`${POLICY_OPTIONS[err.field] ?? err.field} ${err.reason}; nothing was backed up`);
    throw err;
  }
  return policy;
}

const rootOption = ['--host-root <dir>', "the reference host's files (mail spool, archive, file hosting, configuration)", DEFAULT_HOST_ROOT] as const;

function partsLine(g: GenerationRecord): string[] {
  return g.parts.map((p) => `  ${p.status.padEnd(7)} ${p.server.padEnd(10)} ${p.tag.padEnd(17)} read ${bytes(p.sizeRead).padStart(10)}, added ${bytes(p.sizeAdded).padStart(10)}${p.messages.length ? `  ${p.messages.join('; ')}` : ''}`);
}

export function register(program: Command): void {
  const gen = program.command('generation').description('generations: one backup run of every part of the installation');

  gen
    .command('backup')
    .description('run one backup of every part (as the schedule would): parts, then retention, prune and the post-backup action')
    .option('--repo <dir>', 'repository directory (created on the first run)')
    .option(...rootOption)
    .option('--no-emails', 'leave out the mail parts (mail/imap), as "Backup emails" off')
    .option('--archived-emails', 'also back up archived mail (mail/archive), off by default')
    .option('--skip-tag <tag>', 'a tag not to back up (repeatable)', collect, [])
    .option('--retention-days <n>', 'the retention window: every generation of the last 48 hours, then the newest (and newest valid) of each of the last n days', wholeNumber, defaultSettings({ repositoryLocation: '/' }).retentionDays)
    .option('--keep-weekly <n>', 'also keep one generation (the newest valid) of each of the last n weeks', wholeNumber, 0)
    .option('--keep-monthly <n>', 'also keep one generation (the newest valid) of each of the last n months', wholeNumber, 0)
    .option('--no-retention', 'do not apply retention (nor prune) after the run')
    .option('--post-script <path>', 'post-backup action, run after a successful run if it exists and is executable', DEFAULT_POST_BACKUP_SCRIPT)
    .option('--no-post-script', 'do not run the post-backup action')
    .option('--hook-timeout <seconds>', 'post-backup action timeout', wholeNumber, 1800)
    .option('--scheduled', 'as the schedule: do nothing when a scheduled generation of today exists already')
    .option('--recovery-point', 'a mail recovery point: the mail parts alone (mail/imap, and mail/archive with --archived-emails), no retention nor post-backup action')
    .option('--recovery-point-days <n>', 'retention keeps mail recovery points n days (1 to 30)', wholeNumber, defaultSettings({ repositoryLocation: '/' }).recoveryPointRetentionDays)
    .option('--json', 'progress as JSON lines, then a summary object')
    .action(async (opts: BackupOpts) => {
      const out = output(opts);
      if (opts.recoveryPoint && opts.scheduled) throw new UsageError('--recovery-point and --scheduled: a recovery point is not the daily run; give one of them');
      if (opts.recoveryPoint && !opts.emails) throw new UsageError('--recovery-point backs up mail: it cannot be combined with --no-emails');
      if (opts.recoveryPoint && opts.skipTag.includes('mail/imap')) throw new UsageError('--recovery-point backs up mail: it cannot skip mail/imap');
      const retention = policyOf(opts);
      const location = repoPath(opts);
      const inst = installation(opts);
      const { database: db, host, productVersion } = inst;
      const agents = await inst.agents();
      const trigger: Trigger = opts.recoveryPoint ? 'recovery-point' : opts.scheduled ? 'schedule' : 'cli';
      const what = opts.recoveryPoint ? 'recovery point' : 'generation';
      const locked = await withDatabaseLock(db, BACKUP_LOCK, async () => {
        const repo = await openLocation(location, { create: true });
        if (!repo) throw new Error(`no repository at ${location}`);
        try {
          if (opts.scheduled) {
            const today = dayOf(new Date());
            const done = (await readGenerations(repo)).find((g) => g.record.trigger === 'schedule' && dayOf(new Date(g.record.protectionTime)) === today);
            if (done) return { skipped: `the schedule already ran today (generation ${done.record.id}); not starting another` };
          }
          const started = Date.now();
          const r = await runGeneration({
            repo, host, trigger, productVersion, agents, repositoryLocation: location,
            backupEmails: opts.emails, backupArchivedEmails: Boolean(opts.archivedEmails), skippedTags: opts.skipTag,
            retention,
            postBackup: opts.postScript ? { script: opts.postScript, timeoutMs: opts.hookTimeout * 1000 } : undefined,
            log: { info: (m) => out.notice(m), warn: (m) => out.warn(m), error: (m) => out.warn(m) },
            progress: (p) =>
              out.progress(
                { partsDone: p.partsDone, partsTotal: p.partsTotal, bytes: p.bytes, current: p.current },
                { value: p.partsDone, total: p.partsTotal, line: `${p.partsDone}/${p.partsTotal} parts, ${bytes(p.bytes)} read${p.current ? `, ${p.current}` : ''}` },
              ),
          });
          return { run: r, ms: Date.now() - started, skipped: undefined };
        } finally {
          await repo.close();
        }
      });
      if (!locked.acquired) {
        const message = `another process is running a backup of ${describe(db)} (advisory lock held); not starting another`;
        if (opts.scheduled) {
          out.summary({ skipped: message }, message);
          return;
        }
        throw new LockHeldError(message);
      }
      const v = locked.value;
      if (v.skipped !== undefined) {
        out.summary({ skipped: v.skipped }, v.skipped);
        return;
      }
      const g = v.run.generation;
      out.summary(
        { generation: toGeneration(g), runStatus: v.run.runStatus, cleaned: v.run.cleaned, retention: v.run.retention && { kept: v.run.retention.keep.length, removed: v.run.retention.remove.map((x) => x.id) }, hook: v.run.hook },
        [
          `${what} ${g.id}: ${g.status}, run ${v.run.runStatus} in ${duration(v.ms)}`,
          ...partsLine(g),
          ...(v.run.cleaned.length ? [`deleted ${v.run.cleaned.length} generation(s) left by interrupted runs`] : []),
          ...(v.run.retention ? [`retention: kept ${v.run.retention.keep.length}, deleted ${v.run.retention.remove.length}`] : []),
          ...(v.run.hook?.ran ? [`post-backup action: ${v.run.hook.ok ? 'succeeded' : `failed (${v.run.hook.reason})`}`] : []),
          ...g.messages,
        ].join('\n'),
      );
      process.exitCode = v.run.runStatus === 'OK' ? 0 : v.run.runStatus === 'WARNING' ? 3 : 1;
    });

  gen
    .command('list')
    .description('the generations of a repository, newest first, with their parts')
    .option('--repo <dir>', 'repository directory')
    .option(...rootOption)
    .option('--json', 'output as JSON')
    .action(async (opts: RepoOptions & { hostRoot: string }) => {
      const out = output(opts);
      const location = repoPath(opts);
      const repo = await existingRepository(location);
      try {
        const gens = await readGenerations(repo);
        const latest = await readLatest(repo);
        out.summary(
          { latest: latest?.generation ?? null, generations: gens.map((g) => ({ ...toGeneration(g.record), trigger: g.record.trigger, interrupted: g.interrupted, messages: g.record.messages })) },
          gens.length === 0
            ? `no generation in ${location}`
            : gens
                .map((g) =>
                  [
                    `${g.record.id}  ${g.record.protectionTime}  ${g.record.status.padEnd(7)} run ${g.record.runStatus ?? '-'}${latest?.generation === g.record.id ? '  (latest)' : ''}${g.record.protected ? '  protected' : ''}${g.record.trigger === 'recovery-point' ? '  mail recovery point' : ''}${g.interrupted ? '  interrupted' : ''}`,
                    ...partsLine(g.record),
                    ...g.record.messages.map((m) => `  ${m}`),
                  ].join('\n'),
                )
                .join('\n'),
        );
      } finally {
        await repo.close();
      }
    });

  gen
    .command('forget')
    .description('delete one generation (all its parts); the space is reclaimed by a prune')
    .argument('<id>', 'generation id')
    .option('--repo <dir>', 'repository directory')
    .option(...rootOption)
    .option('--json', 'output as JSON')
    .action(async (id: string, opts: RepoOptions & { hostRoot: string }) => {
      const out = output(opts);
      const location = repoPath(opts);
      const db = hostDatabase();
      const locked = await withDatabaseLock(db, BACKUP_LOCK, async () => {
        const repo = await existingRepository(location);
        try {
          const g = (await readGenerations(repo)).find((x) => x.record.id === id);
          if (!g) throw new NotFoundError(`no generation ${id} in ${location}`);
          const n = await deleteGeneration(repo, g, (m) => out.notice(m));
          const latest = await refreshLatest(repo);
          return { files: n, latest: latest?.id ?? null };
        } finally {
          await repo.close();
        }
      });
      if (!locked.acquired) throw new LockHeldError(`a backup of ${describe(db)} is running; try again when it has finished`);
      out.summary({ forgotten: id, snapshots: locked.value.files, latest: locked.value.latest }, `generation ${id} forgotten (${locked.value.files} snapshot files); run 'bm-dataprotect prune' to reclaim the space`);
    });

  for (const protect of [true, false]) {
    const verb = protect ? 'protect' : 'unprotect';
    gen
      .command(verb)
      .description(protect ? 'keep one generation whatever the retention policy (recorded in the repository)' : 'give a protected generation back to the retention policy')
      .argument('<id>', 'generation id')
      .option('--repo <dir>', 'repository directory')
      .option(...rootOption)
      .option('--json', 'output as JSON')
      .action(async (id: string, opts: RepoOptions & { hostRoot: string }) => {
        const out = output(opts);
        const location = repoPath(opts);
        const db = settingsFromEnv();
        // The backup lock, as a forget: no retention runs while the record changes.
        const locked = await withDatabaseLock(db, BACKUP_LOCK, async () => {
          const repo = await existingRepository(location);
          try {
            return await setProtection(repo, id, protect);
          } catch (err) {
            if (err instanceof GenerationNotFoundError) throw new EngineError(err.message);
            throw err;
          } finally {
            await repo.close();
          }
        });
        if (!locked.acquired) throw new LockHeldError(`a backup of ${describe(db)} is running; try again when it has finished`);
        const { record, changed } = locked.value;
        out.summary(
          { generation: toGeneration(record), changed },
          `generation ${record.id} ${changed ? '' : 'was already '}${protect ? 'protected: kept whatever the retention policy' : 'not protected: the retention policy applies to it'}`,
        );
      });
  }

  gen
    .command('sync')
    .description("rebuild the plugin's generation tables (in DATABASE_URL's database) from the repository alone")
    .option('--repo <dir>', 'repository directory')
    .option(...rootOption)
    .option('--json', 'output as JSON')
    .action(async (opts: RepoOptions & { hostRoot: string }) => {
      const out = output(opts);
      const location = repoPath(opts);
      const repo = await existingRepository(location);
      let records: GenerationRecord[];
      try {
        records = (await readGenerations(repo)).map((g) => g.record);
      } finally {
        await repo.close();
      }
      const pool = createPool(databaseUrl(), 2);
      try {
        await migrate(pool);
        await new GenerationCache(pool).replace(location, records, await snapshotFingerprint(location));
      } finally {
        await pool.end();
      }
      out.summary({ repository: location, generations: records.length }, `${records.length} generation(s) of ${location} written to the plugin's tables in ${describe(hostDatabase())}`);
    });
}

/** The repository at a location, which the read commands never create. */
async function existingRepository(location: string): Promise<Repository> {
  const repo = await openLocation(location);
  if (!repo) throw new RepositoryNotFoundError(`no repository at ${location}`);
  return repo;
}
