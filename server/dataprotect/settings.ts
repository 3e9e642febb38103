import { EventEmitter } from 'node:events';
import path from 'node:path';
import { inject, injectable, type InjectionToken } from 'tsyringe';
import { SettingsStore } from '../store/settings-store.js';
import { AuditLog } from './audit.js';
import { InvalidInputError } from './errors.js';
import type { Principal } from './principal.js';

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
  postBackupScript: string;
}

export interface SavedSettings extends Settings {
  /** null while the defaults apply */
  updatedAt: string | null;
  updatedBy: string | null;
}

export interface SettingsDefaults {
  repositoryLocation: string;
}

export const SETTINGS_DEFAULTS: InjectionToken<SettingsDefaults> = Symbol('dp.SettingsDefaults');

export const DEFAULT_BACKUP_TIME = '01:00';
export const DEFAULT_POST_BACKUP_SCRIPT = '/usr/bin/bm-post-full-backup.sh';

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
    postBackupScript: DEFAULT_POST_BACKUP_SCRIPT,
  };
}

export type SettingsUpdate = Omit<Settings, 'keepWeekly' | 'keepMonthly' | 'postBackupScript'> &
  Partial<Pick<Settings, 'keepWeekly' | 'keepMonthly' | 'postBackupScript'>>;

@injectable()
export class SettingsService {
  private readonly changes = new EventEmitter();

  constructor(
    @inject(SettingsStore) private readonly store: SettingsStore,
    @inject(AuditLog) private readonly audit: AuditLog,
    @inject(SETTINGS_DEFAULTS) private readonly defaults: SettingsDefaults,
  ) {}

  async get(): Promise<SavedSettings> {
    const stored = await this.store.read();
    const base = defaultSettings(this.defaults);
    if (!stored) return { ...base, updatedAt: null, updatedBy: null };
    return {
      ...base,
      ...pickKnown(stored.value),
      updatedAt: stored.updatedAt.toISOString(),
      updatedBy: stored.updatedBy,
    };
  }

  /** Replaces the settings (after the checks the contract cannot express), writes an audit event, notifies. */
  async update(input: SettingsUpdate, by: Principal): Promise<SavedSettings> {
    const current = await this.get();
    const next: Settings = {
      retentionDays: input.retentionDays,
      keepWeekly: input.keepWeekly ?? current.keepWeekly,
      keepMonthly: input.keepMonthly ?? current.keepMonthly,
      backupEmails: input.backupEmails,
      backupArchivedEmails: input.backupArchivedEmails,
      backupTime: input.backupTime,
      repositoryLocation: normaliseLocation(input.repositoryLocation),
      skippedTags: [...new Set(input.skippedTags)].sort(),
      postBackupScript: input.postBackupScript ?? current.postBackupScript,
    };
    if (!path.isAbsolute(next.postBackupScript) || next.postBackupScript.split('/').includes('..')) {
      throw new InvalidInputError('postBackupScript', 'must be an absolute path without ".."');
    }
    const saved = await this.store.write({ ...next }, by.login);
    const changed = Object.keys(next).filter(
      (k) => JSON.stringify(next[k as keyof Settings]) !== JSON.stringify(current[k as keyof Settings]),
    );
    await this.audit.record({
      actor: by.login,
      action: 'settings.update',
      target: 'settings',
      result: 'ok',
      detail: { changed, settings: { ...next } },
    });
    const result: SavedSettings = { ...next, updatedAt: saved.updatedAt.toISOString(), updatedBy: saved.updatedBy };
    this.changes.emit('change', result);
    return result;
  }

  /** The scheduler listens here to move the backup time. */
  onChange(listener: (s: SavedSettings) => void): () => void {
    this.changes.on('change', listener);
    return () => this.changes.off('change', listener);
  }
}

function normaliseLocation(raw: string): string {
  const value = raw.trim();
  if (/^s3:\/\//i.test(value)) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new InvalidInputError('repositoryLocation', 'is not a valid s3:// URL');
    }
    if (!url.hostname) throw new InvalidInputError('repositoryLocation', 's3:// URL names no bucket');
    return value;
  }
  if (!path.isAbsolute(value)) {
    throw new InvalidInputError('repositoryLocation', 'must be an absolute directory (or an s3:// URL)');
  }
  if (value.split('/').includes('..')) throw new InvalidInputError('repositoryLocation', 'must not contain ".."');
  const normal = path.normalize(value);
  return normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
}

function pickKnown(value: Record<string, unknown>): Partial<Settings> {
  const out: Partial<Settings> = {};
  const known = defaultSettings({ repositoryLocation: '/' });
  for (const key of Object.keys(known) as (keyof Settings)[]) {
    if (key in value && typeof value[key] === typeof known[key]) (out as Record<string, unknown>)[key] = value[key];
  }
  return out;
}
