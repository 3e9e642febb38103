import { Task as AsyncTask } from '@lit/task';
import { css, html, nothing } from 'lit';
import type { Generation, ProtectionSummary, RepositoryCheckRequest, Task, TaskStarted } from '../../openapi/client.js';
import { DpElement, problemOf, type ProblemLike } from './base.js';
import { formatAge, formatBytes, formatDate, formatDuration, translatePlural, type MessageKey } from './i18n.js';

export interface DpGenerationsEventMap {
  /** Backup now started a backup, or found one running (detail: its task). */
  'dp-backup-started': CustomEvent<Task>;
  /** "Browse and restore" on a generation: the host opens its restore browser on it (detail: the generation id). */
  'dp-browse-generation': CustomEvent<{ generationId: string }>;
}

type Outcome = NonNullable<ProtectionSummary['lastCheck']> | NonNullable<ProtectionSummary['lastRehearsal']> | NonNullable<ProtectionSummary['lastOffsiteCopy']>;

/**
 * The generations navigator. Above the list, a summary that answers "am I protected?": the last successful backup
 * (its age in words), the next scheduled run, the last run's status, the repository's size and the room on its
 * disk, what is protected and the deduplication ratio, the last check and restore rehearsal with their results,
 * and warnings. Each generation: date, status, trigger, duration, product version, what it protects and added
 * (per part too), browse and restore, protect / unprotect (a lock marks a protected generation), delete with
 * confirmation. Backup now, Synchronise with the repository, Check the repository and Rehearse a restore start
 * tasks whose live progress shows here (dp-task-progress).
 * Fires `dp-backup-started` (detail: the task) and `dp-browse-generation` (detail: the generation id).
 */
export class DpGenerations extends DpElement<DpGenerationsEventMap> {
  static override properties = {
    taskId: { state: true },
    actionProblem: { state: true },
    notice: { state: true },
    starting: { state: true },
    confirming: { state: true },
    changing: { state: true },
    checkMode: { state: true },
  };

  declare taskId: string | null;
  declare actionProblem: ProblemLike | null;
  declare notice: string | null;
  declare starting: boolean;
  declare confirming: Generation | null;
  /** The generation whose protection is being changed. */
  declare changing: string | null;
  declare checkMode: RepositoryCheckRequest['mode'];

  private readonly summary = new AsyncTask(this, {
    task: async ([client], { signal }) => {
      if (!client) throw new Error(this.t('common.noClient'));
      return client.getProtectionSummary(signal);
    },
    args: () => [this.client] as const,
  });

  private readonly load = new AsyncTask(this, {
    task: async ([client], { signal }) => {
      if (!client) throw new Error(this.t('common.noClient'));
      const [generations, running] = await Promise.all([
        client.listGenerations(signal),
        client.listTasks({ kind: 'backup', status: 'RUNNING', limit: 1 }, signal).catch(() => null),
      ]);
      if (running?.items[0] && !this.taskId) this.taskId = running.items[0].id;
      return generations;
    },
    args: () => [this.client] as const,
  });

  constructor() {
    super();
    this.taskId = null;
    this.actionProblem = null;
    this.notice = null;
    this.starting = false;
    this.confirming = null;
    this.changing = null;
    this.checkMode = 'sample';
  }

