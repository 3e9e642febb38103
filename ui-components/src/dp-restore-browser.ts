import { Task as AsyncTask } from '@lit/task';
import { css, html, nothing, type PropertyValues } from 'lit';
import { keyed } from 'lit/directives/keyed.js';
import type { Generation, Restorable, RestoreOperation, RestoreRequest, Schemas, Task } from '../../openapi/client.js';
import { DpElement, problemOf, type ProblemLike } from './base.js';
import type { DpMailboxBrowserEventMap } from './dp-mailbox-browser.js';
import { formatDate, MESSAGES, type MessageKey } from './i18n.js';

type Kind = Restorable['kind'];
type OperationId = RestoreOperation['identifier'];

const KINDS: Kind[] = ['USER', 'MAILSHARE', 'CALENDAR', 'ADDRESSBOOK', 'RESOURCE', 'OU', 'DOMAIN'];
const PAGE = 25;

/** A live user's or mailshare's saved mailbox can be browsed; a deleted user comes back whole. */
function hasMailbox(e: Restorable): boolean {
  return (e.kind === 'USER' || e.kind === 'MAILSHARE') && !e.deleted;
}

export interface DpRestoreBrowserEventMap {
  /** A restore was confirmed and started (detail: its task). */
  'dp-restore-started': CustomEvent<Task>;
}

/**
 * The restore browser: choose a generation (date and status), filter by kind, search entities by name or email
 * (paged on the server; deleted ones flagged), pick one, see the operations that apply with a sentence each,
 * confirm, follow the task (dp-task-progress). For a mailbox, <dp-mailbox-browser> shows its saved folders and
 * messages; a folder or chosen messages it asks for are confirmed and restored here.
 * Fires `dp-restore-started` (detail: the task).
 */
export class DpRestoreBrowser extends DpElement<DpRestoreBrowserEventMap> {
  static override properties = {
    /** The generation shown; the host sets it to open the browser on one (the navigator's "Browse and restore"). */
    generationId: { type: String, attribute: 'generation-id' },
    kind: { state: true },
    search: { state: true },
    offset: { state: true },
    selected: { state: true },
    operation: { state: true },
    confirming: { state: true },
    taskId: { state: true },
    problem: { state: true },
  };

  declare generationId: string | null;
  declare kind: Kind | '';
  declare search: string;
  declare offset: number;
  declare selected: Restorable | null;
  declare operation: OperationId | null;
  declare confirming: RestoreRequest | null;
  declare taskId: string | null;
  declare problem: ProblemLike | null;
  private searchTimer: ReturnType<typeof setTimeout> | null = null;
  /** Counts the picks, so that choosing an entity (even the same one again) opens a fresh mailbox browser. */
  private picks = 0;

  constructor() {
    super();
    this.generationId = null;
    this.kind = '';
    this.search = '';
    this.offset = 0;
    this.selected = null;
    this.operation = null;
    this.confirming = null;
    this.taskId = null;
    this.problem = null;
  }

  private readonly generations = new AsyncTask(this, {
    task: async ([client], { signal }) => {
      if (!client) throw new Error(this.t('common.noClient'));
      const gens = await client.listGenerations(signal);
      if (!this.generationId && gens.length) this.generationId = (gens.find((g) => g.status === 'VALID') ?? gens[0]).id;
      return gens;
    },
    args: () => [this.client] as const,
  });

  private readonly entities = new AsyncTask(this, {
    task: async ([client, generationId, kind, search, offset], { signal }) => {
      if (!client || !generationId) return null;
      return client.listEntities(generationId, { kind: kind || undefined, search: search || undefined, offset, limit: PAGE }, signal);
    },
    args: () => [this.client, this.generationId, this.kind, this.search, this.offset] as const,
  });

  private readonly capabilities = new AsyncTask(this, {
    task: async ([client, generationId], { signal }) => (client && generationId ? client.getRestoreCapabilities(generationId, signal) : ([] as RestoreOperation[])),
    args: () => [this.client, this.generationId] as const,
  });

