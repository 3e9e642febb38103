import { EventEmitter } from 'node:events';
import { inject, injectable, type InjectionToken } from 'tsyringe';
import type { HostPort } from '../host/port.js';
import { SettingsStore } from '../store/settings-store.js';
import { AuditLog } from './audit.js';
import { InvalidInputError } from './errors.js';
import { HOST_PORT } from './generation/tokens.js';
import type { Principal } from './principal.js';
import { checkRepositoryLocation, type RepositoryFilesystem } from './repository-location.js';

/** The backup options of Settings > Configuration and the retention policy. */
export interface Settings {
  /** Keep the generations of the last N days: days, not a count (BlueMind confuses the two). */
  retentionDays: number;
  keepWeekly: number;
  keepMonthly: number;
  /** The mail parts (mail/imap). */
  backupEmails: boolean;
  /** The archived mail part (mail/archive); off by default. */
  backupArchivedEmails: boolean;
  /** HH:MM, daily. */
  backupTime: string;
  /** An absolute directory or an s3:// URL. */
  repositoryLocation: string;
  /** Tags that are not backed up. */
  skippedTags: string[];
  /** Set on the server, never through the API: whoever may change it runs a program as root. */
  postBackupScript: string;
  /** The scheduled restore rehearsal of the newest valid generation; off until enabled. */
  rehearsalEnabled: boolean;
  /** The day it runs on (weekly), or every day. */
  rehearsalDay: RehearsalDay;
  /** HH:MM, in the server's time zone. */
  rehearsalTime: string;
  /** Mail recovery points between the nightly generations (mail/imap, and mail/archive when backed up); off until enabled. */
  recoveryPointsEnabled: boolean;
  /** Minutes between two recovery points (RECOVERY_POINT_LIMITS.minutes). */
  recoveryPointMinutes: number;
  /** Recovery points are kept this many days (RECOVERY_POINT_LIMITS.retentionDays), outside the nightly policy. */
  recoveryPointRetentionDays: number;
  /**
   * Another repository (an absolute directory or an s3:// URL) that each successful nightly generation is copied
   * to, off site; empty: no copy.
   */
  offsiteCopyLocation: string;
}

/** Bounds of the recovery-point settings (the contract says the same). */
export const RECOVERY_POINT_LIMITS = { minutes: { min: 5, max: 720 }, retentionDays: { min: 1, max: 30 } } as const;
export const DEFAULT_RECOVERY_POINT_MINUTES = 15;
export const DEFAULT_RECOVERY_POINT_RETENTION_DAYS = 2;

