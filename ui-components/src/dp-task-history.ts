import { Task as AsyncTask } from '@lit/task';
import { css, html, nothing } from 'lit';
import type { Schemas, Task } from '../../openapi/client.js';
import { DpElement } from './base.js';
import { taskTitleText } from './dp-task-progress.js';
import { formatDate, translatePlural } from './i18n.js';

type TaskKind = Schemas['TaskKind'];
type TaskStatus = Schemas['TaskStatus'];

const KINDS: TaskKind[] = ['backup', 'restore', 'forget', 'sync', 'retention', 'global-restore', 'check', 'content', 'rehearsal', 'copy', 'recovery-point'];
const STATUSES: TaskStatus[] = ['RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'INTERRUPTED'];
const PAGE = 50;
/** Dates carry their zone: this browser's, named (a restore-only administrator cannot read the server's settings). */
const LOCAL_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

export type DpTaskHistoryEventMap = Record<never, never>;

/**
 * Backup and Restore > Protected data > Task history: every task (a caller without manageDataProtect sees their
 * own), newest first, filtered by kind and status; choosing one shows its progress, result and log below the list
 * (dp-task-progress), so that a task's outcome can be read again after the page it was started from is gone.
 */
export class DpTaskHistory extends DpElement<DpTaskHistoryEventMap> {
  static override properties = {
    kind: { state: true },
    status: { state: true },
    offset: { state: true },
    shown: { state: true },
  };

  declare kind: TaskKind | '';
  declare status: TaskStatus | '';
  declare offset: number;
  declare shown: string | null;

  private readonly page = new AsyncTask(this, {
    task: async ([client, kind, status, offset], { signal }) => {
      if (!client) throw new Error(this.t('common.noClient'));
      return client.listTasks({ ...(kind ? { kind } : {}), ...(status ? { status } : {}), offset, limit: PAGE }, signal);
    },
    args: () => [this.client, this.kind, this.status, this.offset] as const,
  });

  constructor() {
    super();
    this.kind = '';
    this.status = '';
    this.offset = 0;
    this.shown = null;
  }

  static override styles = [
    DpElement.baseStyles,
    css`
      .filters {
        display: flex;
        gap: var(--_dp-space-3);
        flex-wrap: wrap;
        align-items: end;
        margin-bottom: var(--_dp-space-3);
      }
      .filters label {
        display: grid;
        gap: var(--_dp-space-1);
        font-weight: 600;
      }
      select {
        font: inherit;
        padding: 4px var(--_dp-space-2);
      }
      .status-FAILED,
      .status-INTERRUPTED {
        color: var(--_dp-color-danger);
      }
      .status-SUCCEEDED {
        color: var(--_dp-color-success);
      }
      tr[aria-current='true'] {
        background: var(--_dp-color-surface-muted);
      }
      .panel {
        margin-top: var(--_dp-space-3);
      }
      .announce {
        position: absolute;
        width: 1px;
        height: 1px;
        overflow: hidden;
        clip: rect(0 0 0 0);
        white-space: nowrap;
      }
    `,
  ];

  override render() {
    return html`<section aria-labelledby="dp-tasks-title">
      <h2 part="title" id="dp-tasks-title">${this.t('tasks.title')}</h2>
      <div part="filters" class="filters">
        <label
          >${this.t('tasks.kind')}
          <select
            id="task-kind"
            @change=${(e: Event) => {
              this.kind = (e.target as HTMLSelectElement).value as TaskKind | '';
              this.offset = 0;
            }}
          >
            <option value="">${this.t('tasks.kind.all')}</option>
            ${KINDS.map((k) => html`<option value=${k} ?selected=${k === this.kind}>${this.t(`taskKind.${k}`)}</option>`)}
          </select>
        </label>
        <label
          >${this.t('tasks.status')}
          <select
            id="task-status"
            @change=${(e: Event) => {
              this.status = (e.target as HTMLSelectElement).value as TaskStatus | '';
              this.offset = 0;
            }}
          >
            <option value="">${this.t('tasks.status.all')}</option>
            ${STATUSES.map((s) => html`<option value=${s} ?selected=${s === this.status}>${this.t(`task.status.${s}`)}</option>`)}
          </select>
        </label>
      </div>
      ${this.page.render({
        pending: () => html`<p class="note" role="status">${this.t('common.loading')}</p>`,
        error: (err) => this.errorBox(err),
        complete: (page) => this.table(page),
      })}
      ${this.shown ? html`<div part="task" class="panel"><dp-task-progress task-id=${this.shown}></dp-task-progress></div>` : nothing}
    </section>`;
  }

  private table(page: Schemas['TaskPage']) {
    if (page.total === 0) return html`<p class="note">${this.t('tasks.empty')}</p>`;
    const last = page.offset + page.items.length;
    return html`<p class="note" role="status">${translatePlural(this.locale, 'tasks.count', page.total)}</p>
      <table part="table">
        <thead>
          <tr>
            <th scope="col">${this.t('tasks.col.title')}</th>
            <th scope="col">${this.t('tasks.kind')}</th>
            <th scope="col">${this.t('tasks.col.status')}</th>
            <th scope="col">${this.t('tasks.col.started')}</th>
            <th scope="col">${this.t('tasks.col.by')}</th>
            <th scope="col"><span class="announce">${this.t('tasks.show')}</span></th>
          </tr>
        </thead>
        <tbody>
          ${page.items.map((t) => this.row(t))}
        </tbody>
      </table>
      ${page.total > PAGE
        ? html`<div class="filters">
            <button class="secondary" ?disabled=${page.offset === 0} @click=${() => (this.offset = Math.max(0, page.offset - PAGE))}>
              ${this.t('restore.previous')}
            </button>
            <span class="note">${this.t('restore.range', { first: page.offset + 1, last, total: page.total })}</span>
            <button class="secondary" ?disabled=${last >= page.total} @click=${() => (this.offset = page.offset + PAGE)}>${this.t('restore.next')}</button>
          </div>`
        : nothing}`;
  }

  private row(t: Task) {
    const title = taskTitleText(this.locale, t);
    return html`<tr data-task=${t.id} data-status=${t.status} aria-current=${this.shown === t.id ? 'true' : 'false'}>
      <td>${title}</td>
      <td>${this.t(`taskKind.${t.kind}`)}</td>
      <td class="status-${t.status}">${this.t(`task.status.${t.status}`)}</td>
      <td>${formatDate(this.locale, t.createdAt, LOCAL_ZONE)}</td>
      <td>${t.actor}</td>
      <td>
        <button class="secondary" aria-label=${this.t('tasks.showLabel', { title })} @click=${() => (this.shown = t.id)}>${this.t('tasks.show')}</button>
      </td>
    </tr>`;
  }
}