  static override styles = [
    DpElement.baseStyles,
    css`
      .toolbar {
        display: flex;
        gap: var(--_dp-space-3);
        align-items: center;
        margin-bottom: var(--_dp-space-3);
        flex-wrap: wrap;
      }
      table {
        border-collapse: collapse;
        width: 100%;
        table-layout: auto;
      }
      th,
      td {
        text-align: left;
        padding: var(--_dp-space-2);
        border-bottom: 1px solid var(--_dp-color-divider);
        vertical-align: top;
      }
      th {
        background: var(--_dp-color-surface-muted);
        font-weight: 600;
      }
      ul {
        margin: 0;
        padding: 0;
        list-style: none;
      }
      .badge {
        display: inline-block;
        padding: 1px var(--_dp-space-2);
        border-radius: 10px;
        font-size: 12px;
        font-weight: 600;
      }
      .VALID {
        background: var(--_dp-color-valid-background);
        color: var(--_dp-color-valid-text);
      }
      .UNKNOWN {
        background: var(--_dp-color-unknown-background);
        color: var(--_dp-color-warning);
      }
      .INVALID {
        background: var(--_dp-color-invalid-background);
        color: var(--_dp-color-invalid-text);
      }
      .task {
        border: 1px solid var(--_dp-color-border);
        border-radius: var(--_dp-radius-large);
        padding: var(--_dp-space-3);
        margin-bottom: var(--_dp-space-3);
      }
      .lock {
        display: inline-flex;
        vertical-align: -2px;
        margin-left: var(--_dp-space-1);
        color: var(--_dp-color-primary);
      }
      .actions-cell {
        display: flex;
        gap: var(--_dp-space-2);
        flex-wrap: wrap;
      }
      dialog {
        border: 1px solid var(--_dp-color-control-border);
        border-radius: var(--_dp-radius-large);
        max-width: 480px;
      }
      .summary {
        border: 1px solid var(--_dp-color-border);
        border-radius: var(--_dp-radius-large);
        padding: var(--_dp-space-3);
        margin-bottom: var(--_dp-space-3);
      }
      .summary h3 {
        font-size: 16px;
        margin: 0 0 var(--_dp-space-2);
      }
      .summary dl {
        display: grid;
        grid-template-columns: minmax(160px, max-content) 1fr;
        gap: var(--_dp-space-1) var(--_dp-space-3);
        margin: 0;
      }
      .summary dt {
        font-weight: 600;
      }
      .summary dd {
        margin: 0;
      }
      .warnings {
        margin-top: var(--_dp-space-2);
        color: var(--_dp-color-warning);
      }
      .failed {
        color: var(--_dp-color-danger);
        font-weight: 600;
      }
      .passed {
        color: var(--_dp-color-success);
        font-weight: 600;
      }
      select {
        font: inherit;
        padding: 5px var(--_dp-space-2);
        border: 1px solid var(--_dp-color-control-border);
        border-radius: var(--_dp-radius);
      }
      dialog .actions {
        display: flex;
        gap: var(--_dp-space-2);
        justify-content: flex-end;
      }
    `,
  ];

  private async backupNow(): Promise<void> {
    const started = await this.startTask((c) => c.startBackup());
    if (started) {
      if (started.alreadyRunning) this.notice = this.t('generations.alreadyRunning');
      this.emit('dp-backup-started', started.task);
    }
  }

  /** Starts a task from the toolbar and follows it here. */
  private async startTask(call: (c: NonNullable<DpGenerations['client']>) => Promise<TaskStarted>): Promise<TaskStarted | null> {
    if (!this.client) return null;
    this.actionProblem = null;
    this.notice = null;
    this.starting = true;
    try {
      const started = await call(this.client);
      this.taskId = started.task.id;
      return started;
    } catch (err) {
      this.actionProblem = problemOf(err) ?? { status: 0, title: this.t('common.error'), detail: (err as Error).message };
      return null;
    } finally {
      this.starting = false;
    }
  }

  private askDelete(g: Generation, e: Event): void {
    this.confirming = g;
    this.openDialog(e);
  }

  private closeDialog(): void {
    this.confirming = null;
    this.closeOpenDialog();
  }

  private async confirmDelete(): Promise<void> {
    const g = this.confirming;
    this.closeDialog();
    if (!g || !this.client) return;
    this.actionProblem = null;
    try {
      const started = await this.client.forgetGeneration(g.id);
      this.taskId = started.task.id;
    } catch (err) {
      this.actionProblem = problemOf(err) ?? { status: 0, title: this.t('common.error'), detail: (err as Error).message };
    }
  }

