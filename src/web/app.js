/**
 * Sluice's web dashboard: a single page over the JobManager's REST API (docs/rest-api.md), no framework.
 * Views by the location's hash: `#/` overview, `#/jobs`, `#/jobs/<jobid>`, `#/taskmanagers`, `#/submit`.
 * Every view but the submit form refreshes itself every POLL_MS. Text from the API only ever reaches the
 * page as text (never as markup).
 *
 * Size: the dashboard is one page without a build step; its views share the helpers and the polling,
 * so it stays one script.
 */

const POLL_MS = 1_500;
const SVG = 'http://www.w3.org/2000/svg';
const ENDED = new Set(['FINISHED', 'CANCELED', 'FAILED', 'SUSPENDED']);

// ---------------------------------------------------------------------------------------------- helpers

/** An element with attributes (`on*` functions become listeners) and children (strings become text). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  setAttrs(el, attrs);
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
}

/** The answer's JSON; a failed request throws an Error with the API's message and `status`. */
async function api(path, init = {}) {
  const res = await fetch(path, init);
  const text = await res.text();
  let body;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const message = body?.errors?.join('; ') ?? (text || res.statusText);
    const err = new Error(message);
    err.status = res.status;
    throw err;
  }
  return body;
}

const fmtTime = (ms) => (typeof ms === 'number' && ms > 0 ? new Date(ms).toLocaleString() : '—');
const fmtNumber = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '—');

function fmtDuration(ms) {
  if (typeof ms !== 'number' || ms < 0) return '—';
  const sec = Math.floor(ms / 1000);
  if (sec < 60) return `${(ms / 1000).toFixed(1)} s`;
  const min = Math.floor(sec / 60);
  if (min < 60) return `${min} min ${sec % 60} s`;
  return `${Math.floor(min / 60)} h ${min % 60} min`;
}

const stateBadge = (state) => h('span', { class: `state state-${state}` }, state);

function table(caption, headers, rows, empty) {
  if (rows.length === 0) return h('p', { class: 'muted' }, empty);
  return h(
    'table',
    {},
    h('caption', { class: 'muted' }, caption),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        headers.map((t) => h('th', { scope: 'col' }, t)),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map((cells) =>
        h(
          'tr',
          {},
          cells.map((c) => (c instanceof Node && c.nodeName === 'TD' ? c : h('td', {}, c))),
        ),
      ),
    ),
  );
}

const num = (n) => h('td', { class: 'num' }, fmtNumber(n));

// ------------------------------------------------------------------------------------------------ views

const view = document.getElementById('view');

/** The current view: `render()` (re)draws it; `poll` says whether it refreshes itself. */
let current = { key: '', render: async () => {}, poll: false };
let generation = 0;

function route() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const job = /^\/jobs\/([0-9a-fA-F]{32})$/.exec(hash);
  if (job) return jobView(job[1].toLowerCase());
  if (hash === '/jobs') return jobsView();
  if (hash === '/taskmanagers') return taskManagersView();
  if (hash === '/submit') return submitView();
  return overviewView();
}