  static override styles = [
    DpElement.baseStyles,
    DpElement.listStyles,
    css`
      .filters {
        display: flex;
        flex-wrap: wrap;
        gap: var(--_dp-space-3);
        align-items: flex-end;
        margin-bottom: var(--_dp-space-3);
      }
      tr.selected {
        background: var(--_dp-color-selected);
      }
      .badge {
        display: inline-block;
        padding: 1px var(--_dp-space-2);
        border-radius: 10px;
        font-size: 12px;
        font-weight: 600;
        background: var(--_dp-color-divider);
      }
      .badge.deleted {
        background: var(--_dp-color-invalid-background);
        color: var(--_dp-color-invalid-text);
      }
      .panel {
        border: 1px solid var(--_dp-color-border);
        border-radius: var(--_dp-radius-large);
        padding: var(--_dp-space-3);
        margin: var(--_dp-space-3) 0;
      }
      fieldset {
        border: none;
        padding: 0;
        margin: 0 0 var(--_dp-space-3);
      }
      .op {
        display: flex;
        gap: var(--_dp-space-2);
        align-items: flex-start;
        margin: 6px 0;
        font-weight: normal;
        flex-direction: row;
      }
      .op small {
        display: block;
        color: var(--_dp-color-muted);
      }
      dialog {
        border: 1px solid var(--_dp-color-control-border);
        border-radius: var(--_dp-radius-large);
        max-width: 520px;
      }
    `,
  ];

  private fail(err: unknown): void {
    this.problem = problemOf(err) ?? { status: 0, title: this.t('common.error'), detail: (err as Error).message };
  }

