import { inject, injectable } from 'tsyringe';
import type { Pool } from '../pg/client.js';
import { POOL } from './tokens.js';

// BlueMind's API numbers generations and parts (int ids); ours names them. A script written for BlueMind reads a
// number and sends it back, so each name of a repository gets a number once, the first time it is shown, and keeps
// it: numbers survive a sync that rebuilds the list of generations, and are never given to another name.

@injectable()
export class BlueMindNumbers {
  constructor(@inject(POOL) private readonly pool: Pool) {}

  /** The number of each reference, assigned in the order given to those that have none yet. */
  async numbersFor(repository: string, refs: readonly string[]): Promise<Map<string, number>> {
    if (refs.length === 0) return new Map();
    await this.pool.query(
      `INSERT INTO dp_bluemind_number (repository, ref)
       SELECT $1, r.ref FROM unnest($2::text[]) WITH ORDINALITY AS r(ref, n) ORDER BY r.n
       ON CONFLICT (repository, ref) DO NOTHING`,
      [repository, [...refs]],
    );
    const r = await this.pool.query<{ ref: string; number: number }>(
      'SELECT ref, number FROM dp_bluemind_number WHERE repository = $1 AND ref = ANY($2::text[])',
      [repository, [...refs]],
    );
    return new Map(r.rows.map((x) => [x.ref, x.number]));
  }

  /** The reference a number was given to in this repository; null when it names nothing here. */
  async refOf(repository: string, number: number): Promise<string | null> {
    const r = await this.pool.query<{ ref: string }>('SELECT ref FROM dp_bluemind_number WHERE repository = $1 AND number = $2', [repository, number]);
    return r.rows[0]?.ref ?? null;
  }
}
