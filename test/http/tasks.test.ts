import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskContext } from '../../server/jobs/task-registry.js';
import { KEYS, PRINCIPALS, startTestApi, type TestApi } from './harness.js';

// Task endpoints over tasks started through the registry (the way backup runs and restores will start them).

let api: TestApi;
beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => api?.close());

const get = (key: string, url: string, headers: Record<string, string> = {}) =>
  api.app.inject({ method: 'GET', url: `/api/dataprotect${url}`, headers: { 'x-bm-apikey': key, ...headers } });
const post = (key: string, url: string) => api.app.inject({ method: 'POST', url: `/api/dataprotect${url}`, headers: { 'x-bm-apikey': key } });

function actorOf(key: string) {
  const p = PRINCIPALS[key];
  return { login: p.login, uid: p.uid };
}

/** A task body that waits until released or cancelled. */
function gate() {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const body = async (ctx: TaskContext) => {
    ctx.progress({ done: 1, total: 4, unit: 'parts', message: 'bm/pgsql' });
    ctx.info('dumping the database');
    ctx.signal.throwIfAborted();
    await Promise.race([
      released,
      new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })),
    ]);
    ctx.progress({ done: 4, message: null });
    ctx.info('done');
    return { parts: 4 };
  };
  return { body, release };
}

function parseSse(text: string): { event: string; id?: string; data: unknown }[] {
  return text
    .split('\n\n')
    .filter((b) => b.includes('event:'))
    .map((block) => {
      const lines = Object.fromEntries(
        block.split('\n').filter((l) => !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]),
      );
      return { event: lines.event, id: lines.id, data: JSON.parse(lines.data) };
    });
}