async function navigate() {
  generation++;
  current = route();
  for (const a of document.querySelectorAll('header nav a')) {
    const target = a.getAttribute('href').slice(1);
    const here = location.hash.slice(1) || '/';
    const active = target === '/' ? here === '/' : here === target || here.startsWith(`${target}/`);
    if (active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  view.replaceChildren();
  await refresh();
}

let refreshing = false;
let again = false;
/** Redraws the current view; called while a redraw runs, it redraws once more after it. */
async function refresh() {
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  const gen = generation;
  const banner = document.getElementById('connection');
  try {
    await Promise.all([current.render(() => gen === generation), servedBy()]);
    banner.hidden = true;
  } catch (err) {
    banner.textContent = `The JobManager's REST API did not answer: ${err.message}`;
    banner.hidden = false;
  } finally {
    refreshing = false;
  }
  if (again) {
    again = false;
    await refresh();
  }
}

async function servedBy() {
  // `/leader` is answered by every JobManager, standbys too: the header says who leads even when the
  // rest of the API answers 503 (a standby that does not know the leader's REST address).
  const [overview, config, leader] = await Promise.allSettled([
    api('/overview'),
    configOnce(),
    api('/leader'),
  ]);
  if (leader.status === 'fulfilled') showLeader(leader.value);
  if (overview.status === 'rejected') throw overview.reason;
  const cluster = config.status === 'fulfilled' ? (config.value['cluster.id'] ?? '?') : '?';
  document.getElementById('served-by').textContent =
    `Served by JobManager ${overview.value['jobmanager-id']} · cluster ${cluster} · ` +
    `Sluice ${overview.value['sluice-version']}`;
}

/** The header's leader line, from `GET /leader`. */
function showLeader(answer) {
  const el = document.getElementById('leader');
  const lead = answer.leader;
  let text;
  if (answer['high-availability'] === 'none') {
    text = `Leader: JobManager ${answer['jobmanager-id']} (no high availability)`;
  } else if (answer.leading) {
    text = `Leader: JobManager ${answer['jobmanager-id']} (this one) · epoch ${answer.epoch}`;
  } else if (lead) {
    text =
      `Standby JobManager ${answer['jobmanager-id']} · leader: ${lead.id}` +
      `${lead['rest-url'] ? ` at ${lead['rest-url']}` : ' (no REST API)'} · epoch ${lead.epoch}`;
  } else {
    text = `Standby JobManager ${answer['jobmanager-id']} · no leader yet (${answer['leader-record']})`;
  }
  el.textContent = text;
  el.dataset.leading = String(Boolean(answer.leading));
  el.hidden = false;
}

let config;
async function configOnce() {
  config ??= await api('/config');
  return config;
}

function overviewView() {
  return {
    key: 'overview',
    poll: true,
    render: async (stillHere) => {
      const [overview, jobs] = await Promise.all([api('/overview'), api('/jobs/overview')]);
      if (!stillHere()) return;
      const card = (label, value) =>
        h('div', { class: 'card' }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value));
      view.replaceChildren(
        h('h2', {}, 'Cluster overview'),
        h(
          'section',
          { 'aria-label': 'Cluster' },
          h(
            'div',
            { class: 'cards' },
            card('TaskManagers', fmtNumber(overview.taskmanagers)),
            card('Slots total', fmtNumber(overview['slots-total'])),
            card('Slots available', fmtNumber(overview['slots-available'])),
          ),
        ),
        h('h3', {}, 'Jobs by state'),
        h(
          'div',
          { class: 'cards' },
          card('Running', fmtNumber(overview['jobs-running'])),
          card('Finished', fmtNumber(overview['jobs-finished'])),
          card('Canceled', fmtNumber(overview['jobs-cancelled'])),
          card('Failed', fmtNumber(overview['jobs-failed'])),
          card('Suspended', fmtNumber(overview['jobs-suspended'])),
        ),
        h('h3', {}, 'Recent jobs'),
        jobsTable(jobs.jobs.slice(0, 10)),
      );
    },
  };
}

function jobsTable(jobs) {
  return table(
    'Jobs, newest first',
    ['Name', 'State', 'Started', 'Duration', 'Parallelism', 'Job ID'],
    jobs.map((j) => [
      h('a', { href: `#/jobs/${j.jid}` }, j.name),
      stateBadge(j.state),
      fmtTime(j['start-time']),
      fmtDuration(j.duration),
      num(j.parallelism),
      h('code', {}, j.jid),
    ]),
    'No jobs yet.',
  );
}

function jobsView() {
  return {
    key: 'jobs',
    poll: true,
    render: async (stillHere) => {
      const { jobs } = await api('/jobs/overview');
      if (!stillHere()) return;
      view.replaceChildren(h('h2', {}, 'Jobs'), jobsTable(jobs));
    },
  };
}

function taskManagersView() {
  return {
    key: 'taskmanagers',
    poll: true,
    render: async (stillHere) => {
      const { taskmanagers } = await api('/taskmanagers');
      if (!stillHere()) return;
      const now = Date.now();
      view.replaceChildren(
        h('h2', {}, 'TaskManagers'),
        table(
          'TaskManagers registered at the ResourceManager',
          ['ID', 'Host', 'PID', 'Slots', 'Free slots', 'Last heartbeat'],
          taskmanagers.map((tm) => [
            h('code', {}, tm.id),
            tm.host,
            h('td', { class: 'num' }, String(tm.pid)),
            num(tm.slotsNumber),
            num(tm.freeSlots),
            heartbeat(tm.timeSinceLastHeartbeat, now),
          ]),
          'No TaskManager is registered.',
        ),
      );
    },
  };
}

/** `timeSinceLastHeartbeat` is, as in Flink, a time (ms since the epoch); a small value is an age. */
function heartbeat(value, now) {
  if (typeof value !== 'number') return '—';
  const age = value > 1e12 ? now - value : value;
  return `${fmtDuration(Math.max(0, age))} ago`;
}

// -------------------------------------------------------------------------------------------- job detail

function jobView(jobId) {
  const notice = h('p', { class: 'notice', role: 'status', hidden: true });
  const say = (text, isError = false) => {
    notice.textContent = text;
    notice.className = isError ? 'notice error' : 'notice';
    notice.hidden = false;
  };
  const cancel = h('button', { type: 'button', onclick: () => cancelJob() }, 'Cancel job');
  const savepoint = h('button', { type: 'button', onclick: () => triggerSavepoint() }, 'Trigger savepoint');
  const title = h('h2', {}, `Job ${jobId}`);
  const body = h('div', { id: 'job-body' });
  let built = false;

  async function cancelJob() {
    cancel.disabled = true;
    try {
      const answer = await api(`/jobs/${jobId}?mode=cancel`, { method: 'PATCH' });
      say(`Cancellation requested: the job is ${answer.status}.`);
    } catch (err) {
      say(`Cancel failed (${err.status ?? 'network'}): ${err.message}`, true);
      cancel.disabled = false;
    }
    await refresh();
  }

  async function triggerSavepoint() {
    savepoint.disabled = true;
    try {
      const { 'request-id': trigger } = await api(`/jobs/${jobId}/savepoints`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{}',
      });
      say('Savepoint triggered…');
      // Poll the trigger until the savepoint completed or failed (bounded: 10 minutes).
      for (let i = 0; i < 1200; i++) {
        const answer = await api(`/jobs/${jobId}/savepoints/${trigger}`);
        if (answer.status.id === 'COMPLETED') {
          const failure = answer.operation?.['failure-cause']?.['stack-trace'];
          if (failure) say(`Savepoint failed: ${failure}`, true);
          else say(`Savepoint completed: ${answer.operation.location}`);
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    } catch (err) {
      say(`Savepoint failed (${err.status ?? 'network'}): ${err.message}`, true);
    } finally {
      savepoint.disabled = false;
    }
  }

  return {
    key: `job ${jobId}`,
    poll: true,
    render: async (stillHere) => {
      let job;
      try {
        job = await api(`/jobs/${jobId}`);
      } catch (err) {
        if (err.status !== 404) throw err;
        if (stillHere()) view.replaceChildren(h('h2', {}, 'Job not found'), h('p', {}, err.message));
        built = false;
        return;
      }
      const [exceptions, checkpoints, rescales, autoscaler] = await Promise.all([
        api(`/jobs/${jobId}/exceptions`),
        api(`/jobs/${jobId}/checkpoints`),
        // Only a running job has them (an ended job answers 409).
        api(`/jobs/${jobId}/rescales`).catch(() => null),
        // Shown when the JobManager runs one; an older JobManager has no such endpoint.
        api(`/jobs/${jobId}/autoscaler`).catch(() => null),
      ]);
      if (!stillHere()) return;
      if (!built) {
        view.replaceChildren(
          title,
          h('div', { class: 'actions', role: 'group', 'aria-label': 'Job actions' }, cancel, savepoint),
          notice,
          body,
        );
        built = true;
      }
      title.textContent = job.name;
      cancel.disabled = ENDED.has(job.state) || job.state === 'CANCELLING';
      body.replaceChildren(
        ...jobBody(job, exceptions, checkpoints, rescales),
        ...autoscalerSection(autoscaler),
      );
    },
  };
}

/** An event time as ISO text; the largest watermark (all input ended) as such; '—' for none. */
function fmtWatermark(wm) {
  if (typeof wm !== 'number') return '—';
  if (wm >= 8.64e15) return 'end of input';
  if (wm <= -8.64e15) return '—';
  return new Date(wm).toISOString();
}

/** Share of the last poll interval a vertex's subtasks spent backpressured (from the summed time). */
const lastBackpressure = new Map();
function backpressure(v) {
  const ms = v.metrics?.['backpressured-time-ms'];
  if (ms === undefined) return '—';
  const now = Date.now();
  const last = lastBackpressure.get(v.id);
  lastBackpressure.set(v.id, { ms, at: now });
  if (!last || now <= last.at) return `${fmtNumber(ms)} ms total`;
  const share = Math.max(0, Math.min(1, (ms - last.ms) / ((now - last.at) * v.parallelism)));
  return `${Math.round(share * 100)} % (${fmtNumber(ms)} ms total)`;
}

/** A rescale's changes: `v0 2 → 4, v1 2 → 4` (vertex ids; names where the job has them). */
function fmtRescale(job, r) {
  const names = new Map(job.vertices.map((v) => [v.id, v.name]));
  const changed = Object.keys(r.target).filter((id) => r.previous[id] !== r.target[id]);
  return (
    changed.map((id) => `${names.get(id) ?? id}: ${r.previous[id]} → ${r.target[id]}`).join(', ') ||
    'no change'
  );
}

/** Current parallelism, scheduler mode and the last rescales of a running job. */
function rescaleSection(job, rescales) {
  const parts = [h('h3', {}, 'Rescaling')];
  if (!rescales) {
    parts.push(h('p', { class: 'muted' }, 'Only a running job can be rescaled.'));
    return parts;
  }
  const vertices = Object.entries(rescales.parallelism)
    .map(([id, p]) => `${id} ${p} (max ${rescales.maxParallelism[id]})`)
    .join(', ');
  const list = rescales.rescales ?? [];
  const last = list[list.length - 1];
  parts.push(
    h(
      'p',
      { 'aria-label': 'Parallelism', 'data-testid': 'rescale-summary' },
      `Scheduler mode ${rescales.schedulerMode} · parallelism ${vertices}`,
      last
        ? ` · last rescale ${last.status === 'COMPLETED' ? `${fmtTime(last.endTime)}, ${last.downtimeMs} ms downtime` : last.status}`
        : ' · never rescaled',
    ),
  );
  if (list.length > 0) {
    parts.push(
      table(
        'Rescales, newest first',
        ['Started', 'Cause', 'Change', 'Status', 'Checkpoint', 'Downtime', 'Reason'],
        [...list]
          .reverse()
          .map((r) => [
            fmtTime(r.startTime),
            r.cause,
            fmtRescale(job, r),
            r.failure ? `${r.status}: ${r.failure}` : r.status,
            r.checkpointId === null ? '—' : String(r.checkpointId),
            r.downtimeMs === null ? '—' : `${fmtNumber(r.downtimeMs)} ms`,
            r.reason,
          ]),
        'Never rescaled.',
      ),
    );
  }
  parts.push(
    h(
      'p',
      { class: 'muted' },
      'Rescale with sluice rescale JOBID -p N, or PUT /jobs/:jobid/resource-requirements.',
    ),
  );
  return parts;
}

function jobBody(job, exceptions, checkpoints, rescales) {
  // The vertices' record counters are accumulators too (`<vertex> records in`): shown per vertex instead.
  const counters = new Set(
    job.vertices.flatMap((v) => [
      `${v.name} records in`,
      `${v.name} records out`,
      `${v.name} backpressured ms`,
      `${v.name} watermark`,
    ]),
  );
  const accumulators = Object.entries(job.metrics ?? {}).filter(([name]) => !counters.has(name));
  const parts = [
    h(
      'p',
      { 'aria-label': 'Job status' },
      'State: ',
      h('span', { class: `state state-${job.state}`, 'data-testid': 'job-state' }, job.state),
      ` · started ${fmtTime(job['start-time'])} · duration ${fmtDuration(job.duration)}`,
      ` · parallelism ${job.parallelism} · restarts ${job.restarts ?? 0} · `,
      h('code', {}, job.jid),
    ),
    h('h3', {}, 'Job graph'),
    jobGraph(job),
    h('h3', {}, 'Vertices'),
    table(
      'Records in and out per vertex',
      ['Vertex', 'Status', 'Parallelism', 'Tasks', 'Records in', 'Records out', 'Backpressured', 'Watermark'],
      job.vertices.map((v) => [
        v.name,
        stateBadge(v.status),
        num(v.parallelism),
        Object.entries(v.tasks)
          .filter(([, n]) => n > 0)
          .map(([state, n]) => `${n} ${state}`)
          .join(', ') || '—',
        num(v.metrics?.['read-records']),
        num(v.metrics?.['write-records']),
        backpressure(v),
        fmtWatermark(v.metrics?.['current-watermark']),
      ]),
      'The job has no vertices.',
    ),
    h(
      'p',
      { class: 'muted' },
      'Records in and out are live while the job runs (the TaskManagers report them with their heartbeats).',
    ),
    ...rescaleSection(job, rescales),
    h('h3', {}, 'Accumulators'),
    table(
      "The job's accumulators, summed over its subtasks",
      ['Name', 'Value'],
      accumulators.map(([name, value]) => [name, num(value)]),
      'No accumulators yet.',
    ),
    h('h3', {}, 'Exceptions'),
  ];
  const root = exceptions['root-exception'];
  if (root === null || root === undefined) parts.push(h('p', { class: 'muted' }, 'No exceptions.'));
  else {
    parts.push(
      h('p', {}, `At ${exceptions.location ?? 'an unknown location'}, ${fmtTime(exceptions.timestamp)}:`),
      h('pre', { 'aria-label': 'Root exception' }, root),
    );
  }
  parts.push(h('h3', {}, 'Checkpoints'));
  const history = checkpoints.history ?? [];
  if (history.length === 0) parts.push(h('p', { class: 'muted' }, 'No checkpoints yet.'));
  else {
    parts.push(
      table(
        'Checkpoint history',
        ['ID', 'Status', 'Triggered', 'Duration', 'Size'],
        history.map((c) => [
          String(c.id),
          c.status,
          fmtTime(c.trigger_timestamp),
          fmtDuration(c.end_to_end_duration),
          num(c.checkpointed_size),
        ]),
        'No checkpoints yet.',
      ),
    );
  }
  return parts;
}

/**
 * The job's autoscaler (GET /jobs/:jobid/autoscaler): its state, counts, and its recent decisions, each
 * with its reason and, for the latest evaluated one, every vertex's inputs (busy time, rates, backlog).
 */
function autoscalerSection(autoscaler) {
  if (!autoscaler?.enabled) return [];
  const latest = autoscaler.latest;
  const evaluated = (autoscaler.decisions ?? []).find((d) => (d.vertices ?? []).length > 0);
  const counts = Object.entries(autoscaler.counts ?? {})
    .map(([outcome, n]) => `${n} ${outcome}`)
    .join(', ');
  const parts = [
    h('h3', {}, 'Autoscaler'),
    h(
      'p',
      { 'aria-label': 'Autoscaler state' },
      'State: ',
      h('span', { 'data-testid': 'autoscaler-state' }, autoscaler.state ?? '—'),
      autoscaler.scalingEnabled
        ? ''
        : ` (advice only: ${autoscaler.adviceOnly ?? 'job.autoscaler.scaling.enabled is false'})`,
      ` · ${autoscaler.rescales ?? 0} rescales · ${counts || 'no evaluations yet'}`,
    ),
  ];
  if (latest)
    parts.push(h('p', { class: 'muted' }, `Latest, ${fmtTime(latest.timestamp)}: ${latest.reason}`));
  for (const [vertex, why] of Object.entries(autoscaler.ineffective ?? {})) {
    parts.push(h('p', { class: 'muted' }, `Not scaled up any more (${vertex}): ${why}`));
  }
  if (evaluated) {
    const rate = (x) => (x === null || x === undefined ? '—' : fmtNumber(Math.round(x)));
    parts.push(
      table(
        `Inputs of the decision of ${fmtTime(evaluated.timestamp)}`,
        [
          'Vertex',
          'Parallelism',
          'Target',
          'Busy ms/s',
          'Records in/s',
          'True rate/subtask',
          'Target rate',
          'Utilisation',
          'Backlog',
        ],
        evaluated.vertices.map((v) => [
          v.name,
          num(v.parallelism),
          num(v.targetParallelism),
          rate(v.busyTimeMsPerSecond),
          rate(v.recordsInPerSecond),
          rate(v.trueProcessingRate),
          rate(v.targetDataRate),
          v.utilization === null ? '—' : v.utilization.toFixed(2),
          v.backlog === null ? '—' : num(v.backlog),
        ]),
        'No vertices.',
      ),
    );
  }
  const decisions = (autoscaler.decisions ?? []).slice(0, 10);
  parts.push(
    table(
      'Recent autoscaler decisions',
      ['When', 'Outcome', 'Reason'],
      decisions.map((d) => [
        fmtTime(d.timestamp),
        d.outcome,
        d.error
          ? `${d.reason}: ${d.error}`
          : d.rescale?.downtimeMs !== undefined
            ? `${d.reason} (downtime ${fmtNumber(d.rescale.downtimeMs)} ms)`
            : d.reason,
      ]),
      'No decisions yet: the autoscaler waits for the stabilisation interval and a full metrics window.',
    ),
  );
  return parts;
}

/**
 * The job graph as SVG: one box per vertex (name, parallelism, status, records), laid out in columns by
 * depth. Edges (with their partitioner) need the job's plan: Flink's `plan.nodes[].inputs[]`
 * (`{ id, ship_strategy }`) is drawn when GET /jobs/:jobid has it; without it the vertices stand in the
 * order the API lists them, unconnected.
 */
function jobGraph(job) {
  const W = 230;
  const H = 74;
  const GAP_X = 70;
  const GAP_Y = 24;
  const nodes = job.plan?.nodes ?? [];
  const inputs = new Map(nodes.map((n) => [n.id, n.inputs ?? []]));
  const depth = new Map();
  const depthOf = (id, seen = new Set()) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id)) return 0;
    seen.add(id);
    const ins = inputs.get(id) ?? [];
    const d = ins.length === 0 ? 0 : 1 + Math.max(...ins.map((i) => depthOf(i.id, seen)));
    depth.set(id, d);
    return d;
  };
  const hasPlan = nodes.length > 0;
  const columns = [];
  job.vertices.forEach((v, i) => {
    const d = hasPlan ? depthOf(v.id) : i;
    columns[d] ??= [];
    columns[d].push(v);
  });
  const pos = new Map();
  columns.forEach((col, c) =>
    (col ?? []).forEach((v, r) => pos.set(v.id, { x: 10 + c * (W + GAP_X), y: 10 + r * (H + GAP_Y) })),
  );
  const width = 20 + columns.length * W + Math.max(0, columns.length - 1) * GAP_X;
  const height = 20 + Math.max(1, ...columns.map((c) => (c ?? []).length)) * (H + GAP_Y) - GAP_Y;

  const edges = [];
  for (const [id, ins] of inputs) {
    const to = pos.get(id);
    for (const input of ins) {
      const from = pos.get(input.id);
      if (!from || !to) continue;
      const [x1, y1, x2, y2] = [from.x + W, from.y + H / 2, to.x, to.y + H / 2];
      edges.push(
        s(
          'g',
          { class: 'edge' },
          s('line', { x1, y1, x2, y2, 'marker-end': 'url(#arrow)' }),
          s(
            'text',
            { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 6, 'text-anchor': 'middle' },
            input.ship_strategy ?? '',
          ),
        ),
      );
    }
  }

  const clip = (text, max) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
  const boxes = job.vertices.map((v) => {
    const { x, y } = pos.get(v.id);
    const records = `in ${fmtNumber(v.metrics?.['read-records'])} · out ${fmtNumber(v.metrics?.['write-records'])}`;
    return s(
      'g',
      { class: `vertex vertex-${v.status}`, 'data-vertex-id': v.id },
      s('title', {}, `${v.name} (parallelism ${v.parallelism}, ${v.status})`),
      s('rect', { x, y, width: W, height: H, rx: 6 }),
      s('text', { x: x + 8, y: y + 18, 'font-weight': 600 }, clip(v.name, 31)),
      s('text', { x: x + 8, y: y + 36 }, `parallelism ${v.parallelism} · ${v.status}`),
      s('text', { x: x + 8, y: y + 54 }, `records ${records}`),
    );
  });

  const svg = s(
    'svg',
    {
      class: 'job-graph',
      role: 'img',
      'aria-label': `Job graph with ${job.vertices.length} vertices`,
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
    },
    s(
      'defs',
      {},
      s(
        'marker',
        {
          id: 'arrow',
          viewBox: '0 0 10 10',
          refX: 10,
          refY: 5,
          markerWidth: 8,
          markerHeight: 8,
          orient: 'auto',
        },
        s('path', { d: 'M 0 0 L 10 5 L 0 10 z' }),
      ),
    ),
    edges,
    boxes,
  );
  const figure = h('figure', {}, svg);
  if (!hasPlan && job.vertices.length > 1) {
    figure.append(
      h(
        'figcaption',
        { class: 'muted' },
        "Edges are not shown: the REST API does not give the job's plan (its edges and partitioners) yet.",
      ),
    );
  }
  return figure;
}

