// `host seed`: fills the reference host with realistic, deterministic data — two domains, users, mailshares,
// resources, groups, organisational units, calendars (single and recurring events, exceptions), address books
// (contacts and groups), todolists, and mail with attachments in Maildir folders — plus the archive,
// file-hosting and configuration directories. The same seed gives the same data (password hashes aside, which
// are salted with the host's own secret).

import type pg from 'pg';
import { type ConnectionSettings, describe } from '../../pg/settings.js';
import { connect } from '../../pg/client.js';
import { createDatabase, databaseExists } from '../../pg/databases.js';
import { insertRows } from '../../pg/insert-rows.js';
import { Prng } from '../../demo/prng.js';
import { hostSecret, mailboxPasswordHash } from './credentials.js';
import { handSpoolToDovecot, writeDovecotUsers } from './dovecot.js';
import { hostLayout } from './layout.js';
import { MARKER_TABLE, SCHEMA_SQL, SCHEMA_VERSION, containerUids } from './schema.js';
import { DOMAINS, type DomainSpec, seedDomain } from './seed-directory.js';
import { writeFiles } from './seed-files.js';
import { BASE_TIME, DAY, SeedModel, ts } from './seed-model.js';

export interface SeedOptions {
  connection: ConnectionSettings;
  root: string;
  users: number;
  seed?: number;
  eventsPerUser?: number;
  contactsPerUser?: number;
  todosPerUser?: number;
  messagesPerUser?: number;
  /** Extra description text per event, in bytes (the benchmark uses it to reach a given database size). */
  eventDescriptionBytes?: number;
  /** Write the mail spool, archive, file-hosting and configuration files (default true). */
  files?: boolean;
  /** Re-seed a database that holds tables not created by the reference host. */
  force?: boolean;
  log?: (line: string) => void;
}

export interface SeedSummary {
  database: string;
  root: string;
  installationId: string;
  domains: number;
  users: number;
  mailshares: number;
  resources: number;
  groups: number;
  orgUnits: number;
  containers: number;
  items: number;
  events: number;
  contacts: number;
  todos: number;
  notes: number;
  webAppData: number;
  messages: number;
  ms: number;
}

export async function seedReference(opts: SeedOptions): Promise<SeedSummary> {
  const started = Date.now();
  const log = opts.log ?? (() => {});
  const seed = opts.seed ?? 42;
  const layout = hostLayout(opts.root);
  if (!Number.isInteger(opts.users) || opts.users < 1) throw new Error('--users must be a positive integer');

  const secret = await hostSecret(layout);
  const rng = new Prng(seed);
  const installationId = `bluemind-${rng.uuid().toLowerCase()}`;
  const m = new SeedModel();
  const perUser = {
    events: opts.eventsPerUser ?? 12,
    contacts: opts.contactsPerUser ?? 10,
    todos: opts.todosPerUser ?? 4,
    messages: opts.messagesPerUser ?? 10,
  };

  const summary: SeedSummary = {
    database: opts.connection.database, root: layout.root, installationId,
    domains: 0, users: 0, mailshares: 0, resources: 0, groups: 0, orgUnits: 0, containers: 0, items: 0,
    events: 0, contacts: 0, todos: 0, notes: 0, webAppData: 0, messages: 0, ms: 0,
  };

  // Domains container and the system domain.
  const domainsCid = m.container(containerUids.domains(installationId), 'domains', 'domains', 'system', null, BASE_TIME - 400 * DAY);
  const allDomains: DomainSpec[] = [{ uid: 'global.virt', label: 'global.virt', aliases: [] }, ...DOMAINS];
  for (const d of allDomains) {
    const itemId = m.item(domainsCid, d.uid, d.label, BASE_TIME - 400 * DAY, 'system');
    m.rows('t_domain').push({
      item_id: itemId, label: d.label, name: d.uid, description: `${d.label} domain`, global: d.uid === 'global.virt',
      aliases: d.aliases, default_alias: d.aliases[0] ?? d.uid, properties: { 'mail.routing.relay': '' },
    });
  }
  summary.domains = DOMAINS.length;

  // Users are split two thirds / one third between the two domains.
  const firstDomainUsers = Math.ceil((opts.users * 2) / 3);
  for (const [di, d] of DOMAINS.entries()) {
    const count = di === 0 ? firstDomainUsers : opts.users - firstDomainUsers;
    // Notes, web-app data and domain calendars draw from a stream of their own, so the rest stays as it was.
    seedDomain(m, { rng, extra: new Prng((seed ^ 0x0e7a) + di) }, d, count, perUser, opts.eventDescriptionBytes ?? 0, secret);
  }
  summary.containers = m.containerCount;
  summary.items = m.itemCount;
  Object.assign(summary, m.counts);

  // Database.
  log(`seeding database ${describe(opts.connection)}`);
  if (!(await databaseExists(opts.connection, opts.connection.database))) {
    await createDatabase(opts.connection, opts.connection.database);
  }
  const c = await connect(opts.connection);
  try {
    await resetSchema(c, opts.force ?? false);
    await c.query('BEGIN');
    await c.query(SCHEMA_SQL);
    await insertRows(c, MARKER_TABLE, [
      { schema_version: SCHEMA_VERSION, installation_id: installationId, seed, users: opts.users, seeded_at: ts(BASE_TIME) },
    ]);
    for (const table of Object.keys(m.t)) await insertRows(c, table, m.t[table]);
    await c.query(`SELECT setval('t_container_id_seq', $1)`, [m.containerCount]);
    await c.query(`SELECT setval('t_container_item_id_seq', $1)`, [m.itemCount]);
    await c.query('COMMIT');
    await c.query('ANALYZE');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    await c.end().catch(() => {});
  }
  log(`database: ${summary.containers} containers, ${summary.items} items`);

  if (opts.files ?? true) {
    summary.messages = await writeFiles(layout, new Prng(seed ^ 0x5eed), m.mailboxes, perUser.messages, { connection: opts.connection, force: opts.force ?? false, installationId });
    await writeDovecotUsers(layout, m.mailboxes.map((mb) => ({ email: mb.email, passwordHash: mailboxPasswordHash(secret, mb.email) })));
    // A Dovecot already running (as its own user) must be able to manage the new spool.
    await handSpoolToDovecot(layout).catch(() => {}); // no dovecot user: nothing to hand over
    log(`files: ${summary.messages} messages in ${m.mailboxes.length} mailboxes under ${layout.spool}`);
  }
  summary.ms = Date.now() - started;
  return summary;
}

/** Drops the reference schema when the database holds it; refuses a foreign database unless forced. */
async function resetSchema(c: pg.Client, force: boolean): Promise<void> {
  const tables = await c.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public'");
  const ours = tables.rows.some((r) => r.tablename === MARKER_TABLE);
  if (tables.rowCount && !ours && !force) {
    throw new Error(`database ${c.database} holds tables that the reference host did not create; refusing to seed it (use --force)`);
  }
  await c.query('DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public');
}