  private onSearch(e: Event): void {
    const value = (e.target as HTMLInputElement).value;
    if (this.searchTimer) clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => {
      this.search = value.trim();
      this.offset = 0;
    }, 250);
  }

  private pick(entity: Restorable): void {
    this.selected = entity;
    this.picks++;
    this.operation = null;
    this.problem = null;
  }

  /** The operations that apply to an entity: by kind; a deleted user gets complete.restore.user only (BlueMind). */
  private operationsFor(entity: Restorable, ops: RestoreOperation[]): RestoreOperation[] {
    const fine = new Set<string>(['restore.mail.folder', 'restore.mail.messages']);
    return ops
      .filter((o) => o.kinds.includes(entity.kind) && !fine.has(o.identifier))
      .filter((o) => (entity.deleted && entity.kind === 'USER' ? o.deletedEntitiesOnly : !o.deletedEntitiesOnly))
      .sort((a, b) => this.opLabel(a.identifier).localeCompare(this.opLabel(b.identifier), this.locale));
  }

  private opLabel(id: string): string {
    const key = `op.${id}` as MessageKey;
    return key in MESSAGES.en ? this.t(key) : id;
  }

  private opSentence(id: string): string {
    const key = `op.${id}.help` as MessageKey;
    return key in MESSAGES.en ? this.t(key) : '';
  }

  /** The mailbox browser asks for a folder or messages: confirmed here like any other restore. */
  private onMailRestoreRequest(e: DpMailboxBrowserEventMap['dp-mail-restore-request']): void {
    e.stopPropagation();
    const { operation, folder } = e.detail;
    const messageIds = e.detail.operation === 'restore.mail.messages' ? { messageIds: e.detail.messageIds } : {};
    const r = this.request(operation, { folder, ...messageIds });
    if (r) this.ask(r, e);
  }

  private ask(request: RestoreRequest, e: Event): void {
    this.confirming = request;
    this.openDialog(e);
  }

  private closeDialog(): void {
    this.confirming = null;
    this.closeOpenDialog();
  }

  private request(operation: OperationId, extra: Partial<RestoreRequest> = {}): RestoreRequest | null {
    const e = this.selected;
    if (!e || !this.generationId) return null;
    return { operation, generationId: this.generationId, entity: { kind: e.kind, uid: e.uid, domainUid: e.domainUid }, ...extra };
  }

  private async confirm(): Promise<void> {
    const req = this.confirming;
    this.closeDialog();
    if (!req || !this.client) return;
    this.problem = null;
    try {
      const started = await this.client.startRestore(req);
      this.taskId = started.task.id;
      this.emit('dp-restore-started', started.task);
    } catch (err) {
      this.fail(err);
    }
  }

  override render() {
    return html`<section aria-labelledby="dp-restore-title">
      <h2 part="title" id="dp-restore-title">${this.t('restore.title')}</h2>
      ${this.generations.render({
        pending: () => html`<p class="note" role="status">${this.t('common.loading')}</p>`,
        error: (err) => this.errorBox(err),
        complete: (gens) => (gens.length ? this.browser(gens) : html`<p class="note">${this.t('restore.noGeneration')}</p>`),
      })}
    </section>`;
  }

  /** A generation chosen from outside (the navigator's "Browse and restore") starts a fresh search. */
  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('generationId') && changed.get('generationId')) {
      this.offset = 0;
      this.selected = null;
    }
  }

  private browser(gens: Generation[]) {
    return html`
      <div part="filters" class="filters">
        <label
          >${this.t('restore.generation')}
          <select
            id="generation"
            @change=${(e: Event) => {
              this.generationId = (e.target as HTMLSelectElement).value;
              this.offset = 0;
              this.selected = null;
            }}
          >
            ${gens.map(
              (g) => html`<option value=${g.id} ?selected=${g.id === this.generationId}>
                ${formatDate(this.locale, g.protectionTime)} — ${this.t(`status.${g.status}`)}
              </option>`,
            )}
          </select>
        </label>
        <label
          >${this.t('restore.kind')}
          <select
            id="kind"
            @change=${(e: Event) => {
              this.kind = (e.target as HTMLSelectElement).value as Kind | '';
              this.offset = 0;
            }}
          >
            <option value="">${this.t('restore.kind.all')}</option>
            ${KINDS.map((k) => html`<option value=${k} ?selected=${k === this.kind}>${this.t(`kind.${k}`)}</option>`)}
          </select>
        </label>
        <label
          >${this.t('restore.search')}
          <input id="search" type="search" placeholder=${this.t('restore.search.placeholder')} @input=${this.onSearch} />
        </label>
      </div>
      ${this.problem ? this.problemBox(this.problem) : nothing}
      ${this.taskId ? html`<div part="task" class="panel"><dp-task-progress task-id=${this.taskId}></dp-task-progress></div>` : nothing}
      ${this.entities.render({
        pending: () => html`<p class="note" role="status">${this.t('common.loading')}</p>`,
        error: (err) => this.errorBox(err),
        complete: (page) => (page ? this.table(page) : nothing),
      })}
      ${this.selected ? this.entityPanel(this.selected) : nothing} ${this.confirming ? this.dialog(this.confirming) : nothing}
    `;
  }

  private table(page: Schemas['RestorablePage']) {
    if (page.total === 0) return html`<p class="note">${this.t('restore.noEntity')}</p>`;
    const last = Math.min(page.offset + page.items.length, page.total);
    return html`<table part="entities" aria-describedby="dp-restore-title">
        <thead>
          <tr>
            <th scope="col">${this.t('restore.col.kind')}</th>
            <th scope="col">${this.t('restore.col.entity')}</th>
            <th scope="col">${this.t('restore.col.domain')}</th>
            <th scope="col">${this.t('restore.col.action')}</th>
          </tr>
        </thead>
        <tbody>
          ${page.items.map(
            (e) => html`<tr data-entity=${e.uid} class=${this.selected?.uid === e.uid ? 'selected' : ''}>
              <td>${this.t(`kind.${e.kind}`)}</td>
              <td>
                ${e.displayName} ${e.email ? html`<div class="note">${e.email}</div>` : nothing}
                ${e.deleted ? html`<span class="badge deleted">${this.t('restore.deleted')}</span>` : nothing}
              </td>
              <td>${e.domainUid}</td>
              <td>
                <button class="secondary" aria-label=${this.t('restore.chooseLabel', { name: e.displayName })} @click=${() => this.pick(e)}>
                  ${this.t('restore.choose')}
                </button>
              </td>
            </tr>`,
          )}
        </tbody>
      </table>
      <div part="pager" class="pager">
        <button class="secondary" ?disabled=${page.offset === 0} @click=${() => (this.offset = Math.max(0, this.offset - PAGE))}>
          ${this.t('restore.previous')}
        </button>
        <span class="note">${this.t('restore.range', { first: page.offset + 1, last, total: page.total })}</span>
        <button class="secondary" ?disabled=${last >= page.total} @click=${() => (this.offset += PAGE)}>${this.t('restore.next')}</button>
      </div>`;
  }

  private entityPanel(e: Restorable) {
    return html`<div part="entity-panel" class="panel" id="entity-panel">
      <h3>${e.displayName} ${e.deleted ? html`<span class="badge deleted">${this.t('restore.deleted')}</span>` : nothing}</h3>
      ${this.capabilities.render({
        pending: () => html`<p class="note">${this.t('common.loading')}</p>`,
        error: (err) => this.errorBox(err),
        complete: (ops) => this.operations(e, ops),
      })}
      ${hasMailbox(e)
        ? keyed(
            this.picks,
            html`<dp-mailbox-browser
              part="mailbox"
              exportparts="title: mailbox-title, folders: mailbox-folders, folder: mailbox-folder, actions: mailbox-actions, messages: mailbox-messages, pager: mailbox-pager, alert: mailbox-alert"
              .generationId=${this.generationId}
              .mailboxUid=${e.uid}
              @dp-mail-restore-request=${this.onMailRestoreRequest}
            ></dp-mailbox-browser>`,
          )
        : nothing}
    </div>`;
  }

  private operations(e: Restorable, ops: RestoreOperation[]) {
    const list = this.operationsFor(e, ops);
    if (list.length === 0) return html`<p class="note">${this.t('restore.noOperation')}</p>`;
    return html`<fieldset part="operations">
        <legend>${this.t('restore.operations')}</legend>
        ${list.map(
          (o) => html`<label class="op">
            <input type="radio" name="operation" value=${o.identifier} .checked=${this.operation === o.identifier}
              @change=${() => (this.operation = o.identifier)} />
            <span>${this.opLabel(o.identifier)}<small>${this.opSentence(o.identifier)}</small></span>
          </label>`,
        )}
      </fieldset>
      <button part="restore-button" id="restore" ?disabled=${!this.operation} @click=${(ev: Event) => {
        const r = this.operation ? this.request(this.operation) : null;
        if (r) this.ask(r, ev);
      }}>${this.t('restore.restore')}</button>`;
  }

  private dialog(r: RestoreRequest) {
    const what = r.folder ? `${this.opLabel(r.operation)} — ${r.folder}` : this.opLabel(r.operation);
    return html`<dialog part="dialog" aria-labelledby="restore-confirm-title" @cancel=${(e: Event) => (e.preventDefault(), this.closeDialog())}>
      <h2 id="restore-confirm-title">${this.t('restore.confirmTitle')}</h2>
      <p>${this.t('restore.confirmText', { operation: what, name: this.selected?.displayName ?? r.entity.uid })}</p>
      <div class="actions">
        <button class="secondary" @click=${this.closeDialog}>${this.t('common.cancel')}</button>
        <button id="confirm-restore" @click=${this.confirm}>${this.t('restore.restore')}</button>
      </div>
    </dialog>`;
  }
}
