import { Task as AsyncTask } from '@lit/task';
import { css, html, nothing, type PropertyValues } from 'lit';
import { keyed } from 'lit/directives/keyed.js';
import type { Generation, Restorable, RestoreOperation, RestoreRequest, Schemas, Task } from '../../openapi/client.js';
import { DpElement, problemOf, type ProblemLike } from './base.js';
import type { DpContainerBrowserEventMap } from './dp-container-browser.js';
import type { DpMailboxBrowserEventMap } from './dp-mailbox-browser.js';
import { formatDate, MESSAGES, translatePlural, type MessageKey } from './i18n.js';

type Kind = Restorable['kind'];
type OperationId = RestoreOperation['identifier'];

const KINDS: Kind[] = ['USER', 'MAILSHARE', 'CALENDAR', 'ADDRESSBOOK', 'RESOURCE', 'OU', 'DOMAIN'];
const PAGE = 25;

/** A live user's or mailshare's saved mailbox can be browsed; a deleted user comes back whole. */
/** A YYYY-MM-DD day in the console's language (the day itself, whatever the browser's time zone). */
function formatDay(locale: string, day: string): string {
  return new Date(`${day}T12:00:00Z`).toLocaleDateString(locale, { timeZone: 'UTC', year: 'numeric', month: 'long', day: 'numeric' });
}

function hasMailbox(e: Restorable): boolean {
  return (e.kind === 'USER' || e.kind === 'MAILSHARE') && !e.deleted;
}

/** Whose saved calendars, address books and task lists can be browsed one by one, item by item. */
function hasContainers(e: Restorable): boolean {
  return (e.kind === 'USER' && !e.deleted) || e.kind === 'CALENDAR' || e.kind === 'ADDRESSBOOK' || e.kind === 'RESOURCE';
}

/** The operations asked for from a browser of the entity's content (a folder, messages, a container, items). */
const CHOSEN_CONTENT = new Set<string>([
  'restore.mail.folder', 'restore.mail.messages', 'replace.container', 'addmissing.container', 'replace.items', 'addmissing.items',
]);

export interface DpRestoreBrowserEventMap {
  /** A restore was confirmed and started (detail: its task). */
  'dp-restore-started': CustomEvent<Task>;
}

