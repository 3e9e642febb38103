import { css, html, nothing } from 'lit';
import type { Generation, GlobalRestoreOptions, Schemas, Task } from '../../openapi/client.js';
import { DpElement, problemOf, type ProblemLike } from './base.js';
import { formatBytes, formatDate, type MessageKey } from './i18n.js';

type Report = Schemas['PrerequisiteReport'];
type ServerRef = Schemas['ServerRef'];
type Step = 'location' | 'generation' | 'checks' | 'progress' | 'result';

const STEPS: readonly Step[] = ['location', 'generation', 'checks', 'progress', 'result'];

/** What a finished global restore task answers (its `result`). */
interface RestoreResult {
  generation: string;
  resumed: boolean;
  /** Run again after it had finished: nothing was changed. */
  alreadyRestored?: boolean;
  parts: { key: string; target: string; state: 'restored' | 'already restored'; detail: string }[];
}

export interface DpGlobalRestoreEventMap {
  /** The global restore started (detail: its task). */
  'dp-global-restore-started': CustomEvent<Task>;
  /** The global restore ended, whatever its status (detail: the final task). */
  'dp-global-restore-end': CustomEvent<Task>;
}

/**
 * The setup wizard's global restore step: a repository location, its generations, the prerequisites checked one
 * by one (servers to map, the wipe of a non-blank installation), a confirmation, the restore followed part by
 * part, and what to do once the installation is back.
 */
export class DpGlobalRestore extends DpElement<DpGlobalRestoreEventMap> {
  static override properties = {
    step: { state: true },
    location: { state: true },
    generations: { state: true },
    chosen: { state: true },
    report: { state: true },
    wipe: { state: true },
    serverMap: { state: true },
    confirming: { state: true },
    taskId: { state: true },
    ended: { state: true },
    problem: { state: true },
    busy: { state: true },
  };

  declare step: Step;
  declare location: string;
  declare generations: Generation[] | null;
  declare chosen: string | null;
  declare report: Report | null;
  declare wipe: boolean;
  /** Generation server (address, or uid when none was recorded) → server of this installation (uid). */
  declare serverMap: Record<string, string>;
  declare confirming: boolean;
  declare taskId: string | null;
  declare ended: Task | null;
  declare problem: ProblemLike | null;
  declare busy: boolean;

  constructor() {
    super();
    this.step = 'location';
    this.location = '';
    this.generations = null;
    this.chosen = null;
    this.report = null;
    this.wipe = false;
    this.serverMap = {};
    this.confirming = false;
    this.taskId = null;
    this.ended = null;
    this.problem = null;
    this.busy = false;
  }

  static override styles = [
    DpElement.baseStyles,
    DpElement.listStyles,
    css`
      form,
      fieldset {
        display: grid;
        gap: var(--_dp-space-2);
        max-width: 640px;
      }
      fieldset {
        border: 1px solid var(--_dp-color-border);
        border-radius: var(--_dp-radius-large);
        padding: 10px 14px;
        margin: var(--_dp-space-3) 0;
      }
      label {
        font-weight: 600;
      }
      input[type='text'],
      select {
        font: inherit;
        padding: 6px var(--_dp-space-2);
        border: 1px solid var(--_dp-color-control-border);
        border-radius: var(--_dp-radius);
      }
      input[type='text'] {
        width: 100%;
      }
      ol.steps {
        display: flex;
        flex-wrap: wrap;
        gap: var(--_dp-space-2);
        list-style: none;
        padding: 0;
        margin: 0 0 var(--_dp-space-3);
        counter-reset: step;
      }
      ol.steps li {
        counter-increment: step;
        color: var(--_dp-color-muted);
        padding: 2px var(--_dp-space-2);
        border-bottom: 3px solid var(--_dp-color-divider);
      }
      ol.steps li::before {
        content: counter(step) '. ';
      }
      ol.steps li[aria-current='step'] {
        color: var(--_dp-color-text);
        font-weight: 600;
        border-bottom-color: var(--_dp-color-primary);
      }
      ul.plain {
        list-style: none;
        padding: 0;
        margin: 0;
      }
      ul.checks li {
        padding: 6px 0;
        border-bottom: 1px solid var(--_dp-color-divider);
      }
      .advice {
        color: var(--_dp-color-muted);
        font-size: 13px;
        margin-top: 2px;
      }
      .badge {
        display: inline-block;
        padding: 1px var(--_dp-space-2);
        border-radius: 10px;
        font-size: 12px;
        font-weight: 600;
        margin-right: var(--_dp-space-1);
      }
      .VALID,
      .met {
        background: var(--_dp-color-valid-background);
        color: var(--_dp-color-valid-text);
      }
      .UNKNOWN,
      .warning {
        background: var(--_dp-color-unknown-background);
        color: var(--_dp-color-warning);
      }
      .INVALID,
      .not-met {
        background: var(--_dp-color-invalid-background);
        color: var(--_dp-color-invalid-text);
      }
      .actions {
        display: flex;
        gap: var(--_dp-space-2);
        flex-wrap: wrap;
        margin: var(--_dp-space-3) 0;
      }
      .ready {
        color: var(--_dp-color-success);
      }
      .unready {
        color: var(--_dp-color-danger);
      }
      dialog {
        border: 1px solid var(--_dp-color-control-border);
        border-radius: var(--_dp-radius-large);
        max-width: 520px;
      }
      dialog .actions {
        justify-content: flex-end;
      }
      ul.content {
        margin: var(--_dp-space-1) 0 0;
        padding-left: 20px;
        overflow-wrap: anywhere;
      }
      .wipe {
        display: flex;
        gap: var(--_dp-space-2);
        align-items: flex-start;
      }
    `,
  ];

