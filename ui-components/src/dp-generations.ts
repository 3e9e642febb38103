import { Task as AsyncTask } from '@lit/task';
import { css, html, nothing } from 'lit';
import type { Generation, Task } from '../../openapi/client.js';
import { DpElement, problemOf, type ProblemLike } from './base.js';
import { formatBytes, formatDate, formatDuration } from './i18n.js';

export interface DpGenerationsEventMap {
  /** Backup now started a backup, or found one running (detail: its task). */
  'dp-backup-started': CustomEvent<Task>;
}

/**
 * The generations navigator: date, status, size, parts per server and tag (status, duration, size), Backup now,
 * protect / unprotect (a lock marks a protected generation: kept whatever the retention policy), delete with
 * confirmation, live progress of a running backup or deletion (dp-task-progress).
 * Fires `dp-backup-started` (detail: the task).
 */
export class DpGenerations extends DpElement<DpGenerationsEventMap> {
  static override properties = {
    taskId: { state: true },
    actionProblem: { state: true },
    notice: { state: true },
    starting: { state: true },
    confirming: { state: true },
    changing: { state: true },
  };

  declare taskId: string | null;
  declare actionProblem: ProblemLike | null;
  declare notice: string | null;
  declare starting: boolean;
  declare confirming: Generation | null;
  /** The generation whose protection is being changed. */
  declare changing: string | null;

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
      dialog .actions {
        display: flex;
        gap: var(--_dp-space-2);
        justify-content: flex-end;
      }
    `,
  ];

  private async backupNow(): Promise<void> {
    if (!this.client) return;
    this.actionProblem = null;
    this.notice = null;
    this.starting = true;
    try {
      const started = await this.client.startBackup();
      this.taskId = started.task.id;
      if (started.alreadyRunning) this.notice = this.t('generations.alreadyRunning');
      this.emit('dp-backup-started', started.task);
    } catch (err) {
      this.actionProblem = problemOf(err) ?? { status: 0, title: this.t('common.error'), detail: (err as Error).message };
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
  }

  override render() {
    return html`<section aria-labelledby="dp-generations-title">
      <h2 part="title" id="dp-generations-title">${this.t('generations.title')}</h2>
      <div part="toolbar" class="toolbar">
        ${this.may('manageDataProtect')
          ? html`<button part="backup-button" id="backup-now" @click=${this.backupNow} ?disabled=${this.starting}>
              ${this.starting ? this.t('generations.starting') : this.t('generations.backupNow')}
            </button>`
          : nothing}
        ${this.notice ? html`<span class="note" role="status">${this.notice}</span>` : nothing}
      </div>
      ${this.actionProblem ? this.problemBox(this.actionProblem) : nothing}
      ${this.taskId
        ? html`<div part="task" class="task"><dp-task-progress task-id=${this.taskId} @dp-task-end=${this.taskEnded}></dp-task-progress></div>`
        : nothing}
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
          <th scope="col">${this.t('generations.size')}</th>
          <th scope="col">${this.t('generations.parts')}</th>
          <th scope="col">${this.t('generations.actions')}</th>
        </tr>
      </thead>
      <tbody>
        ${gens.map(
          (g) => html`<tr data-generation=${g.id}>
            <td>${formatDate(this.locale, g.protectionTime)}${g.protected ? this.lock() : nothing}</td>
            <td><span part="status" class="badge ${g.status}">${this.t(`status.${g.status}`)}</span></td>
            <td>
              ${formatBytes(this.locale, g.sizeRead)}
              <div class="note">${this.t('generations.added', { size: formatBytes(this.locale, g.sizeAdded) })}</div>
            </td>
            <td>
              <ul>
                ${g.parts.map(
                  (p) => html`<li>
                    <span part="part-status" class="badge ${p.status}">${p.tag}</span>
                    ${p.server} · ${this.t(`status.${p.status}`)} · ${formatBytes(this.locale, p.sizeRead)}
                    ${p.end ? html` · ${formatDuration(Date.parse(p.end) - Date.parse(p.begin))}` : nothing}
                    ${p.messages.length ? html`<div class="note">${p.messages.join(' — ')}</div>` : nothing}
                  </li>`,
                )}
              </ul>
            </td>
            <td>
              ${this.may('manageDataProtect') ? html`<div class="actions-cell">${this.protectButton(g)}${this.deleteButton(g)}</div>` : nothing}
            </td>
          </tr>`,
        )}
      </tbody>
    </table>`;
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
