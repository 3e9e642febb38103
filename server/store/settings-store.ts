import { inject, injectable } from 'tsyringe';
import type { Pool } from '../pg/client.js';
import { POOL } from './tokens.js';

export interface StoredSettings {
  value: Record<string, unknown>;
  updatedAt: Date;
  updatedBy: string;
}

/** One row holding the settings as JSON: new settings get defaults without a migration. */
@injectable()
export class SettingsStore {
  constructor(@inject(POOL) private readonly pool: Pool) {}

  async read(): Promise<StoredSettings | null> {
    const r = await this.pool.query<{ value: Record<string, unknown>; updated_at: Date; updated_by: string }>(
      'SELECT value, updated_at, updated_by FROM dp_settings WHERE id = 1',
    );
    const row = r.rows[0];
    return row ? { value: row.value, updatedAt: row.updated_at, updatedBy: row.updated_by } : null;
  }

  async write(value: Record<string, unknown>, updatedBy: string): Promise<StoredSettings> {
    const r = await this.pool.query<{ updated_at: Date }>(
      `INSERT INTO dp_settings (id, value, updated_at, updated_by) VALUES (1, $1, now(), $2)
       ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
       RETURNING updated_at`,
      [JSON.stringify(value), updatedBy],
    );
    return { value, updatedAt: r.rows[0].updated_at, updatedBy };
  }
}