  private async toggleProtection(g: Generation): Promise<void> {
    if (!this.client) return;
    this.actionProblem = null;
    this.changing = g.id;
    try {
      await (g.protected ? this.client.unprotectGeneration(g.id) : this.client.protectGeneration(g.id));
      await this.load.run();
    } catch (err) {
      this.actionProblem = problemOf(err) ?? { status: 0, title: this.t('common.error'), detail: (err as Error).message };
    } finally {
      this.changing = null;
    }
  }

  private taskEnded(_e: CustomEvent<Task>): void {
    void this.load.run();
    void this.summary.run();
  }

  override render() {
    return html`<section aria-labelledby="dp-generations-title">
      <h2 part="title" id="dp-generations-title">${this.t('generations.title')}</h2>
      <div part="toolbar" class="toolbar">
        ${this.may('manageDataProtect')
          ? html`<button part="backup-button" id="backup-now" @click=${this.backupNow} ?disabled=${this.starting}>
                ${this.starting ? this.t('generations.starting') : this.t('generations.backupNow')}
              </button>
              <button part="sync-button" class="secondary" id="sync" ?disabled=${this.starting} @click=${() => this.startTask((c) => c.syncGenerations())}>
                ${this.t('generations.sync')}
              </button>
              <label class="note"
                >${this.t('generations.checkMode')}
                <select id="check-mode" @change=${(e: Event) => (this.checkMode = (e.target as HTMLSelectElement).value as RepositoryCheckRequest['mode'])}>
                  ${(['structure', 'sample', 'full'] as const).map(
                    (m) => html`<option value=${m} ?selected=${m === this.checkMode}>${this.t(`generations.checkMode.${m}`)}</option>`,
                  )}
                </select></label
              >
              <button part="check-button" class="secondary" id="check" ?disabled=${this.starting} @click=${() => this.startTask((c) => c.checkRepository({ mode: this.checkMode }))}>
                ${this.t('generations.check')}
              </button>
              <button part="rehearse-button" class="secondary" id="rehearse" ?disabled=${this.starting} @click=${() => this.startTask((c) => c.startRehearsal())}>
                ${this.t('generations.rehearse')}
              </button>`
          : nothing}
        ${this.notice ? html`<span class="note" role="status">${this.notice}</span>` : nothing}
      </div>
      ${this.actionProblem ? this.problemBox(this.actionProblem) : nothing}
      ${this.taskId
        ? html`<div part="task" class="task"><dp-task-progress task-id=${this.taskId} @dp-task-end=${this.taskEnded}></dp-task-progress></div>`
        : nothing}
      ${this.summary.render({
        complete: (s) => this.summaryBlock(s),
        // A note, not a second alert: when the API is away the list below says so already.
        error: (err) => html`<p part="summary" class="note summary" data-summary-error>${this.t('summary.title')} ${problemOf(err) ? this.problemText(problemOf(err)!) : (err as Error).message}</p>`,
      })}
      ${this.load.render({
        pending: () => html`<p class="note" role="status">${this.t('common.loading')}</p>`,
        complete: (gens) => this.table(gens),
        error: (err) => this.errorBox(err),
      })}
      ${this.confirming ? this.dialog(this.confirming) : nothing}
    </section>`;
  }