export const REHEARSAL_DAYS = ['daily', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const;
export type RehearsalDay = (typeof REHEARSAL_DAYS)[number];

/** The time zone the backup time is read in: the server's (the process's), as an IANA name. */
export function serverTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

export interface SavedSettings extends Settings {
  /** The server's time zone: the backup time is in it. */
  timeZone: string;
  /** As checked when the location was saved; null for s3:// and while the default applies. */
  repositoryFilesystem: RepositoryFilesystem | null;
  /** null while the defaults apply */
  updatedAt: string | null;
  updatedBy: string | null;
}

export interface SettingsDefaults {
  repositoryLocation: string;
  /** The post-backup action (the plugin's configuration); else DP_POST_BACKUP_SCRIPT, else BlueMind's. */
  postBackupScript?: string;
  /** How long saving a repository location waits for the folder to answer. */
  locationCheckTimeoutMs?: number;
}

const OFFSITE_FIELD = 'offsiteCopyLocation';

export const SETTINGS_DEFAULTS: InjectionToken<SettingsDefaults> = Symbol('dp.SettingsDefaults');

export const DEFAULT_BACKUP_TIME = '01:00';
/** After the night's backup, on Sunday: a weekly rehearsal when enabled. */
export const DEFAULT_REHEARSAL_DAY: RehearsalDay = 'sunday';
export const DEFAULT_REHEARSAL_TIME = '04:00';
export const DEFAULT_POST_BACKUP_SCRIPT = '/usr/bin/bm-post-full-backup.sh';

/** The post-backup action of this server: its configuration, the environment, or BlueMind's script. */
export function configuredPostBackupScript(d: Pick<SettingsDefaults, 'postBackupScript'>): string {
  return d.postBackupScript || process.env.DP_POST_BACKUP_SCRIPT || DEFAULT_POST_BACKUP_SCRIPT;
}

export function defaultSettings(d: SettingsDefaults): Settings {
  return {
    retentionDays: 7,
    keepWeekly: 0,
    keepMonthly: 0,
    backupEmails: true,
    backupArchivedEmails: false,
    backupTime: DEFAULT_BACKUP_TIME,
    repositoryLocation: d.repositoryLocation,
    skippedTags: [],
    postBackupScript: configuredPostBackupScript(d),
    rehearsalEnabled: false,
    rehearsalDay: DEFAULT_REHEARSAL_DAY,
    rehearsalTime: DEFAULT_REHEARSAL_TIME,
    recoveryPointsEnabled: false,
    recoveryPointMinutes: DEFAULT_RECOVERY_POINT_MINUTES,
    recoveryPointRetentionDays: DEFAULT_RECOVERY_POINT_RETENTION_DAYS,
    offsiteCopyLocation: '',
  };
}

/** What an administrator may change; the post-backup action is not among it. Left out: unchanged. */
type Optional =
  | 'keepWeekly' | 'keepMonthly' | 'rehearsalEnabled' | 'rehearsalDay' | 'rehearsalTime' | 'offsiteCopyLocation'
  | 'recoveryPointsEnabled' | 'recoveryPointMinutes' | 'recoveryPointRetentionDays';
export type SettingsUpdate = Omit<Settings, Optional | 'postBackupScript'> & Partial<Pick<Settings, Optional>>;

/** The settings as stored: what was saved, and what the location check found. */
type StoredValue = Omit<Settings, 'postBackupScript'> & { repositoryFilesystem: RepositoryFilesystem | null };

@injectable()
export class SettingsService {
  private readonly changes = new EventEmitter();

  constructor(
    @inject(SettingsStore) private readonly store: SettingsStore,
    @inject(AuditLog) private readonly audit: AuditLog,
    @inject(SETTINGS_DEFAULTS) private readonly defaults: SettingsDefaults,
    /** The installation, for the same-filesystem report (absent when this build has no backup runner). */
    @inject(HOST_PORT, { isOptional: true }) private readonly host?: HostPort,
  ) {}

  async get(): Promise<SavedSettings> {
    const stored = await this.store.read();
    const base = defaultSettings(this.defaults);
    if (!stored) return { ...base, timeZone: serverTimeZone(), repositoryFilesystem: null, updatedAt: null, updatedBy: null };
    const known = pickKnown(stored.value);
    return {
      ...base,
      ...known,
      postBackupScript: base.postBackupScript,
      timeZone: serverTimeZone(),
      repositoryFilesystem: known.repositoryLocation !== undefined ? pickFilesystem(stored.value.repositoryFilesystem) : null,
      updatedAt: stored.updatedAt.toISOString(),
      updatedBy: stored.updatedBy,
    };
  }

  /** The folders of the data being protected, on every server the host describes. */
  private async dataPaths(): Promise<string[]> {
    if (!this.host) return [];
    const paths = new Set<string>();
    for (const server of await this.host.servers()) {
      for (const tag of server.tags) for (const l of await this.host.dataLocations(server.uid, tag)) paths.add(l.fsPath);
    }
    return [...paths];
  }

  /** Replaces the settings (after the checks the contract cannot express), writes an audit event, notifies. */
  async update(input: SettingsUpdate, by: Principal): Promise<SavedSettings> {
    const current = await this.get();
    const checked = await checkRepositoryLocation(input.repositoryLocation, {
      dataPaths: () => this.dataPaths(),
      timeoutMs: this.defaults.locationCheckTimeoutMs,
    });
    const next: StoredValue = {
      retentionDays: input.retentionDays,
      keepWeekly: input.keepWeekly ?? current.keepWeekly,
      keepMonthly: input.keepMonthly ?? current.keepMonthly,
      backupEmails: input.backupEmails,
      backupArchivedEmails: input.backupArchivedEmails,
      backupTime: input.backupTime,
      repositoryLocation: checked.location,
      skippedTags: [...new Set(input.skippedTags)].sort(),
      rehearsalEnabled: input.rehearsalEnabled ?? current.rehearsalEnabled,
      rehearsalDay: input.rehearsalDay ?? current.rehearsalDay,
      rehearsalTime: input.rehearsalTime ?? current.rehearsalTime,
      recoveryPointsEnabled: input.recoveryPointsEnabled ?? current.recoveryPointsEnabled,
      recoveryPointMinutes: input.recoveryPointMinutes ?? current.recoveryPointMinutes,
      recoveryPointRetentionDays: input.recoveryPointRetentionDays ?? current.recoveryPointRetentionDays,
      offsiteCopyLocation: await this.offsiteLocation(input.offsiteCopyLocation ?? current.offsiteCopyLocation, current.offsiteCopyLocation, checked.location),
      repositoryFilesystem: checked.filesystem,
    };
    const saved = await this.store.write({ ...next }, by.login);
    const changed = (Object.keys(next) as (keyof StoredValue)[]).filter(
      (k) => k !== 'repositoryFilesystem' && JSON.stringify(next[k]) !== JSON.stringify(current[k]),
    );
    await this.audit.record({
      actor: by.login,
      action: 'settings.update',
      target: 'settings',
      result: 'ok',
      detail: { changed, settings: { ...next } },
    });
    const result: SavedSettings = {
      ...next,
      postBackupScript: current.postBackupScript,
      timeZone: serverTimeZone(),
      updatedAt: saved.updatedAt.toISOString(),
      updatedBy: saved.updatedBy,
    };
    this.changes.emit('change', result);
    return result;
  }

  /**
   * The off-site copy's location, checked as the repository's is (and never the repository itself); a location
   * unchanged since it was saved is not checked again. Empty: no off-site copy.
   */
  private async offsiteLocation(raw: string, saved: string, repository: string): Promise<string> {
    if (raw.trim() === '') return '';
    let location = raw.trim();
    if (location === saved && location !== repository) return location;
    try {
      location = (await checkRepositoryLocation(raw, { timeoutMs: this.defaults.locationCheckTimeoutMs })).location;
    } catch (err) {
      if (err instanceof InvalidInputError) throw new InvalidInputError(OFFSITE_FIELD, err.message.replace(/^repositoryLocation: /, ''));
      throw err;
    }
    if (location === repository) throw new InvalidInputError(OFFSITE_FIELD, `${location} is the repository itself: an off-site copy goes to another folder or bucket`);
    return location;
  }

  /** The schedulers listen here to move the backup time and the rehearsal. */
  onChange(listener: (s: SavedSettings) => void): () => void {
    this.changes.on('change', listener);
    return () => this.changes.off('change', listener);
  }
}

/** The saved values still meaningful; the post-backup action is never read back (it once was writable). */
function pickKnown(value: Record<string, unknown>): Partial<Omit<Settings, 'postBackupScript'>> {
  const out: Partial<Settings> = {};
  const known = defaultSettings({ repositoryLocation: '/' });
  for (const key of Object.keys(known) as (keyof Settings)[]) {
    if (key === 'postBackupScript') continue;
    if (key in value && typeof value[key] === typeof known[key]) (out as Record<string, unknown>)[key] = value[key];
  }
  if (out.rehearsalDay !== undefined && !REHEARSAL_DAYS.includes(out.rehearsalDay)) delete out.rehearsalDay;
  const within = (v: number | undefined, l: { min: number; max: number }) => v === undefined || (Number.isInteger(v) && v >= l.min && v <= l.max);
  if (!within(out.recoveryPointMinutes, RECOVERY_POINT_LIMITS.minutes)) delete out.recoveryPointMinutes;
  if (!within(out.recoveryPointRetentionDays, RECOVERY_POINT_LIMITS.retentionDays)) delete out.recoveryPointRetentionDays;
  return out;
}

function pickFilesystem(value: unknown): RepositoryFilesystem | null {
  const v = value as Partial<RepositoryFilesystem> | null | undefined;
  if (!v || typeof v.sameAsData !== 'boolean' || !Array.isArray(v.dataPaths)) return null;
  return { sameAsData: v.sameAsData, dataPaths: v.dataPaths.filter((p): p is string => typeof p === 'string') };
}
