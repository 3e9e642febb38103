import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../dataprotect/principal.js';
import type { TaskEvent } from '../jobs/task-registry.js';
import type { Task, TaskLogEntry } from '../store/task-record.js';
import type { ApiDeps } from './deps.js';
import { toApiTask, visibleTask } from './handlers.js';

const KEEPALIVE_MS = 15_000;
const REMOTE_POLL_MS = 1_000;

/**
 * Server-sent events of one task: `task` (status and progress), `log` (id = sequence number), `end` (final task,
 * then the stream closes). Tasks running on this node stream live; tasks of another node are polled from the
 * database, so a console behind any node follows any task.
 */
export async function streamTaskEvents(
  deps: ApiDeps,
  principal: Principal,
  taskId: string,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  const initial = await visibleTask(deps, principal, taskId);
  const lastHeader = request.headers['last-event-id'];
  // The contract bounds it (sequence numbers stay below 2^31); anything else starts from the beginning.
  let lastSeq = typeof lastHeader === 'string' && /^[0-9]{1,9}$/.test(lastHeader) ? Number(lastHeader) : 0;

  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  let closed = false;
  const cleanups: (() => void)[] = [];
  const close = () => {
    if (closed) return;
    closed = true;
    for (const c of cleanups) c();
    raw.end();
  };
  raw.on('close', close); // the client went away (or we ended the response)

  const send = (event: string, data: unknown, id?: number) => {
    if (closed) return;
    raw.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const sendLog = (e: TaskLogEntry) => {
    if (e.seq <= lastSeq) return;
    lastSeq = e.seq;
    send('log', e, e.seq);
  };
  const end = (t: Task) => {
    send('end', toApiTask(t));
    close();
  };

  // Subscribe before replaying the log so that nothing falls between the two; duplicates are dropped by seq.
  const buffered: TaskEvent[] = [];
  let replaying = true;
  const onEvent = (e: TaskEvent) => {
    if (replaying) return void buffered.push(e);
    if (e.type === 'log') sendLog(e.entry);
    else if (e.type === 'task') send('task', toApiTask(e.task));
    else void deps.tasks.log(taskId, lastSeq, 100_000).then((rest) => (rest.forEach(sendLog), end(e.task)), close);
  };
  if (deps.tasks.isLocal(taskId)) cleanups.push(deps.tasks.subscribe(taskId, onEvent));

  // Past this point the answer has begun: a failure can only end the stream (the client reconnects with
  // Last-Event-ID), never become a problem document, and must never leave it open.
  try {
    await follow();
  } catch (err) {
    request.log.error({ err }, `event stream of task ${taskId} failed`);
    close();
  }

  async function follow(): Promise<void> {
    send('task', toApiTask(initial));
    for (const e of await deps.tasks.log(taskId, lastSeq, 100_000)) sendLog(e);
    replaying = false;
    for (const e of buffered.splice(0)) onEvent(e);
    if (closed) return;

    const keepalive = setInterval(() => !closed && raw.write(': keepalive\n\n'), KEEPALIVE_MS);
    cleanups.push(() => clearInterval(keepalive));

    if (!deps.tasks.isLocal(taskId)) {
      // Ended already, or running on another node: read the database until it ends.
      const poll = async () => {
        if (closed) return;
        const t = await deps.tasks.get(taskId);
        for (const e of await deps.tasks.log(taskId, lastSeq, 10_000)) sendLog(e);
        if (!t || t.status !== 'RUNNING') return end(t ?? initial);
        send('task', toApiTask(t));
        const timer = setTimeout(() => void poll().catch(close), REMOTE_POLL_MS);
        cleanups.push(() => clearTimeout(timer));
      };
      await poll();
    }
  }
}
