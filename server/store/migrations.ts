import type { Pool } from '../pg/client.js';

// The plugin's own tables, prefixed dp_ so that they can live in the host's database. Migrations are append-only:
// never edit a released one, add the next.

interface Migration {
  version: number;
  name: string;
  sql: string;
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'settings, tasks, task log, audit',
    sql: `
      CREATE TABLE dp_settings (
        id smallint PRIMARY KEY CHECK (id = 1),
        value jsonb NOT NULL,
        updated_at timestamptz NOT NULL,
        updated_by text NOT NULL
      );
      CREATE TABLE dp_task (
        id uuid PRIMARY KEY,
        kind text NOT NULL,
        title text NOT NULL,
        status text NOT NULL,
        actor text NOT NULL,
        actor_uid text,
        target text,
        progress jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        ended_at timestamptz,
        error text,
        result jsonb,
        cancel_requested boolean NOT NULL DEFAULT false,
        node text NOT NULL,
        heartbeat_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX dp_task_created ON dp_task (created_at DESC);
      CREATE INDEX dp_task_running ON dp_task (status) WHERE status = 'RUNNING';
      CREATE TABLE dp_task_log (
        task_id uuid NOT NULL REFERENCES dp_task (id) ON DELETE CASCADE,
        seq integer NOT NULL,
        time timestamptz NOT NULL,
        level text NOT NULL,
        message text NOT NULL,
        PRIMARY KEY (task_id, seq)
      );
      CREATE TABLE dp_audit (
        id bigserial PRIMARY KEY,
        time timestamptz NOT NULL DEFAULT now(),
        actor text NOT NULL,
        action text NOT NULL,
        target text,
        generation_id text,
        task_id uuid,
        result text NOT NULL,
        detail jsonb
      );
      CREATE INDEX dp_audit_time ON dp_audit (time DESC);
    `,
  },
  {
    version: 2,
    name: 'task files',
    sql: `
      CREATE TABLE dp_task_file (
        task_id uuid NOT NULL REFERENCES dp_task (id) ON DELETE CASCADE,
        name text NOT NULL,
        size bigint NOT NULL,
        content_type text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (task_id, name)
      );
    `,
  },
  {
    version: 3,
    name: 'scheduled run claims',
    sql: `
      CREATE TABLE dp_schedule_claim (
        job text NOT NULL,
        day date NOT NULL,
        node text NOT NULL,
        claimed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (job, day)
      );
    `,
  },
  {
    version: 4,
    name: 'generation cache',
    sql: `
      CREATE TABLE dp_generation (
        repository text NOT NULL,
        id text NOT NULL,
        protection_time timestamptz NOT NULL,
        record jsonb NOT NULL,
        PRIMARY KEY (repository, id)
      );
      CREATE INDEX dp_generation_time ON dp_generation (repository, protection_time DESC);
      CREATE TABLE dp_generation_sync (
        repository text PRIMARY KEY,
        synced_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 5,
    name: 'generation cache fingerprint',
    sql: `ALTER TABLE dp_generation_sync ADD COLUMN fingerprint text;`,
  },
  {
    version: 6,
    name: 'alert incidents',
    sql: `
      CREATE TABLE dp_alert (
        id bigserial PRIMARY KEY,
        kind text NOT NULL,
        opened_at timestamptz NOT NULL DEFAULT now(),
        closed_at timestamptz,
        subject text NOT NULL,
        body text NOT NULL,
        last_ref text,
        occurrences integer NOT NULL DEFAULT 1,
        mailed_at timestamptz,
        mail_attempt_at timestamptz,
        mail_error text
      );
      CREATE UNIQUE INDEX dp_alert_open ON dp_alert (kind) WHERE closed_at IS NULL;
    `,
  },
  {
    version: 7,
    name: 'task phrases: titles, errors and log lines in the console\'s words',
    sql: `
      ALTER TABLE dp_task ADD COLUMN title_phrase jsonb, ADD COLUMN error_phrase jsonb;
      ALTER TABLE dp_task_log ADD COLUMN phrase jsonb;
    `,
  },
  {
    version: 8,
    name: 'BlueMind whole-number ids of generations and parts',
    sql: `
      CREATE TABLE dp_bluemind_number (
        number integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        repository text NOT NULL,
        ref text NOT NULL,
        UNIQUE (repository, ref)
      );
    `,
  },
  {
    version: 9,
    name: 'protection summary: last task of a kind; generations cached again with each part\'s full size',
    // The rehearsal schedule's settings live in dp_settings' JSON value (defaults apply until saved): no column.
    // The summary reads the last check, rehearsal and backup; the cache is rebuilt once (a fingerprint that
    // matches nothing) so that its records carry the size each part protects, read from the part's snapshot.
    sql: `
      CREATE INDEX dp_task_kind_created ON dp_task (kind, created_at DESC);
      UPDATE dp_generation_sync SET fingerprint = NULL;
    `,
  },
  {
    version: 10,
    name: 'dp_schedule_slot_claim: scheduled runs of several a day (mail recovery points), one per slot across the cluster',
    sql: `
      CREATE TABLE dp_schedule_slot_claim (
        job text NOT NULL,
        slot timestamptz NOT NULL,
        node text NOT NULL,
        claimed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (job, slot)
      );
    `,
  },
];

const LOCK_KEY = 0x64705f6d; // "dp_m": serialises migrations between nodes starting together

/** Brings the schema up to date. Safe when several processes start at once. Returns the versions applied. */
export async function migrate(pool: Pool): Promise<number[]> {
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS dp_schema_version (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set(
      (await client.query<{ version: number }>('SELECT version FROM dp_schema_version')).rows.map((r) => r.version),
    );
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      try {
        await client.query('BEGIN');
        await client.query(m.sql);
        await client.query('INSERT INTO dp_schema_version (version, name) VALUES ($1, $2)', [m.version, m.name]);
        await client.query('COMMIT');
        applied.push(m.version);
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`applying migration ${m.version} (${m.name}): ${(err as Error).message}`);
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => {});
    client.release();
  }
  return applied;
}
