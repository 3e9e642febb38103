import { withAdvisoryLock, type Locked } from '../../pg/advisory-lock.js';
import { withClient } from '../../pg/client.js';
import type { ConnectionSettings } from '../../pg/settings.js';

// The lock ClusterCoordinator.withLock takes, for a process without the plugin (the CLI): a CLI run and the
// plugin's runs exclude each other on one database.

export async function withDatabaseLock<T>(db: ConnectionSettings, name: string, work: () => Promise<T>): Promise<Locked<T>> {
  return withClient(db, (client) => withAdvisoryLock(client, name, work));
}
