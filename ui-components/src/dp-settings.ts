import { Task as AsyncTask } from '@lit/task';
import { css, html, nothing } from 'lit';
import type { Settings, SettingsUpdate } from '../../openapi/client.js';
import { DpElement, problemOf } from './base.js';
import { formatDate, type MessageKey } from './i18n.js';

type Field =
  | 'retentionDays' | 'keepWeekly' | 'keepMonthly' | 'backupTime' | 'repositoryLocation' | 'skippedTags' | 'rehearsalTime' | 'offsiteCopyLocation'
  | 'recoveryPointMinutes' | 'recoveryPointRetentionDays';
type RehearsalDay = Settings['rehearsalDay'];
const REHEARSAL_DAYS: RehearsalDay[] = ['daily', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

interface Draft {
  retentionDays: string;
  keepWeekly: string;
  keepMonthly: string;
  backupEmails: boolean;
  backupArchivedEmails: boolean;
  backupTime: string;
  repositoryLocation: string;
  skippedTags: string;
  rehearsalEnabled: boolean;
  rehearsalDay: RehearsalDay;
  rehearsalTime: string;
  recoveryPointsEnabled: boolean;
  recoveryPointMinutes: string;
  recoveryPointRetentionDays: string;
  offsiteCopyLocation: string;
}

const TIME = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;
const TAG = /^[a-z0-9_-]+\/[a-z0-9_-]+$/;
/** Digits only: `1e3` or `7.0` is not a number of days (Number() would take both). */
const WHOLE = /^\s*[0-9]+\s*$/;
const NUMERIC = new Set<Field>(['retentionDays', 'keepWeekly', 'keepMonthly', 'recoveryPointMinutes', 'recoveryPointRetentionDays']);
/** The contract's bounds of the recovery-point fields. */
const RECOVERY_POINT_BOUNDS = { recoveryPointMinutes: [5, 720], recoveryPointRetentionDays: [1, 30] } as const;
const COUNT_MAX: Record<'keepWeekly' | 'keepMonthly', number> = { keepWeekly: 520, keepMonthly: 240 };

function toDraft(s: Settings): Draft {
  return {
    retentionDays: String(s.retentionDays),
    keepWeekly: String(s.keepWeekly),
    keepMonthly: String(s.keepMonthly),
    backupEmails: s.backupEmails,
    backupArchivedEmails: s.backupArchivedEmails,
    backupTime: s.backupTime,
    repositoryLocation: s.repositoryLocation,
    skippedTags: s.skippedTags.join(', '),
    rehearsalEnabled: s.rehearsalEnabled,
    rehearsalDay: s.rehearsalDay,
    rehearsalTime: s.rehearsalTime,
    recoveryPointsEnabled: s.recoveryPointsEnabled,
    recoveryPointMinutes: String(s.recoveryPointMinutes),
    recoveryPointRetentionDays: String(s.recoveryPointRetentionDays),
    offsiteCopyLocation: s.offsiteCopyLocation,
  };
}

function tagsOf(text: string): string[] {
  return [...new Set(text.split(',').map((t) => t.trim()).filter(Boolean))];
}

/** An absolute directory or an s3:// URL (the server checks the rest when saving). */
function locationShape(loc: string): boolean {
  return (loc.startsWith('/') || /^s3:\/\/[^/]+/i.test(loc)) && !loc.split('/').includes('..');
}

/** The checks the contract makes, done before sending so that messages appear beside the fields at once. */
function validate(d: Draft): Partial<Record<Field, MessageKey>> {
  const errors: Partial<Record<Field, MessageKey>> = {};
  const n = Number(d.retentionDays);
  if (d.retentionDays.trim() === '') errors.retentionDays = 'settings.err.required';
  else if (!WHOLE.test(d.retentionDays) || n < 1 || n > 3650) errors.retentionDays = 'settings.err.retention';
  for (const f of ['keepWeekly', 'keepMonthly'] as const) {
    if (!WHOLE.test(d[f]) || Number(d[f]) > COUNT_MAX[f]) errors[f] = 'settings.err.count';
  }
  if (!TIME.test(d.backupTime)) errors.backupTime = 'settings.err.time';
  if (!TIME.test(d.rehearsalTime)) errors.rehearsalTime = 'settings.err.time';
  for (const f of ['recoveryPointMinutes', 'recoveryPointRetentionDays'] as const) {
    const [min, max] = RECOVERY_POINT_BOUNDS[f];
    if (!WHOLE.test(d[f]) || Number(d[f]) < min || Number(d[f]) > max) errors[f] = f === 'recoveryPointMinutes' ? 'settings.err.recoveryPointMinutes' : 'settings.err.recoveryPointRetentionDays';
  }
  const loc = d.repositoryLocation.trim();
  if (!loc) errors.repositoryLocation = 'settings.err.required';
  else if (!locationShape(loc)) errors.repositoryLocation = 'settings.err.location';
  const offsite = d.offsiteCopyLocation.trim();
  // Empty: no off-site copy.
  if (offsite && !locationShape(offsite)) errors.offsiteCopyLocation = 'settings.err.location';
  else if (offsite && offsite === loc) errors.offsiteCopyLocation = 'settings.err.offsiteSame';
  if (!tagsOf(d.skippedTags).every((t) => TAG.test(t))) errors.skippedTags = 'settings.err.tags';
  return errors;
}

export interface DpSettingsEventMap {
  /** The settings were saved (detail: the settings as the server stored them). */
  'dp-settings-saved': CustomEvent<Settings>;
}

/**
 * Backup and Restore > Settings > Configuration: retention, Backup emails, Backup archived emails, backup time,
 * repository location, skipped tags, the scheduled restore rehearsal (on or off, day, time), mail recovery points
 * (on or off, every N minutes, kept N days). Fires `dp-settings-saved` (detail: the saved settings).
 */
export class DpSettings extends DpElement<DpSettingsEventMap> {
  static override properties = {
    draft: { state: true },
    saved: { state: true },
    clientErrors: { state: true },
    serverErrors: { state: true },
    problem: { state: true },
    saving: { state: true },
    dirty: { state: true },
    checkedLocation: { state: true },
  };

  declare draft: Draft | null;
  declare saved: Settings | null;
  declare clientErrors: Partial<Record<Field, MessageKey>>;
  declare serverErrors: Record<string, string>;
  declare problem: string | null;
  declare saving: boolean;
  declare dirty: boolean;
  /** The location as the server checked it at the last save (the answer shown beside the field). */
  declare checkedLocation: string | null;

  private readonly load = new AsyncTask(this, {
    task: async ([client], { signal }) => {
      if (!client) throw new Error(this.t('common.noClient'));
      const s = await client.getSettings(signal);
      this.saved = s;
      this.draft = toDraft(s);
      this.dirty = false;
      return s;
    },
    args: () => [this.client] as const,
  });

  constructor() {
    super();
    this.draft = null;
    this.saved = null;
    this.clientErrors = {};
    this.serverErrors = {};
    this.problem = null;
    this.saving = false;
    this.dirty = false;
    this.checkedLocation = null;
  }

  static override styles = [
    DpElement.baseStyles,
    css`
      form {
        display: grid;
        gap: 14px;
        max-width: 640px;
      }
      .field {
        display: grid;
        gap: var(--_dp-space-1);
      }
      label {
        font-weight: 600;
      }
      .check label {
        font-weight: normal;
        display: flex;
        gap: var(--_dp-space-2);
        align-items: center;
      }
      input[type='text'],
      input[type='number'],
      input[type='time'] {
        font: inherit;
        padding: 6px var(--_dp-space-2);
        border: 1px solid var(--_dp-color-control-border);
        border-radius: var(--_dp-radius);
        width: 100%;
        max-width: 100%;
      }
      input[type='number'],
      input[type='time'],
      input[inputmode='numeric'] {
        max-width: 160px;
      }
      input[aria-invalid='true'] {
        border-color: var(--_dp-color-alert-border);
        background: var(--_dp-color-alert-background);
      }
      .error {
        color: var(--_dp-color-danger);
        font-size: 13px;
      }
      .actions {
        display: flex;
        gap: var(--_dp-space-3);
        align-items: center;
        flex-wrap: wrap;
      }
      .saved,
      .checked {
        color: var(--_dp-color-success);
        font-size: 13px;
      }
      .warning {
        color: var(--_dp-color-warning);
        font-size: 13px;
      }
      fieldset {
        border: 1px solid var(--_dp-color-border);
        border-radius: var(--_dp-radius);
        padding: var(--_dp-space-2) var(--_dp-space-3);
        display: grid;
        gap: var(--_dp-space-2);
      }
      legend {
        font-weight: 600;
      }
      select {
        font: inherit;
        padding: 6px var(--_dp-space-2);
        border: 1px solid var(--_dp-color-control-border);
        border-radius: var(--_dp-radius);
        max-width: 240px;
      }
      input[readonly] {
        background: var(--_dp-color-surface-muted);
        color: inherit;
      }
    `,
  ];

  private edit(field: keyof Draft, value: string | boolean): void {
    if (!this.draft) return;
    this.draft = { ...this.draft, [field]: value };
    this.dirty = true;
    if (this.clientErrors[field as Field]) this.clientErrors = validate(this.draft);
    if (this.serverErrors[field]) {
      const { [field]: _, ...rest } = this.serverErrors;
      this.serverErrors = rest;
    }
  }

  private async submit(e: Event): Promise<void> {
    e.preventDefault();
    if (!this.draft || !this.client || !this.saved) return;
    this.problem = null;
    this.clientErrors = validate(this.draft);
    this.serverErrors = {};
    if (Object.keys(this.clientErrors).length > 0) {
      this.focusFirstInvalid();
      return;
    }
    const d = this.draft;
    const update: SettingsUpdate = {
      retentionDays: Number(d.retentionDays),
      keepWeekly: Number(d.keepWeekly),
      keepMonthly: Number(d.keepMonthly),
      backupEmails: d.backupEmails,
      backupArchivedEmails: d.backupArchivedEmails,
      backupTime: d.backupTime,
      repositoryLocation: d.repositoryLocation.trim(),
      skippedTags: tagsOf(d.skippedTags),
      rehearsalEnabled: d.rehearsalEnabled,
      rehearsalDay: d.rehearsalDay,
      rehearsalTime: d.rehearsalTime,
      recoveryPointsEnabled: d.recoveryPointsEnabled,
      recoveryPointMinutes: Number(d.recoveryPointMinutes),
      recoveryPointRetentionDays: Number(d.recoveryPointRetentionDays),
      offsiteCopyLocation: d.offsiteCopyLocation.trim(),
    };
    this.saving = true;
    this.checkedLocation = null;
    try {
      const s = await this.client.updateSettings(update);
      this.checkedLocation = s.repositoryLocation;
      this.saved = s;
      this.draft = toDraft(s);
      this.dirty = false;
      this.emit('dp-settings-saved', s);
    } catch (err) {
      const p = problemOf(err);
      const fields = (err as { fieldErrors?: () => Record<string, string> }).fieldErrors?.() ?? {};
      this.serverErrors = fields;
      this.problem = p?.detail ?? (err as Error).message;
      await this.updateComplete;
      this.focusFirstInvalid();
    } finally {
      this.saving = false;
    }
  }

  private focusFirstInvalid(): void {
    void this.updateComplete.then(() => this.renderRoot.querySelector<HTMLInputElement>('[aria-invalid="true"]')?.focus());
  }

  private errorFor(field: Field): string | null {
    const key = this.clientErrors[field];
    if (key) return this.t(key);
    return this.serverErrors[field] ?? null;
  }

  private textField(field: Field, type: 'text' | 'number' | 'time', labelKey: MessageKey, helpKey?: MessageKey, help?: string, disabled = false) {
    const error = this.errorFor(field);
    const value = this.draft![field] as string;
    return html`<div part="field" class="field">
      <label for=${field}>${this.t(labelKey)}</label>
      <input
        part="input"
        id=${field}
        name=${field}
        type=${type}
        inputmode=${NUMERIC.has(field) ? 'numeric' : nothing}
        .value=${value}
        ?disabled=${disabled}
        aria-invalid=${error ? 'true' : 'false'}
        aria-describedby="${field}-help ${field}-error"
        @input=${(e: Event) => this.edit(field, (e.target as HTMLInputElement).value)}
      />
      ${helpKey || help ? html`<span class="note" id="${field}-help">${help ?? this.t(helpKey!)}</span>` : nothing}
      <span part="error" class="error" id="${field}-error" role=${error ? 'alert' : nothing}>${error ?? ''}</span>
      ${field === 'repositoryLocation' ? this.locationCheck(error) : nothing}
    </div>`;
  }

  /** The server's answer on the location, beside the field: checked (and on which disk), or why not (the error above). */
  private locationCheck(error: string | null) {
    if (this.saving) return html`<span class="note" role="status" data-location-check="checking">${this.t('settings.location.checking')}</span>`;
    const s = this.saved;
    if (error || !s || this.checkedLocation === null || this.checkedLocation !== this.draft?.repositoryLocation.trim()) return nothing;
    const fs = s.repositoryFilesystem;
    return html`<span part="location-check" class="checked" role="status" data-location-check="ok">${this.t('settings.location.checked')}</span>
      ${fs?.sameAsData
        ? html`<span class="warning" data-location-check="same-disk">${this.t('settings.location.sameDisk', { paths: fs.dataPaths.join(', ') })}</span>`
        : nothing}`;
  }

  /** Set on the server, never through the API: shown, not editable. */
  private readOnlyField(id: string, labelKey: MessageKey, value: string, helpKey: MessageKey) {
    return html`<div part="field" class="field">
      <label for=${id}>${this.t(labelKey)}</label>
      <input part="input" id=${id} type="text" .value=${value} readonly aria-describedby="${id}-help" />
      <span class="note" id="${id}-help">${this.t(helpKey)}</span>
    </div>`;
  }

  /** The scheduled restore rehearsal: on or off, its day and its time (in the server's zone). */
  private rehearsalFields(zone: string) {
    const d = this.draft!;
    return html`<fieldset part="rehearsal" class="field">
      <legend>${this.t('settings.rehearsal')}</legend>
      ${this.checkField('rehearsalEnabled', 'settings.rehearsalEnabled', 'settings.rehearsalEnabled.help')}
      <div part="field" class="field">
        <label for="rehearsalDay">${this.t('settings.rehearsalDay')}</label>
        <select id="rehearsalDay" name="rehearsalDay" ?disabled=${!d.rehearsalEnabled} @change=${(e: Event) => this.edit('rehearsalDay', (e.target as HTMLSelectElement).value)}>
          ${REHEARSAL_DAYS.map((day) => html`<option value=${day} ?selected=${day === d.rehearsalDay}>${this.t(`settings.rehearsalDay.${day}`)}</option>`)}
        </select>
      </div>
      ${this.textField('rehearsalTime', 'time', 'settings.rehearsalTime', undefined, this.t('settings.rehearsalTime.zone', { zone }), !d.rehearsalEnabled)}
    </fieldset>`;
  }

  /** Mail recovery points between the nightly generations: on or off, how often, how long they are kept. */
  private recoveryPointFields() {
    const off = !this.draft!.recoveryPointsEnabled;
    return html`<fieldset part="recovery-points" class="field">
      <legend>${this.t('settings.recoveryPoints')}</legend>
      ${this.checkField('recoveryPointsEnabled', 'settings.recoveryPointsEnabled', 'settings.recoveryPointsEnabled.help')}
      ${this.textField('recoveryPointMinutes', 'text', 'settings.recoveryPointMinutes', 'settings.recoveryPointMinutes.help', undefined, off)}
      ${this.textField('recoveryPointRetentionDays', 'text', 'settings.recoveryPointRetentionDays', 'settings.recoveryPointRetentionDays.help', undefined, off)}
    </fieldset>`;
  }

  private checkField(field: 'backupEmails' | 'backupArchivedEmails' | 'rehearsalEnabled' | 'recoveryPointsEnabled', labelKey: MessageKey, helpKey?: MessageKey) {
    return html`<div part="field" class="field check">
      <label
        ><input
          type="checkbox"
          id=${field}
          name=${field}
          .checked=${this.draft![field]}
          aria-describedby=${helpKey ? `${field}-help` : nothing}
          @change=${(e: Event) => this.edit(field, (e.target as HTMLInputElement).checked)}
        />${this.t(labelKey)}</label
      >
      ${helpKey ? html`<span class="note" id="${field}-help">${this.t(helpKey)}</span>` : nothing}
    </div>`;
  }

  override render() {
    return html`<section aria-labelledby="dp-settings-title">
      <h2 part="title" id="dp-settings-title">${this.t('settings.title')}</h2>
      ${this.load.render({
        pending: () => (this.draft ? this.form() : html`<p class="note" role="status">${this.t('common.loading')}</p>`),
        complete: () => this.form(),
        error: (err) =>
          html`<div part="alert" class="alert" role="alert">
              <strong>${this.t('common.error')}</strong>${problemOf(err)?.detail ?? (err as Error).message}
            </div>
            <button class="secondary" @click=${() => this.load.run()}>${this.t('common.retry')}</button>`,
      })}
    </section>`;
  }

  private form() {
    if (!this.draft) return nothing;
    const s = this.saved;
    return html`<form part="form" @submit=${this.submit} novalidate>
      ${this.textField('retentionDays', 'text', 'settings.retentionDays', 'settings.retentionDays.help')}
      ${this.textField('keepWeekly', 'text', 'settings.keepWeekly', 'settings.keepWeekly.help')}
      ${this.textField('keepMonthly', 'text', 'settings.keepMonthly', 'settings.keepMonthly.help')}
      ${this.checkField('backupEmails', 'settings.backupEmails')}
      ${this.checkField('backupArchivedEmails', 'settings.backupArchivedEmails')}
      ${this.textField('backupTime', 'time', 'settings.backupTime', undefined, this.t('settings.backupTime.zone', { zone: s?.timeZone ?? 'UTC' }))}
      ${this.textField('repositoryLocation', 'text', 'settings.repositoryLocation', 'settings.repositoryLocation.help')}
      ${this.textField('skippedTags', 'text', 'settings.skippedTags', 'settings.skippedTags.help')}
      ${this.rehearsalFields(s?.timeZone ?? 'UTC')}
      ${this.textField('offsiteCopyLocation', 'text', 'settings.offsiteCopyLocation', 'settings.offsiteCopyLocation.help')}
      ${this.recoveryPointFields()}
      ${this.readOnlyField('postBackupScript', 'settings.postBackupScript', s?.postBackupScript ?? '', 'settings.postBackupScript.help')}
      ${Object.keys(this.clientErrors).length > 0
        ? html`<div part="alert" class="alert" role="alert">${this.t('settings.invalid')}</div>`
        : nothing}
      ${this.problem ? html`<div part="alert" class="alert" role="alert">${this.problem}</div>` : nothing}
      <div part="actions" class="actions">
        <button part="save-button" type="submit" ?disabled=${this.saving}>${this.saving ? this.t('settings.saving') : this.t('settings.save')}</button>
        <span
          part="status"
          role="status"
          class=${this.dirty ? 'note' : 'saved'}
          data-saved-state=${this.dirty ? 'unsaved' : s?.updatedAt ? 'saved' : 'defaults'}
        >
          ${this.dirty
            ? this.t('settings.unsaved')
            : s?.updatedAt
              ? this.t('settings.saved', { when: formatDate(this.locale, s.updatedAt, s.timeZone), who: s.updatedBy ?? '' })
              : this.t('settings.defaults')}
        </span>
      </div>
    </form>`;
  }
}
