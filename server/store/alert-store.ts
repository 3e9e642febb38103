import { inject, injectable } from 'tsyringe';
import type { Pool } from '../pg/client.js';
import { POOL } from './tokens.js';

/** An incident the administrators are told about once: open from its first occurrence until it is over. */
export interface AlertIncident {
  id: string;
  kind: string;
  openedAt: string;
  closedAt: string | null;
  subject: string;
  body: string;
  /** What was last seen of it (a task id, a generation id): the same thing seen again is no new occurrence. */
  lastRef: string | null;
  occurrences: number;
  mailedAt: string | null;
  mailError: string | null;
}

interface Row {
  id: string;
  kind: string;
  opened_at: Date;
  closed_at: Date | null;
  subject: string;
  body: string;
  last_ref: string | null;
  occurrences: number;
  mailed_at: Date | null;
  mail_error: string | null;
}

const toIncident = (r: Row): AlertIncident => ({
  id: String(r.id), kind: r.kind, openedAt: r.opened_at.toISOString(), closedAt: r.closed_at?.toISOString() ?? null, subject: r.subject,
  body: r.body, lastRef: r.last_ref, occurrences: r.occurrences, mailedAt: r.mailed_at?.toISOString() ?? null, mailError: r.mail_error,
});

/**
 * dp_alert: at most one open incident per kind across the cluster (a unique index), so that two nodes seeing the
 * same failure open it once, and a retry that fails again adds an occurrence instead of a new incident.
 */
@injectable()
export class AlertStore {
  constructor(@inject(POOL) private readonly pool: Pool) {}

  /** Opens an incident of `kind` unless one is open; answers it when this call opened it, else null. */
  async open(kind: string, subject: string, body: string, ref: string): Promise<AlertIncident | null> {
    const r = await this.pool.query<Row>(
      `INSERT INTO dp_alert (kind, subject, body, last_ref) VALUES ($1, $2, $3, $4)
       ON CONFLICT (kind) WHERE closed_at IS NULL DO NOTHING RETURNING *`,
      [kind, subject, body, ref],
    );
    return r.rows[0] ? toIncident(r.rows[0]) : null;
  }

  /** Counts one more occurrence of the open incident, once per ref. */
  async recur(kind: string, ref: string): Promise<void> {
    await this.pool.query(
      `UPDATE dp_alert SET occurrences = occurrences + 1, last_ref = $2 WHERE kind = $1 AND closed_at IS NULL AND last_ref IS DISTINCT FROM $2`,
      [kind, ref],
    );
  }

  /** The incident of `kind` is over; answers whether one was open. */
  async close(kind: string): Promise<boolean> {
    const r = await this.pool.query(`UPDATE dp_alert SET closed_at = now() WHERE kind = $1 AND closed_at IS NULL`, [kind]);
    return (r.rowCount ?? 0) > 0;
  }

  async current(kind: string): Promise<AlertIncident | null> {
    const r = await this.pool.query<Row>(`SELECT * FROM dp_alert WHERE kind = $1 AND closed_at IS NULL`, [kind]);
    return r.rows[0] ? toIncident(r.rows[0]) : null;
  }

  async list(limit = 100): Promise<AlertIncident[]> {
    const r = await this.pool.query<Row>(`SELECT * FROM dp_alert ORDER BY opened_at DESC, id DESC LIMIT $1`, [limit]);
    return r.rows.map(toIncident);
  }

  /**
   * Open incidents not mailed yet whose last attempt is old enough, each claimed for this caller (another node
   * claiming at the same moment gets none of them).
   */
  async claimUnmailed(retryAfterSeconds: number): Promise<AlertIncident[]> {
    const r = await this.pool.query<Row>(
      `UPDATE dp_alert SET mail_attempt_at = now()
        WHERE closed_at IS NULL AND mailed_at IS NULL
          AND (mail_attempt_at IS NULL OR mail_attempt_at < now() - make_interval(secs => $1))
        RETURNING *`,
      [retryAfterSeconds],
    );
    return r.rows.map(toIncident);
  }

  async mailed(id: string, error: string | null): Promise<void> {
    await this.pool.query(
      error === null ? `UPDATE dp_alert SET mailed_at = now(), mail_error = NULL WHERE id = $1` : `UPDATE dp_alert SET mail_error = $2 WHERE id = $1`,
      error === null ? [id] : [id, error],
    );
  }

  /** When the plugin's tables were created: the start of "no generation succeeded yet". */
  async installedAt(): Promise<Date | null> {
    const r = await this.pool.query<{ t: Date | null }>(`SELECT min(applied_at) AS t FROM dp_schema_version`);
    return r.rows[0]?.t ?? null;
  }
}