  private table(gens: Generation[]) {
    if (gens.length === 0) return html`<p class="note">${this.t('generations.empty')}</p>`;
    return html`<table part="generations">
      <thead>
        <tr>
          <th scope="col">${this.t('generations.date')}</th>
          <th scope="col">${this.t('generations.status')}</th>
          <th scope="col">${this.t('generations.trigger')}</th>
          <th scope="col">${this.t('generations.durationCol')}</th>
          <th scope="col">${this.t('generations.version')}</th>
          <th scope="col">${this.t('generations.size')}</th>
          <th scope="col">${this.t('generations.parts')}</th>
          <th scope="col">${this.t('generations.actions')}</th>
        </tr>
      </thead>
      <tbody>
        ${gens.map(
          (g) => html`<tr data-generation=${g.id}>
            <td>
              ${formatDate(this.locale, g.protectionTime)}${g.protected ? this.lock() : nothing}
              <div class="note">${formatAge(this.locale, g.protectionTime)}</div>
            </td>
            <td><span part="status" class="badge ${g.status}">${this.t(`status.${g.status}`)}</span></td>
            <td data-trigger=${g.trigger}>${this.t(`generations.trigger.${g.trigger}`)}</td>
            <td>${g.durationSeconds !== null ? formatDuration(g.durationSeconds * 1000) : '—'}</td>
            <td>${g.productVersion}</td>
            <td>
              ${this.t('generations.protects', { size: formatBytes(this.locale, g.sizeTotal) })}
              <div class="note">${this.t('generations.added', { size: formatBytes(this.locale, g.sizeAdded) })}</div>
            </td>
            <td>
              <ul>
                ${g.parts.map(
                  (p) => html`<li>
                    <span part="part-status" class="badge ${p.status}">${p.tag}</span>
                    ${p.server} · ${this.t(`status.${p.status}`)} ·
                    <span data-part-sizes
                      >${this.t('generations.partSizes', {
                        total: p.sizeTotal !== null && p.sizeTotal !== undefined ? formatBytes(this.locale, p.sizeTotal) : '—',
                        added: formatBytes(this.locale, p.sizeAdded),
                      })}</span
                    >
                    ${p.end ? html` · ${formatDuration(Date.parse(p.end) - Date.parse(p.begin))}` : nothing}
                    ${p.messages.length ? html`<div class="note">${p.messages.join(' — ')}</div>` : nothing}
                  </li>`,
                )}
              </ul>
            </td>
            <td>
              <div class="actions-cell">
                ${this.browseButton(g)}${this.may('manageDataProtect') ? html`${this.protectButton(g)}${this.deleteButton(g)}` : nothing}
              </div>
            </td>
          </tr>`,
        )}
      </tbody>
    </table>`;
  }

  private browseButton(g: Generation) {
    return html`<button
      part="browse-button"
      class="secondary"
      aria-label=${this.t('generations.browseLabel', { date: formatDate(this.locale, g.protectionTime) })}
      @click=${() => this.emit('dp-browse-generation', { generationId: g.id })}
    >
      ${this.t('generations.browse')}
    </button>`;
  }