describe('tasks', () => {
  it('shows a running task with its progress and log, then its result', async () => {
    const g = gate();
    const task = await api.deps.tasks.start({ kind: 'backup', title: 'Backup', actor: actorOf(KEYS.dataprotect) }, g.body);
    // The body's first progress reaches the store a moment later: poll for it, however busy the machine.
    let running = await get(KEYS.admin, `/tasks/${task.id}`);
    for (const end = Date.now() + 30_000; running.json().progress?.done !== 1 && Date.now() < end; ) {
      await new Promise((r) => setTimeout(r, 50));
      running = await get(KEYS.admin, `/tasks/${task.id}`);
    }
    expect(running.statusCode).toBe(200);
    expect(running.json()).toMatchObject({ status: 'RUNNING', progress: { done: 1, total: 4, unit: 'parts', message: 'bm/pgsql' } });
    g.release();
    await api.deps.tasks.whenDone(task.id);
    const done = await get(KEYS.admin, `/tasks/${task.id}`);
    expect(done.json()).toMatchObject({ status: 'SUCCEEDED', result: { parts: 4 }, progress: { done: 4 } });
    expect(done.json().endedAt).not.toBeNull();
    const log = await get(KEYS.admin, `/tasks/${task.id}/log`);
    expect(log.json().map((e: { message: string }) => e.message)).toEqual(['dumping the database', 'done']);
    const after = await get(KEYS.admin, `/tasks/${task.id}/log?after=1`);
    expect(after.json().map((e: { seq: number }) => e.seq)).toEqual([2]);
    const list = await get(KEYS.admin, '/tasks?kind=backup');
    expect(list.json().items.map((t: { id: string }) => t.id)).toContain(task.id);
  });

  it('cancels a running task: it ends CANCELLED, the cancel is audited, a second cancel is a 409', async () => {
    const g = gate();
    const task = await api.deps.tasks.start({ kind: 'restore', title: 'Restore u1', actor: actorOf(KEYS.restore) }, g.body);
    await new Promise((r) => setTimeout(r, 50));
    const r = await post(KEYS.restore, `/tasks/${task.id}/cancel`);
    expect(r.statusCode).toBe(202);
    expect(r.json().cancelRequested).toBe(true);
    const final = await api.deps.tasks.whenDone(task.id);
    expect(final?.status).toBe('CANCELLED');
    const again = await post(KEYS.restore, `/tasks/${task.id}/cancel`);
    expect(again.statusCode).toBe(409);
    const audit = await get(KEYS.admin, '/audit?action=task.cancel');
    expect(audit.json().items[0]).toMatchObject({ actor: PRINCIPALS[KEYS.restore].login, taskId: task.id });
  });

  it('a failing task ends FAILED with its reason in the error and the log', async () => {
    const task = await api.deps.tasks.start({ kind: 'restore', title: 'Restore u2', actor: actorOf(KEYS.admin) }, async () => {
      throw new Error('reading pack 3fa2: truncated');
    });
    await api.deps.tasks.whenDone(task.id);
    const r = await get(KEYS.admin, `/tasks/${task.id}`);
    expect(r.json()).toMatchObject({ status: 'FAILED', error: 'reading pack 3fa2: truncated' });
    const log = await get(KEYS.admin, `/tasks/${task.id}/log`);
    expect(log.json().at(-1)).toMatchObject({ level: 'error', message: 'reading pack 3fa2: truncated' });
  });

  it('a restore administrator sees only the tasks they started', async () => {
    const mine = await api.deps.tasks.start({ kind: 'restore', title: 'mine', actor: actorOf(KEYS.ouRestore) }, async () => ({}));
    const other = await api.deps.tasks.start({ kind: 'restore', title: 'other', actor: actorOf(KEYS.admin) }, async () => ({}));
    await api.deps.tasks.whenDone(mine.id);
    await api.deps.tasks.whenDone(other.id);
    const list = await get(KEYS.ouRestore, '/tasks');
    const ids = list.json().items.map((t: { id: string }) => t.id);
    expect(ids).toContain(mine.id);
    expect(ids).not.toContain(other.id);
    expect((await get(KEYS.ouRestore, `/tasks/${other.id}`)).statusCode).toBe(403);
    expect((await get(KEYS.ouRestore, `/tasks/${other.id}/log`)).statusCode).toBe(403);
    expect((await get(KEYS.dataprotect, `/tasks/${other.id}`)).statusCode).toBe(200);
    expect((await get(KEYS.admin, `/tasks/${randomUUID()}`)).statusCode).toBe(404);
  });

  it('keeps the files a task makes and serves them for download, to the right people only', async () => {
    const ics = 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n';
    const task = await api.deps.tasks.start({ kind: 'restore', title: 'send.calendars.ics', actor: actorOf(KEYS.restore) }, async (ctx) => {
      await ctx.attach('Calendar (default).ics', ics, 'text/calendar');
      await expect(ctx.attach('../escape.ics', ics, 'text/calendar')).rejects.toThrow(/not a plain file name/);
      return {};
    });
    await api.deps.tasks.whenDone(task.id);
    const list = await get(KEYS.restore, `/tasks/${task.id}/files`);
    expect(list.statusCode).toBe(200);
    expect(list.json()).toEqual([expect.objectContaining({ name: 'Calendar (default).ics', size: ics.length, contentType: 'text/calendar' })]);
    const file = await get(KEYS.restore, `/tasks/${task.id}/files/${encodeURIComponent('Calendar (default).ics')}`);
    expect(file.statusCode).toBe(200);
    expect(file.headers['content-type']).toBe('text/calendar');
    expect(file.headers['content-disposition']).toBe('attachment; filename="Calendar (default).ics"');
    expect(file.body).toBe(ics);
    expect((await get(KEYS.restore, `/tasks/${task.id}/files/other.ics`)).statusCode).toBe(404);
    expect((await get(KEYS.ouRestore, `/tasks/${task.id}/files/${encodeURIComponent('Calendar (default).ics')}`)).statusCode).toBe(403);
  });

  it('marks a task whose process stopped beating as INTERRUPTED', async () => {
    const id = randomUUID();
    await api.pool.query(
      `INSERT INTO dp_task (id, kind, title, status, actor, progress, node, heartbeat_at)
       VALUES ($1, 'backup', 'Backup', 'RUNNING', 'scheduler', '{"done":2,"total":5,"message":null}', 'gone:1', now() - interval '10 minutes')`,
      [id],
    );
    const r = await get(KEYS.admin, `/tasks/${id}`);
    expect(r.json()).toMatchObject({ status: 'INTERRUPTED', error: expect.stringContaining('stopped') });
  });

  it('finds a task of one of several kinds running on another node, and not one whose node stopped beating (marked INTERRUPTED by the same look)', async () => {
    const [stale, live] = [randomUUID(), randomUUID()];
    const insert = (id: string, kind: string, age: string) => api.pool.query(
      `INSERT INTO dp_task (id, kind, title, status, actor, progress, node, heartbeat_at, created_at)
       VALUES ($1, $2, 'Run', 'RUNNING', 'scheduler', '{"done":0,"total":null,"message":null}', 'other:1', now() - $3::interval, now() - $3::interval)`,
      [id, kind, age],
    );
    await insert(stale, 'recovery-point', '10 minutes');
    expect(await api.deps.tasks.findRunning(['backup', 'recovery-point'])).toBeNull();
    expect((await api.pool.query('SELECT status FROM dp_task WHERE id = $1', [stale])).rows[0].status).toBe('INTERRUPTED');
    await insert(live, 'recovery-point', '1 second');
    expect((await api.deps.tasks.findRunning(['backup', 'recovery-point']))?.id).toBe(live);
    expect((await api.deps.tasks.findRunning('recovery-point'))?.id).toBe(live);
    expect(await api.deps.tasks.findRunning('backup')).toBeNull();
    await api.pool.query(`UPDATE dp_task SET status = 'INTERRUPTED' WHERE id = $1`, [live]);
  });

  it('streams a finished task as events: task, each log line with its id, end', async () => {
    const task = await api.deps.tasks.start({ kind: 'check', title: 'Check', actor: actorOf(KEYS.admin) }, async (ctx) => {
      ctx.info('one');
      ctx.warn('two');
      return { ok: true };
    });
    await api.deps.tasks.whenDone(task.id);
    const r = await get(KEYS.admin, `/tasks/${task.id}/events`);
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/event-stream/);
    const events = parseSse(r.body);
    expect(events.map((e) => e.event)).toEqual(['task', 'log', 'log', 'end']);
    expect(events[2]).toMatchObject({ id: '2', data: { level: 'warn', message: 'two' } });
    expect(events[3].data).toMatchObject({ status: 'SUCCEEDED' });
    const resumed = parseSse((await get(KEYS.admin, `/tasks/${task.id}/events`, { 'last-event-id': '1' })).body);
    expect(resumed.filter((e) => e.event === 'log').map((e) => e.id)).toEqual(['2']);
  });

  it('streams a running task live over HTTP until it ends', async () => {
    const address = await api.app.listen({ port: 0, host: '127.0.0.1' });
    const g = gate();
    const task = await api.deps.tasks.start({ kind: 'backup', title: 'Backup', actor: actorOf(KEYS.admin) }, g.body);
    const res = await fetch(`${address}/api/dataprotect/tasks/${task.id}/events`, { headers: { 'x-bm-apikey': KEYS.admin } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    const decoder = new TextDecoder();
    setTimeout(() => g.release(), 200);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    const events = parseSse(text);
    expect(events[0].event).toBe('task');
    expect(events.filter((e) => e.event === 'log').map((e) => (e.data as { message: string }).message)).toEqual([
      'dumping the database',
      'done',
    ]);
    expect(events.at(-1)).toMatchObject({ event: 'end', data: { status: 'SUCCEEDED' } });
  });
});