  private async run<T>(work: () => Promise<T>): Promise<T | undefined> {
    this.problem = null;
    this.busy = true;
    try {
      return await work();
    } catch (err) {
      this.problem = problemOf(err) ?? { status: 0, title: this.t('common.error'), detail: (err as Error).message };
      return undefined;
    } finally {
      this.busy = false;
    }
  }

  private get chosenGeneration(): Generation | undefined {
    return this.generations?.find((g) => g.id === this.chosen);
  }

  private options(): GlobalRestoreOptions {
    const serverMap = Object.entries(this.serverMap).map(([from, to]) => ({ from, to }));
    return { wipe: this.wipe, ...(serverMap.length ? { serverMap } : {}) };
  }

  private async discover(e: Event): Promise<void> {
    e.preventDefault();
    if (!this.client) return;
    const client = this.client;
    const found = await this.run(() => client.discoverRepository(this.location.trim()));
    if (!found) return;
    this.generations = found;
    this.chosen = found.find((g) => g.status === 'VALID')?.id ?? found[0]?.id ?? null;
    this.report = null;
    this.serverMap = {};
    this.wipe = false;
    this.step = 'generation';
  }

  private async check(): Promise<void> {
    if (!this.client || !this.chosen) return;
    const client = this.client;
    const chosen = this.chosen;
    const report = await this.run(() => client.checkGlobalRestore(this.location.trim(), chosen, this.options()));
    if (!report) return;
    this.report = report;
    this.step = 'checks';
  }

  private setWipe(on: boolean): void {
    this.wipe = on;
    void this.check();
  }

  private mapServer(from: string, to: string): void {
    const next = { ...this.serverMap };
    if (to) next[from] = to;
    else delete next[from];
    this.serverMap = next;
    void this.check();
  }

  private askStart(e: Event): void {
    this.confirming = true;
    this.openDialog(e);
  }

  private closeDialog(): void {
    this.confirming = false;
    this.closeOpenDialog();
  }

  private async start(resume = false): Promise<void> {
    this.closeDialog();
    if (!this.client || !this.chosen) return;
    const client = this.client;
    const chosen = this.chosen;
    // Resuming never wipes: that would throw away the parts already restored.
    const options = resume ? { ...this.options(), wipe: false } : this.options();
    const started = await this.run(() => client.startGlobalRestore(this.location.trim(), chosen, options));
    if (!started) return;
    this.ended = null;
    this.taskId = started.task.id;
    this.step = 'progress';
    this.emit('dp-global-restore-started', started.task);
  }

  private taskEnded(e: CustomEvent<Task>): void {
    this.ended = e.detail;
    this.step = 'result';
    this.emit('dp-global-restore-end', e.detail);
  }

  override render() {
    const p = this.problem;
    return html`<section aria-labelledby="dp-drp-title">
      <h2 part="title" id="dp-drp-title">${this.t('drp.title')}</h2>
      <p class="note">${this.t('drp.intro')}</p>
      <ol part="steps" class="steps" aria-label=${this.t('drp.steps')}>
        ${STEPS.map((s) => html`<li aria-current=${s === this.step ? 'step' : 'false'}>${this.t(`drp.step.${s}` as MessageKey)}</li>`)}
      </ol>
      ${p ? this.problemBox(p) : nothing}
      ${this.step === 'location' ? this.locationForm() : nothing}
      ${this.step === 'generation' ? this.generationChoice(this.generations ?? []) : nothing}
      ${this.step === 'checks' && this.report ? this.prerequisites(this.report) : nothing}
      ${this.step === 'progress' || this.step === 'result' ? this.restoring() : nothing}
      ${this.confirming ? this.dialog() : nothing}
    </section>`;
  }

