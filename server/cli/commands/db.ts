// `bm-dataprotect db …`: the `bm/pgsql` part on its own — back it up, restore it into a new database, export one
// entity's container as ICS / VCF. The database comes from DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bj).

import { createWriteStream, type WriteStream } from 'node:fs';
import { Command } from 'commander';
import type { Repository, SnapshotInfo } from '../../engine/index.js';
import { describe, withDatabase } from '../../pg/settings.js';
import { settingsFromEnv } from '../../host/connection.js';
import { ReferenceHost } from '../../host/reference/host.js';
import { RENDERED_TYPES } from '../../host/port.js';
import { CORE_SERVER, DEFAULT_HOST_ROOT } from '../../host/reference/layout.js';
import { backupDatabase } from '../../sources/pgsql-backup.js';
import { containerExport, readManifest } from '../../sources/pgsql-manifest.js';
import { restoreDatabase } from '../../sources/pgsql-restore.js';
import { hostDatabase, installation } from '../compose.js';
import { openRepo, output, UsageError, type RepoOptions } from '../context.js';
import { bytes, duration, rate } from '../output.js';

const TAG = 'bm/pgsql';

/** A `bm/pgsql` snapshot: `latest`, a generation id (snapshot meta `generation`), or a snapshot id prefix. */
export async function findDatabasePart(repo: Repository, ref: string, server?: string): Promise<SnapshotInfo> {
  if (ref === 'latest') return repo.findSnapshot('latest', { tag: TAG, server });
  const parts = await repo.listSnapshots({ tag: TAG, server });
  const byGeneration = parts.filter((s) => s.meta && String(s.meta.generation) === ref);
  if (byGeneration.length) return byGeneration.at(-1)!;
  const snap = await repo.findSnapshot(ref);
  if (snap.tag !== TAG) throw new UsageError(`snapshot ${snap.id.slice(0, 8)} is a ${snap.tag} part, not ${TAG}`);
  return snap;
}