// ------------------------------------------------------------------------------------------------ submit

function submitView() {
  const status = h('p', { class: 'notice', role: 'status', hidden: true });
  const say = (text, isError = false) => {
    status.textContent = text;
    status.className = isError ? 'notice error' : 'notice';
    status.hidden = false;
  };
  const file = h('input', {
    id: 'jarfile',
    name: 'jarfile',
    type: 'file',
    accept: '.ts,.mts,.cts,.js,.mjs,.cjs',
    required: true,
  });
  const jar = h('select', { id: 'jar', name: 'jar', required: true });
  const parallelism = h('input', {
    id: 'parallelism',
    name: 'parallelism',
    type: 'number',
    min: 1,
    max: 32768,
  });
  const args = h('input', { id: 'args', name: 'args', type: 'text', size: 50, placeholder: 'e.g. a "b c"' });

  async function loadJars(selected) {
    const { files } = await api('/jars');
    jar.replaceChildren(
      ...files.map((f) =>
        h(
          'option',
          { value: f.id, selected: f.id === selected },
          `${f.name} (${f.id}, uploaded ${fmtTime(f.uploaded)})`,
        ),
      ),
    );
    if (files.length === 0) jar.append(h('option', { value: '' }, 'Upload a job file first'));
  }

  async function upload(event) {
    event.preventDefault();
    const chosen = file.files?.[0];
    if (!chosen) return say('Choose a job file first.', true);
    const form = new FormData();
    form.append('jarfile', chosen, chosen.name);
    say(`Uploading ${chosen.name}…`);
    try {
      const answer = await api('/jars/upload', { method: 'POST', body: form });
      await loadJars(answer.filename);
      say(`Uploaded ${answer.name} as ${answer.filename}.`);
    } catch (err) {
      say(`Upload failed (${err.status ?? 'network'}): ${err.message}`, true);
    }
  }

  async function run(event) {
    event.preventDefault();
    if (!jar.value) return say('Upload a job file first.', true);
    const request = {};
    if (parallelism.value !== '') request.parallelism = Number(parallelism.value);
    if (args.value.trim() !== '') request.programArgs = args.value;
    say('Running the job file…');
    try {
      const answer = await api(`/jars/${jar.value}/run`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(request),
      });
      say(`Submitted job ${answer.jobids.join(', ')}.`);
      location.hash = `#/jobs/${answer.jobid}`;
    } catch (err) {
      say(`Run failed (${err.status ?? 'network'}): ${err.message}`, true);
    }
  }

  return {
    key: 'submit',
    poll: false,
    render: async (stillHere) => {
      if (view.childElementCount > 0) return;
      await loadJars();
      if (!stillHere()) return;
      view.replaceChildren(
        h('h2', {}, 'Submit a job'),
        h(
          'p',
          { class: 'muted' },
          'A job file is one TypeScript or JavaScript file that imports only sluice and Node builtins.',
        ),
        h(
          'form',
          { 'aria-label': 'Upload a job file', onsubmit: upload },
          h('h3', {}, '1. Upload'),
          h('label', { for: 'jarfile' }, 'Job file'),
          file,
          h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Upload')),
        ),
        h(
          'form',
          { 'aria-label': 'Run a job file', onsubmit: run },
          h('h3', {}, '2. Run'),
          h('label', { for: 'jar' }, 'Uploaded job file'),
          jar,
          h('label', { for: 'parallelism' }, 'Parallelism (empty: the cluster default)'),
          parallelism,
          h('label', { for: 'args' }, 'Program arguments'),
          args,
          h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Run job')),
        ),
        status,
      );
    },
  };
}

// ----------------------------------------------------------------------------------------------- start

window.addEventListener('hashchange', () => void navigate());
setInterval(() => {
  if (current.poll) void refresh();
  else void servedBy().catch(() => {});
}, POLL_MS);
void navigate();