  private locationForm() {
    return html`<form part="form" @submit=${this.discover}>
      <label for="location">${this.t('drp.location')}</label>
      <input
        part="input"
        id="location"
        type="text"
        .value=${this.location}
        aria-describedby="location-help"
        @input=${(e: Event) => (this.location = (e.target as HTMLInputElement).value)}
      />
      <span class="note" id="location-help">${this.t('drp.location.help')}</span>
      <div><button type="submit" ?disabled=${this.busy || !this.location.trim()}>${this.t('drp.discover')}</button></div>
    </form>`;
  }

  private back(to: Step) {
    return html`<button class="secondary" @click=${() => ((this.problem = null), (this.step = to))} ?disabled=${this.busy}>${this.t('drp.back')}</button>`;
  }

  private generationChoice(gens: Generation[]) {
    if (gens.length === 0) return html`<p class="note">${this.t('drp.noGenerations')}</p><div class="actions">${this.back('location')}</div>`;
    return html`<table part="generations">
        <caption class="note">${this.t('drp.generation')}: ${this.location.trim()}</caption>
        <thead>
          <tr>
            <th scope="col"></th>
            <th scope="col">${this.t('drp.col.date')}</th>
            <th scope="col">${this.t('drp.col.status')}</th>
            <th scope="col">${this.t('drp.col.version')}</th>
            <th scope="col">${this.t('drp.col.parts')}</th>
            <th scope="col">${this.t('drp.col.size')}</th>
          </tr>
        </thead>
        <tbody>
          ${gens.map((g) => {
            const date = formatDate(this.locale, g.protectionTime);
            return html`<tr data-generation=${g.id}>
              <td>
                <input
                  type="radio"
                  name="generation"
                  aria-label=${this.t('drp.generationLabel', { date })}
                  .checked=${g.id === this.chosen}
                  @change=${() => ((this.chosen = g.id), (this.report = null))}
                />
              </td>
              <td>${date}</td>
              <td><span part="status" class="badge ${g.status}">${this.t(`status.${g.status}`)}</span></td>
              <td>${g.productVersion}<div class="note">${this.t('drp.format', { version: g.formatVersion })}</div></td>
              <td>
                <ul class="plain">
                  ${g.parts.map(
                    (p) => html`<li><span class="badge ${p.status}">${p.tag}</span>${p.server} · ${formatBytes(this.locale, p.sizeRead)}</li>`,
                  )}
                </ul>
              </td>
              <td>${formatBytes(this.locale, g.sizeRead)}</td>
            </tr>`;
          })}
        </tbody>
      </table>
      <div part="actions" class="actions">
        ${this.back('location')}
        <button @click=${this.check} ?disabled=${this.busy || !this.chosen}>${this.busy ? this.t('drp.checking') : this.t('drp.check')}</button>
      </div>`;
  }

  private prerequisites(r: Report) {
    const inst = r.installation;
    return html`${inst.blank === false
        ? html`<div part="not-blank" class="alert unavailable" data-blank="false">
            <strong>${this.t('drp.notBlank')}</strong>${this.t('drp.notBlankText')}
            ${this.contentList(inst.content)}
          </div>`
        : inst.blank
          ? html`<p class="note" data-blank="true">${this.t('drp.blank')}</p>`
          : nothing}
      <ul part="checks" class="plain checks" aria-label=${this.t('drp.checks')}>
        ${r.checks.map(
          (c) => html`<li data-check=${c.id} data-status=${c.status}>
            <span class="badge ${c.status}">${this.t(`drp.prereq.${c.status}`)}</span>${c.message}
            ${c.advice && c.status !== 'met' ? html`<div class="advice">→ ${c.advice}</div>` : nothing}
          </li>`,
        )}
      </ul>
      ${r.servers.length ? this.servers(r) : nothing}
      ${inst.blank === false || this.wipe
        ? html`<div part="wipe" class="wipe">
            <input id="wipe" type="checkbox" .checked=${this.wipe} ?disabled=${this.busy} aria-describedby="wipe-help" @change=${(e: Event) => this.setWipe((e.target as HTMLInputElement).checked)} />
            <div>
              <label for="wipe">${this.t('drp.wipe')}</label>
              <div class="note" id="wipe-help">${this.t('drp.wipe.help')}</div>
            </div>
          </div>`
        : nothing}
      <p role="status" class=${r.ok ? 'ready' : 'unready'}>${r.ok ? this.t('drp.ready') : this.t('drp.notReady')}</p>
      <div part="actions" class="actions">
        ${this.back('generation')}
        <button class="secondary" @click=${this.check} ?disabled=${this.busy}>${this.busy ? this.t('drp.checking') : this.t('drp.recheck')}</button>
        <button part="start-button" class="danger" @click=${this.askStart} ?disabled=${this.busy || !r.ok}>${this.t('drp.start')}</button>
      </div>`;
  }

