import type { HostAuthenticator } from '../dataprotect/auth.js';
import type { AuditLog } from '../dataprotect/audit.js';
import type {
  BackupRunner, GenerationService, GlobalRestoreService, RehearsalService, RepositoryCheckService, RestoreService, SummaryService,
} from '../dataprotect/services.js';
import type { SettingsService } from '../dataprotect/settings.js';
import type { TaskRegistry } from '../jobs/task-registry.js';
import type { BlueMindNumbers } from '../store/bluemind-numbers.js';

/** What the HTTP binders talk to: the host's authentication and the domain services. */
export interface ApiDeps {
  auth: HostAuthenticator;
  settings: SettingsService;
  audit: AuditLog;
  tasks: TaskRegistry;
  generations: GenerationService;
  backups: BackupRunner;
  restores: RestoreService;
  globalRestore: GlobalRestoreService;
  /** BlueMind's whole-number ids of generations and parts (bluemind.ts). */
  numbers: BlueMindNumbers;
  rehearsals: RehearsalService;
  checks: RepositoryCheckService;
  summary: SummaryService;
}