export function register(program: Command): void {
  const db = program.command('db').description(`the database part (${TAG}): back up, restore into a new database, export an entity`);

  db.command('backup')
    .description('dump the database (DATABASE_URL) and its per-entity exports into a new bm/pgsql snapshot')
    .option('--repo <dir>', 'repository directory')
    .option('--server <name>', 'server the part belongs to', CORE_SERVER)
    .option('--host-root <dir>', "the reference host's files", DEFAULT_HOST_ROOT)
    .option('--no-entities', 'dump only, without per-entity exports')
    .option('--json', 'progress as JSON lines, then a summary object')
    .action(async (opts: RepoOptions & { server: string; hostRoot: string; entities: boolean }) => {
      const out = output(opts);
      const { database: connection, host } = installation(opts);
      const repo = await openRepo(opts);
      const started = Date.now();
      try {
        const { snapshot, manifest } = await backupDatabase({
          repo, server: opts.server, connection, entities: opts.entities ? host.entityData : undefined,
          progress: {
            update: (s, current) =>
              out.progress({ bytesRead: s.bytesRead, bytesAdded: s.bytesAdded, current }, { value: s.bytesRead, total: s.bytesRead, line: `${current} ${bytes(s.bytesRead)}, ${rate(s.bytesRead, Date.now() - started)}` }),
            notice: (m) => out.notice(m),
          },
        });
        const s = snapshot.summary;
        const containers = manifest.entities.reduce((n, e) => n + e.containers.length, 0);
        out.summary(
          { snapshot: snapshot.id, database: manifest.database, dumpBytes: manifest.dump.bytes, entities: manifest.entities.length, containers, ...s },
          `snapshot ${snapshot.id.slice(0, 8)} of ${describe(connection)}: dump ${bytes(manifest.dump.bytes)}, ${manifest.entities.length} entities, ` +
            `${containers} container exports; added ${bytes(s.bytesAdded)} in ${duration(s.durationMs)}`,
        );
      } finally {
        await repo.close();
      }
    });

  db.command('restore')
    .description('restore the bm/pgsql part of a generation into a NEW database on the server of DATABASE_URL, then check every table')
    .argument('<generation>', "generation id, snapshot id (or a unique prefix), or 'latest'")
    .requiredOption('--database <name>', 'name of the database to create')
    .option('--repo <dir>', 'repository directory')
    .option('--server <name>', 'the server whose part to restore (default: any)')
    .option('--json', 'progress as JSON lines, then a summary object')
    .action(async (ref: string, opts: RepoOptions & { database: string; server?: string }) => {
      if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$/.test(opts.database)) throw new UsageError(`invalid database name ${JSON.stringify(opts.database)}`);
      const out = output(opts);
      const target = withDatabase(hostDatabase(), opts.database);
      const repo = await openRepo(opts);
      try {
        const snapshot = await findDatabasePart(repo, ref, opts.server);
        const started = Date.now();
        const r = await restoreDatabase({
          repo, snapshot, target,
          progress: {
            notice: (m) => out.notice(m),
            bytes: (done, total) => out.progress({ bytes: done, bytesTotal: total }, { value: done, total, line: `${bytes(done)}/${bytes(total)}, ${rate(done, Date.now() - started)}` }),
          },
        });
        out.summary(
          { snapshot: snapshot.id, ...r },
          `restored snapshot ${snapshot.id.slice(0, 8)} into ${describe(target)}: ${r.tables} tables, ${r.rows} rows, all checked against the backup, in ${duration(r.durationMs)}`,
        );
      } finally {
        await repo.close();
      }
    });

  db.command('export')
    .description("write one entity's container from a generation as ICS / VCF (or the lossless JSON lines)")
    .argument('<generation>', "generation id, snapshot id, or 'latest'")
    .requiredOption('--entity <uid-or-email>', 'entity uid, login or email')
    .option('--container <uid>', 'container uid (default: every container of the entity, one after another)')
    .option('--format <format>', 'native (ics for calendars and todolists, vcf for address books) or jsonl', 'native')
    .option('--output <file>', 'write to this file instead of standard output')
    .option('--repo <dir>', 'repository directory')
    .option('--host-root <dir>', "the reference host's files", DEFAULT_HOST_ROOT)
    .action(async (ref: string, opts: RepoOptions & { entity: string; container?: string; format: string; output?: string; hostRoot: string }) => {
      if (!['native', 'jsonl'].includes(opts.format)) throw new UsageError(`--format must be native or jsonl, got ${JSON.stringify(opts.format)}`);
      const repo = await openRepo(opts);
      try {
        const snapshot = await findDatabasePart(repo, ref);
        const manifest = await readManifest(repo, snapshot);
        const wanted = opts.entity.toLowerCase();
        const entity = manifest.entities.find((e) => e.uid.toLowerCase() === wanted || e.email?.toLowerCase() === wanted || `${e.name}@${e.domainUid}`.toLowerCase() === wanted);
        if (!entity) throw new UsageError(`no entity ${JSON.stringify(opts.entity)} in snapshot ${snapshot.id.slice(0, 8)}`);
        // Notes and web-app data have no ICS or VCF form: only their JSON lines, when asked for.
        const containers = entity.containers.filter((c) => (opts.container ? c.uid === opts.container : opts.format === 'jsonl' || RENDERED_TYPES.includes(c.type)));
        if (containers.length === 0) {
          throw new UsageError(opts.container ? `entity ${entity.uid} has no container ${opts.container} in this generation` : `entity ${entity.uid} owns no calendar, address book or todolist in this generation`);
        }
        const unrendered = containers.find((c) => opts.format === 'native' && !RENDERED_TYPES.includes(c.type));
        if (unrendered) throw new UsageError(`${unrendered.uid} (${unrendered.type}) has no ICS or VCF form: use --format jsonl`);
        // A reader that stops early (`| head`) is not an error.
        process.stdout.on('error', (e: NodeJS.ErrnoException) => {
          if (e.code === 'EPIPE') process.exit(0);
        });
        const sink = opts.output ? createWriteStream(opts.output, { mode: 0o600 }) : process.stdout;
        const { renderer, entityData } = installation(opts).host;
        for (const c of containers) {
          if (opts.format === 'jsonl') for await (const line of containerExport(repo, snapshot, manifest, c, entityData)) sink.write(line + '\n');
          else sink.write(await renderer.render(c.type, containerExport(repo, snapshot, manifest, c, entityData)));
        }
        if (sink !== process.stdout) {
          const file = sink as WriteStream;
          await new Promise<void>((res, rej) => {
            file.once('error', rej);
            file.end(() => res());
          });
        }
      } finally {
        await repo.close();
      }
    });
}