  private summaryBlock(s: ProtectionSummary) {
    const zone = s.timeZone;
    const repo = s.repository;
    const lastRun = s.lastRun;
    return html`<section part="summary" class="summary" aria-labelledby="dp-summary-title" data-scope=${s.scope}>
      <h3 id="dp-summary-title">${this.t('summary.title')}</h3>
      <dl>
        <dt>${this.t('summary.lastSuccess')}</dt>
        <dd data-summary="last-success">
          ${s.lastSuccess
            ? html`<span title=${formatDate(this.locale, s.lastSuccess.protectionTime, zone)}>${formatAge(this.locale, s.lastSuccess.protectionTime)}</span>
                <span class="note">(${formatDate(this.locale, s.lastSuccess.protectionTime, zone)})</span>`
            : this.t('summary.never')}
        </dd>
        <dt>${this.t('summary.nextRun')}</dt>
        <dd data-summary="next-run">${s.nextRun ? formatDate(this.locale, s.nextRun, zone) : this.t('summary.notScheduled')}</dd>
        <dt>${this.t('summary.lastRun')}</dt>
        <dd data-summary="last-run">
          ${lastRun
            ? html`<span class="badge ${lastRun.status}">${this.t(`status.${lastRun.status}`)}</span>
                ${lastRun.runStatus ?? ''} · ${formatDate(this.locale, lastRun.protectionTime, zone)}${lastRun.durationSeconds !== null
                  ? html` · ${formatDuration(lastRun.durationSeconds * 1000)}`
                  : nothing}`
            : this.t('summary.none')}
          ${s.backupRunning ? html`<div class="note">${this.t('summary.running')}</div>` : nothing}
        </dd>
        ${repo
          ? html`<dt>${this.t('summary.repository')}</dt>
              <dd data-summary="repository">
                ${repo.storedBytes !== null ? this.t('summary.stored', { size: formatBytes(this.locale, repo.storedBytes) }) : '—'}
                ${repo.freeBytes !== null && repo.filesystemBytes
                  ? html` · ${this.t('summary.free', {
                      free: formatBytes(this.locale, repo.freeBytes),
                      total: formatBytes(this.locale, repo.filesystemBytes),
                      percent: Math.floor((repo.freeBytes / repo.filesystemBytes) * 100),
                    })}`
                  : nothing}
                <div class="note">${repo.location}</div>
                ${repo.readError ? html`<div class="failed" role="alert">${repo.readError}</div>` : nothing}
              </dd>`
          : nothing}
        <dt>${this.t('summary.protected')}</dt>
        <dd data-summary="protected">
          ${s.protectedBytes !== null ? formatBytes(this.locale, s.protectedBytes) : '—'}
          ${s.deduplicationRatio !== null
            ? html` · ${this.t('summary.dedup', { ratio: `×${new Intl.NumberFormat(this.locale, { maximumFractionDigits: 1 }).format(s.deduplicationRatio)}` })}`
            : nothing}
        </dd>
        ${s.scope === 'installation'
          ? html`<dt>${this.t('summary.lastCheck')}</dt>
              <dd data-summary="last-check">
                ${s.lastCheck
                  ? html`${this.outcome(s.lastCheck)}${s.lastCheck.errors
                      ? html` · <span class="failed">${translatePlural(this.locale, 'summary.checkErrors', s.lastCheck.errors)}</span>`
                      : nothing}${this.outcomeError(s.lastCheck)}`
                  : this.t('summary.none')}
              </dd>
              <dt>${this.t('summary.lastRehearsal')}</dt>
              <dd data-summary="last-rehearsal">
                ${s.lastRehearsal ? this.rehearsal(s.lastRehearsal) : this.t('summary.none')}
                ${s.nextRehearsal ? html`<div class="note" data-summary="next-rehearsal">${this.t('summary.nextRehearsal', { date: formatDate(this.locale, s.nextRehearsal, zone) })}</div>` : nothing}
              </dd>
              ${s.lastOffsiteCopy ? this.offsiteCopy(s.lastOffsiteCopy) : nothing}`
          : nothing}
      </dl>
      ${s.warnings.length
        ? html`<ul class="warnings" aria-label=${this.t('summary.warnings')}>
            ${s.warnings.map((w) => html`<li data-warning=${w.code}>⚠ ${this.warning(w)}</li>`)}
          </ul>`
        : nothing}
    </section>`;
  }

  private warning(w: ProtectionSummary['warnings'][number]): string {
    if (w.code === 'no-success' && w.params.hours === undefined) return this.t('summary.warning.no-success.never');
    return this.t(`summary.warning.${w.code}` as MessageKey, w.params);
  }

  /** A check's or rehearsal's result, how long ago, and how long it took. */
  private outcome(o: Outcome) {
    const result =
      o.status === 'SUCCEEDED' ? 'passed' : o.status === 'RUNNING' ? 'running' : o.status === 'INTERRUPTED' || o.status === 'CANCELLED' ? 'interrupted' : 'failed';
    return html`<span class=${result === 'passed' ? 'passed' : result === 'failed' ? 'failed' : ''} data-result=${result}
      >${this.t('summary.outcome', {
        result: this.t(`summary.result.${result}`),
        age: formatAge(this.locale, o.endedAt ?? o.startedAt),
        duration: o.durationSeconds !== null ? formatDuration(o.durationSeconds * 1000) : '—',
      })}</span
    >`;
  }