/**
 * The restore browser: choose a generation (date and status), filter by kind, search entities by name or email
 * (paged on the server; deleted ones flagged), pick one, see the operations that apply with a sentence each,
 * confirm, follow the task (dp-task-progress). For a mailbox, <dp-mailbox-browser> shows its saved folders and
 * messages; a folder or chosen messages it asks for are confirmed and restored here. For an entity with calendars,
 * address books or task lists, <dp-container-browser> shows them and their items; one container or chosen items
 * it asks for are confirmed and restored here too.
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
    target: { state: true },
    targetSearch: { state: true },
    periodFrom: { state: true },
    periodTo: { state: true },
    mailAsOf: { state: true },
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
  /** restore.into.account: the live user that receives the data. */
  declare target: Restorable | null;
  declare targetSearch: string;
  /** undelete.mail: the period (YYYY-MM-DD). */
  declare periodFrom: string;
  declare periodTo: string;
  /** "Mail as of": a local date-time (datetime-local's YYYY-MM-DDTHH:MM), or '' when a generation is chosen from the list. */
  declare mailAsOf: string;
  /** How the folder of the restore being confirmed is named to a person. */
  private confirmingFolderLabel: string | null = null;
  private searchTimer: ReturnType<typeof setTimeout> | null = null;
  /** Counts the picks, so that choosing an entity (even the same one again) opens fresh content browsers. */
  private picks = 0;
  /** The container a confirmation is about (its name), when the request names one. */
  private confirmingContainer: string | null = null;

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
    this.target = null;
    this.targetSearch = '';
    const today = new Date();
    this.periodTo = today.toISOString().slice(0, 10);
    this.periodFrom = new Date(today.getTime() - 7 * 86_400_000).toISOString().slice(0, 10);
    this.mailAsOf = '';
  }

  private readonly generations = new AsyncTask(this, {
    task: async ([client], { signal }) => {
      if (!client) throw new Error(this.t('common.noClient'));
      const gens = await client.listGenerations(signal);
      // A full generation by default: every operation applies to it (a recovery point restores mail only).
      if (!this.generationId && gens.length) this.generationId = (gens.find((g) => g.status === 'VALID' && g.trigger !== 'recovery-point') ?? gens[0]).id;
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

  /**
   * Accounts that can receive a user's data: the live users of the newest generation, in the entity's domain
   * (the server checks again that the account exists and is within the caller's scope).
   */
  private readonly targets = new AsyncTask(this, {
    task: async ([client, newest, needed, search, domainUid], { signal }) => {
      if (!client || !newest || !needed || !domainUid) return null;
      const page = await client.listEntities(newest, { kind: 'USER', deleted: false, search: search || undefined, limit: 50, offset: 0 }, signal);
      return page.items.filter((u) => u.domainUid === domainUid && u.uid !== this.selected?.uid);
    },
    args: () => [this.client, this.generations.value?.[0]?.id ?? null, this.operationSpec()?.needsTarget ?? false, this.targetSearch, this.selected?.domainUid ?? null] as const,
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
    this.target = null;
  }

  /** The chosen operation as the capabilities describe it (what else it takes). */
  private operationSpec(): RestoreOperation | null {
    return (this.operation && this.capabilities.value?.find((o) => o.identifier === this.operation)) || null;
  }

  /** Whatever the chosen operation takes besides the entity is there. */
  private operationReady(): boolean {
    const op = this.operationSpec();
    if (!op) return false;
    if (op.needsTarget && !this.target) return false;
    if (op.needsPeriod && (!this.periodFrom || !this.periodTo || this.periodFrom > this.periodTo)) return false;
    return true;
  }

  /** What the chosen operation takes besides the entity, as the request carries it. */
  private operationExtra(): Partial<RestoreRequest> {
    const op = this.operationSpec();
    return {
      ...(op?.needsTarget && this.target ? { targetUid: this.target.uid } : {}),
      ...(op?.needsPeriod ? { from: this.periodFrom, to: this.periodTo } : {}),
    };
  }

  /** The operations that apply to an entity: by kind; a deleted user gets complete.restore.user (BlueMind) or restore.into.account. */
  private operationsFor(entity: Restorable, ops: RestoreOperation[]): RestoreOperation[] {
    return ops
      .filter((o) => o.kinds.includes(entity.kind) && !CHOSEN_CONTENT.has(o.identifier))
      // A departed user's data also goes into a successor's account.
      .filter((o) => (entity.deleted && entity.kind === 'USER' ? o.deletedEntitiesOnly || o.needsTarget : !o.deletedEntitiesOnly))
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
    if (r) this.ask(r, e, e.detail.folderLabel);
  }

  /** The container browser asks for one container or chosen items: confirmed here like any other restore. */
  private onContainerRestoreRequest(e: DpContainerBrowserEventMap['dp-container-restore-request']): void {
    e.stopPropagation();
    const d = e.detail;
    const itemUids = d.operation === 'replace.items' || d.operation === 'addmissing.items' ? { itemUids: d.itemUids } : {};
    const r = this.request(d.operation, { container: d.container, ...itemUids });
    if (!r) return;
    this.confirmingContainer = d.containerName;
    this.ask(r, e);
  }

  private ask(request: RestoreRequest, e: Event, folderLabel?: string): void {
    this.confirmingFolderLabel = folderLabel ?? null;
    this.confirming = request;
    this.openDialog(e);
  }

  private closeDialog(): void {
    this.confirming = null;
    this.confirmingContainer = null;
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

  /**
   * "Mail as of": the newest generation or mail recovery point taken at or before the chosen time (a local
   * date-time), so that mail comes back as it was then; an INVALID one is passed over.
   */
  private pickAsOf(gens: Generation[], value: string): void {
    this.mailAsOf = value;
    const at = value ? new Date(value).getTime() : NaN;
    if (Number.isNaN(at)) return;
    const chosen = gens
      .filter((g) => g.status !== 'INVALID' && Date.parse(g.protectionTime) <= at)
      .sort((a, b) => Date.parse(b.protectionTime) - Date.parse(a.protectionTime))[0];
    if (!chosen || chosen.id === this.generationId) return;
    this.generationId = chosen.id;
    this.offset = 0;
    this.selected = null;
  }

  /** The generation shown is a mail recovery point: it holds mail only, so no calendars or contacts are browsed. */
  private onRecoveryPoint(): boolean {
    return this.generations.value?.find((g) => g.id === this.generationId)?.trigger === 'recovery-point';
  }

  /** What "Mail as of" found, under the picker. */
  private asOfNote(gens: Generation[]) {
    if (!this.mailAsOf) return nothing;
    const at = new Date(this.mailAsOf).getTime();
    const g = gens.find((x) => x.id === this.generationId);
    if (Number.isNaN(at) || !g || Date.parse(g.protectionTime) > at) {
      return html`<span class="note" id="mail-as-of-note" role="status" data-as-of="none">${this.t('restore.asOf.none')}</span>`;
    }
    const key = g.trigger === 'recovery-point' ? 'restore.asOf.recoveryPoint' : 'restore.asOf.generation';
    return html`<span class="note" id="mail-as-of-note" role="status" data-as-of=${g.id}>${this.t(key, { when: formatDate(this.locale, g.protectionTime) })}</span>`;
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
              this.mailAsOf = '';
              this.offset = 0;
              this.selected = null;
            }}
          >
            ${gens.map(
              (g) => html`<option value=${g.id} ?selected=${g.id === this.generationId} data-trigger=${g.trigger}>
                ${formatDate(this.locale, g.protectionTime)} — ${this.t(`status.${g.status}`)}${g.trigger === 'recovery-point' ? ` — ${this.t('restore.recoveryPoint')}` : ''}
              </option>`,
            )}
          </select>
        </label>
        <label
          >${this.t('restore.asOf')}
          <input
            id="mail-as-of"
            type="datetime-local"
            .value=${this.mailAsOf}
            aria-describedby="mail-as-of-note"
            @change=${(e: Event) => this.pickAsOf(gens, (e.target as HTMLInputElement).value)}
          />
          ${this.asOfNote(gens)}
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
              exportparts="title: mailbox-title, folders: mailbox-folders, folder: mailbox-folder, archive-title: mailbox-archive-title, archive-help: mailbox-archive-help, actions: mailbox-actions, messages: mailbox-messages, pager: mailbox-pager, alert: mailbox-alert"
              .generationId=${this.generationId}
              .mailboxUid=${e.uid}
              @dp-mail-restore-request=${this.onMailRestoreRequest}
            ></dp-mailbox-browser>`,
          )
        : nothing}
      ${hasContainers(e) && !this.onRecoveryPoint()
        ? keyed(
            this.picks,
            html`<dp-container-browser
              part="containers"
              exportparts="title: containers-title, containers: containers-list, container: containers-container, actions: containers-actions, items: containers-items, pager: containers-pager, alert: containers-alert"
              .generationId=${this.generationId}
              .entityUid=${e.uid}
              @dp-container-restore-request=${this.onContainerRestoreRequest}
            ></dp-container-browser>`,
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
      ${this.operationSpec()?.needsTarget ? this.targetPicker() : nothing}
      ${this.operationSpec()?.needsPeriod ? this.periodPicker() : nothing}
      <button part="restore-button" id="restore" ?disabled=${!this.operationReady()} @click=${(ev: Event) => {
        const r = this.operation ? this.request(this.operation, this.operationExtra()) : null;
        if (r) this.ask(r, ev);
      }}>${this.t('restore.restore')}</button>`;
  }

  private targetPicker() {
    return html`<fieldset part="target">
      <legend>${this.t('restore.into.target')}</legend>
      <div class="filters">
        <label>
          ${this.t('restore.search')}
          <input id="target-search" type="search" placeholder=${this.t('restore.into.search')} @change=${(e: Event) => {
            this.targetSearch = (e.target as HTMLInputElement).value.trim();
            this.target = null;
          }} />
        </label>
        ${this.targets.render({
          pending: () => html`<p class="note" role="status">${this.t('common.loading')}</p>`,
          error: (err) => this.errorBox(err),
          complete: (users) =>
            users?.length
              ? html`<label>
                  ${this.t('restore.into.account')}
                  <select id="target" @change=${(e: Event) => (this.target = users.find((u) => u.uid === (e.target as HTMLSelectElement).value) ?? null)}>
                    <option value="" ?selected=${!this.target}>${this.t('restore.into.pick')}</option>
                    ${users.map((u) => html`<option value=${u.uid} ?selected=${this.target?.uid === u.uid}>${u.displayName}${u.email ? ` <${u.email}>` : ''}</option>`)}
                  </select>
                </label>`
              : html`<p class="note">${this.t('restore.into.none')}</p>`,
        })}
      </div>
    </fieldset>`;
  }

  private periodPicker() {
    return html`<fieldset part="period">
      <legend>${this.t('restore.period')}</legend>
      <div class="filters">
        <label>
          ${this.t('restore.period.from')}
          <input id="period-from" type="date" .value=${this.periodFrom} max=${this.periodTo} @change=${(e: Event) => (this.periodFrom = (e.target as HTMLInputElement).value)} />
        </label>
        <label>
          ${this.t('restore.period.to')}
          <input id="period-to" type="date" .value=${this.periodTo} min=${this.periodFrom} @change=${(e: Event) => (this.periodTo = (e.target as HTMLInputElement).value)} />
        </label>
      </div>
    </fieldset>`;
  }

  private dialog(r: RestoreRequest) {
    const container = this.confirmingContainer ?? r.container;
    const what = r.folder
      ? `${this.opLabel(r.operation)} — ${this.confirmingFolderLabel ?? r.folder}`
      : container && r.itemUids
        ? translatePlural(this.locale, 'restore.items.confirm', r.itemUids.length, { operation: this.opLabel(r.operation), container })
        : container
          ? `${this.opLabel(r.operation)} — ${container}`
          : this.opLabel(r.operation);
    const name = this.selected?.displayName ?? r.entity.uid;
    const text = r.targetUid
      ? this.t('restore.confirmInto', { operation: what, name, target: this.target?.displayName ?? r.targetUid })
      : r.from && r.to
        ? this.t('restore.confirmPeriod', { operation: what, name, from: formatDay(this.locale, r.from), to: formatDay(this.locale, r.to) })
        : this.t('restore.confirmText', { operation: what, name });
    return html`<dialog part="dialog" aria-labelledby="restore-confirm-title" @cancel=${(e: Event) => (e.preventDefault(), this.closeDialog())}>
      <h2 id="restore-confirm-title">${this.t('restore.confirmTitle')}</h2>
      <p>${text}</p>
      <div class="actions">
        <button class="secondary" @click=${this.closeDialog}>${this.t('common.cancel')}</button>
        <button id="confirm-restore" @click=${this.confirm}>${this.t('restore.restore')}</button>
      </div>
    </dialog>`;
  }
}