  private servers(r: Report) {
    const show = (s: ServerRef | null) => (s ? `${s.uid}${s.address ? ` (${s.address})` : ''}` : this.t('drp.serverUnmapped'));
    return html`<fieldset part="servers">
      <legend>${this.t('drp.servers')}</legend>
      ${r.servers.map((s) => {
        const key = s.from.address ?? s.from.uid;
        // A server placed by its address needs nothing; one not placed, or placed here, gets a choice.
        if (s.to && !s.explicit) return html`<div data-server=${s.from.uid}>${show(s.from)} → ${show(s.to)}</div>`;
        const id = `server-${s.from.uid}`;
        return html`<div data-server=${s.from.uid}>
          <label for=${id}>${this.t('drp.serverOnto', { server: show(s.from) })}</label>
          <select id=${id} ?disabled=${this.busy} @change=${(e: Event) => this.mapServer(key, (e.target as HTMLSelectElement).value)}>
            <option value="" ?selected=${!this.serverMap[key]}>${this.t('drp.serverChoose')}</option>
            ${r.targetServers.map((t) => html`<option value=${t.uid} ?selected=${this.serverMap[key] === t.uid}>${show(t)}</option>`)}
          </select>
          ${s.explicit ? html`<span class="note">${this.t('drp.serverExplicit')}</span>` : nothing}
          ${s.problem ? html`<div class="advice">${s.problem}</div>` : nothing}
        </div>`;
      })}
    </fieldset>`;
  }

  private contentList(content: string[]) {
    return html`<ul class="content">
      ${content.map((c) => html`<li>${c}</li>`)}
    </ul>`;
  }

  private dialog() {
    const g = this.chosenGeneration;
    const content = this.report?.installation.content ?? [];
    return html`<dialog part="dialog" aria-labelledby="drp-confirm-title" @cancel=${(e: Event) => (e.preventDefault(), this.closeDialog())}>
      <h2 id="drp-confirm-title">${this.t('drp.confirmTitle')}</h2>
      <p>${this.t('drp.confirmText', { date: g ? formatDate(this.locale, g.protectionTime) : '', version: g?.productVersion ?? '' })}</p>
      ${this.wipe && content.length ? html`<p><strong>${this.t('drp.confirmWipe')}</strong></p>${this.contentList(content)}` : nothing}
      <div class="actions">
        <button class="secondary" @click=${this.closeDialog}>${this.t('common.cancel')}</button>
        <button class="danger" @click=${() => this.start()}>${this.t('drp.confirm')}</button>
      </div>
    </dialog>`;
  }

  private restoring() {
    const g = this.chosenGeneration;
    return html`${this.step === 'progress' && g ? html`<p class="note">${this.t('drp.running', { date: formatDate(this.locale, g.protectionTime) })}</p>` : nothing}
      ${this.ended ? this.result(this.ended) : nothing}
      ${this.taskId
        ? html`<div part="task"><dp-task-progress task-id=${this.taskId} @dp-task-end=${this.taskEnded}></dp-task-progress></div>`
        : nothing}`;
  }

  private result(task: Task) {
    if (task.status !== 'SUCCEEDED') {
      return html`<div part="result" class="alert" data-result=${task.status}>
          <strong>${this.t('drp.failed')}</strong>${task.error ?? task.status}
          <div>${this.t('drp.failedText')}</div>
        </div>
        <div part="actions" class="actions"><button @click=${() => this.start(true)} ?disabled=${this.busy}>${this.t('drp.resume')}</button></div>`;
    }
    const r = task.result as RestoreResult | null;
    return html`<div part="result" data-result="SUCCEEDED">
      <p class="ready" role="status"><strong>${r?.alreadyRestored ? this.t('drp.doneAlready') : r?.resumed ? this.t('drp.doneResumed') : this.t('drp.done')}</strong></p>
      ${r?.parts?.length
        ? html`<ul class="plain">
            ${r.parts.map(
              (p) => html`<li data-part=${p.key}>
                <span class="badge met">${this.t(`drp.part.${p.state}` as MessageKey)}</span>${p.key} → ${p.target}
                ${p.detail ? html`<div class="advice">${p.detail}</div>` : nothing}
              </li>`,
            )}
          </ul>`
        : nothing}
      <h3>${this.t('drp.next')}</h3>
      <ol part="next-steps">
        <li>${this.t('drp.next.certificate')}</li>
        <li>${this.t('drp.next.subscription')}</li>
        <li>${this.t('drp.next.plugins')}</li>
        <li>${this.t('drp.next.check')}</li>
      </ol>
    </div>`;
  }
}