  /** Shown once an off-site copy has run: when, its result, the generation and what it wrote where. */
  private offsiteCopy(c: NonNullable<ProtectionSummary['lastOffsiteCopy']>) {
    return html`<dt>${this.t('summary.lastOffsiteCopy')}</dt>
      <dd data-summary="last-offsite-copy">
        ${this.outcome(c)}${c.generationId ? html` · <span class="note">${c.generationId}</span>` : nothing}
        ${c.location && c.bytesAdded !== null
          ? html`<div class="note">${this.t('summary.offsiteWritten', { size: formatBytes(this.locale, c.bytesAdded), location: c.location })}</div>`
          : nothing}
        ${this.outcomeError(c)}
      </dd>`;
  }

  /** Why a check, rehearsal or copy failed, as its task said. */
  private outcomeError(o: Outcome) {
    return o.error && o.status !== 'SUCCEEDED' && o.status !== 'RUNNING' ? html`<div class="note" data-outcome-error>${o.error}</div>` : nothing;
  }

  private rehearsal(r: NonNullable<ProtectionSummary['lastRehearsal']>) {
    // The parts' differences, when there are, say why better than the task's error.
    const differs = r.parts.some((p) => p.verdict === 'differs');
    return html`${this.outcome(r)}${r.generationId ? html` · <span class="note">${r.generationId}</span>` : nothing}
      ${r.parts.length
        ? html`<ul data-rehearsal-parts>
            ${r.parts.map(
              (p) => html`<li data-verdict=${p.verdict}>
                <span class="badge ${p.verdict === 'same' ? 'VALID' : 'INVALID'}">${p.tag}</span> ${p.server} ·
                ${this.t(`summary.verdict.${p.verdict}`)}${p.differences.length ? html`<div class="note">${p.differences.join(' — ')}</div>` : nothing}
              </li>`,
            )}
          </ul>`
        : nothing}
      ${differs ? nothing : this.outcomeError(r)}`;
  }

  private lock() {
    const label = this.t('generations.protected');
    return html`<span part="lock" class="lock" role="img" aria-label=${label} title=${label}
      ><svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true">
        <path fill="currentColor" d="M4 7V5a4 4 0 0 1 8 0v2h1v8H3V7h1zm2 0h4V5a2 2 0 0 0-4 0v2z" /></svg
    ></span>`;
  }

  private protectButton(g: Generation) {
    const date = formatDate(this.locale, g.protectionTime);
    return html`<button
      part="protect-button"
      class="secondary"
      aria-label=${this.t(g.protected ? 'generations.unprotectLabel' : 'generations.protectLabel', { date })}
      ?disabled=${this.changing === g.id}
      @click=${() => this.toggleProtection(g)}
    >
      ${this.t(g.protected ? 'generations.unprotect' : 'generations.protect')}
    </button>`;
  }

  private deleteButton(g: Generation) {
    return html`<button
                part="delete-button"
                class="secondary"
                aria-label=${this.t('generations.deleteLabel', { date: formatDate(this.locale, g.protectionTime) })}
                @click=${(e: Event) => this.askDelete(g, e)}
              >
                ${this.t('generations.delete')}
              </button>`;
  }

  private dialog(g: Generation) {
    const date = formatDate(this.locale, g.protectionTime);
    return html`<dialog part="dialog" aria-labelledby="confirm-title" @cancel=${(e: Event) => (e.preventDefault(), this.closeDialog())}>
      <h2 id="confirm-title">${this.t('generations.confirmTitle')}</h2>
      <p>${this.t('generations.confirmText', { date })}</p>
      <div class="actions">
        <button class="secondary" @click=${this.closeDialog}>${this.t('common.cancel')}</button>
        <button class="danger" @click=${this.confirmDelete}>${this.t('generations.confirm')}</button>
      </div>
    </dialog>`;
  }
}
