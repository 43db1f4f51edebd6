/**
 * The web dashboard in a real browser (Debian's Chromium, headless, driven by playwright-core) against a
 * cluster of real processes: nats-server, `sluice jobmanager -D rest.port=0` and one `sluice taskmanager
 * --slots 2`. A job file is uploaded and run through the submit page, twice: a bounded run seen RUNNING
 * with its graph and then FINISHED with its final record counts, and an unbounded run with live record
 * counts, a savepoint taken from the page (its path shown), a rescale to 1 over REST that the page shows
 * (parallelism, the rescale's row), and which is cancelled from the page. Screenshots of every step go to
 * test-output/dashboard/ (the path is printed).
 */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { SluiceProcess } from '../harness/processes.js';

const CHROMIUM = '/usr/bin/chromium';
const FIXTURE = fileURLToPath(new URL('../fixtures/web/live-words.ts', import.meta.url));
const SHOTS = fileURLToPath(new URL('../../test-output/dashboard/', import.meta.url));

describe('web dashboard', () => {
  let nats: NatsServerHandle;
  let jm: SluiceProcess;
  let tm: SluiceProcess;
  let url: string;
  let browser: Browser;
  let page: Page;

  // biome-ignore lint/suspicious/noExplicitAny: JSON of the REST API
  const api = async (path: string): Promise<any> => (await fetch(url + path)).json();
  const shot = (name: string) => page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
  const jobState = () => page.getByTestId('job-state');
  const vertexRow = (name: string) =>
    page
      .getByRole('table', { name: 'Records in and out per vertex' })
      .getByRole('row', { name: new RegExp(`^${escapeRegExp(name)}`) });

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: the dashboard test drives Debian's Chromium (apt-get install -y chromium; .ci/run installs it)`,
      );
    }
    await rm(SHOTS, { recursive: true, force: true });
    await mkdir(SHOTS, { recursive: true });
    console.log(`dashboard screenshots: ${SHOTS}`);
    nats = await startNatsServer();
    const common = ['--nats', nats.url, '--cluster-id', 'web'];
    // The autoscaler in advice mode with test-sized windows: its decisions show on the job page.
    const autoscaler = [
      'job.autoscaler.enabled=true',
      'job.autoscaler.scaling.enabled=false',
      'job.autoscaler.control-loop.interval=500 ms',
      'job.autoscaler.metrics.window=2 s',
      'job.autoscaler.stabilization.interval=1 s',
    ];
    jm = new SluiceProcess([
      'jobmanager',
      ...common,
      '-D',
      'rest.port=0',
      ...autoscaler.flatMap((d) => ['-D', d]),
    ]);
    url = String((await jm.waitForMessage('REST API listening')).url);
    tm = new SluiceProcess(['taskmanager', ...common, '--slots', '2']);
    await tm.waitForMessage('registered at ResourceManager');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(20_000);
  });

  afterAll(async () => {
    await browser?.close();
    await tm?.stop();
    await jm?.stop();
    await nats?.stop();
  });

  it('serves the page and its assets at / and /web/, and leaves the API alone', async () => {
    const index = await fetch(`${url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await index.text()).toContain('<script type="module" src="/web/app.js">');
    const script = await fetch(`${url}/web/app.js`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await fetch(`${url}/web/style.css`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
    const missing = await fetch(`${url}/web/nothing.js`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ errors: ['Not found: /web/nothing.js'] });
    expect((await fetch(`${url}/web/../package.json`)).status).toBe(404);
    expect((await fetch(`${url}/`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`${url}/overview`)).headers.get('content-type')).toContain('application/json');
  });

  it('shows the cluster, its TaskManager and the JobManager that serves it', async () => {
    const overview = await api('/overview');
    await page.goto(`${url}/`);
    await expect
      .poll(() => page.locator('#served-by').textContent())
      .toContain(`Served by JobManager ${overview['jobmanager-id']} · cluster web`);
    // Which JobManager leads (from GET /leader): this one, as there is no high availability.
    await expect
      .poll(() => page.getByTestId('leader').textContent())
      .toBe(`Leader: JobManager ${overview['jobmanager-id']} (no high availability)`);
    await page.getByRole('heading', { name: 'Cluster overview' }).waitFor();
    const card = (label: string) => page.locator('.card', { has: page.getByText(label, { exact: true }) });
    expect(await card('TaskManagers').locator('.value').textContent()).toBe('1');
    expect(await card('Slots total').locator('.value').textContent()).toBe('2');
    await shot('01-overview');

    await page.getByRole('link', { name: 'TaskManagers' }).click();
    const { taskmanagers } = await api('/taskmanagers');
    const row = page.getByRole('row', { name: new RegExp(taskmanagers[0].id) });
    await row.waitFor();
    expect(await row.getByRole('cell').allTextContents()).toEqual([
      taskmanagers[0].id,
      taskmanagers[0].host,
      String(tm.pid),
      '2',
      '2',
      expect.stringMatching(/ago$/),
    ]);
    await shot('02-taskmanagers');
  });

  /** Uploads the fixture (once) and runs it with `args` at parallelism 2; returns the job id. */
  async function submit(args: string, shotName?: string): Promise<string> {
    await page.getByRole('link', { name: 'Submit a job' }).click();
    await page.getByRole('heading', { name: 'Submit a job' }).waitFor();
    await page.getByLabel('Job file', { exact: true }).setInputFiles(FIXTURE);
    await page.getByRole('button', { name: 'Upload' }).click();
    await page
      .getByRole('status')
      .getByText(/^Uploaded live-words\.ts as [0-9a-f]{16}\.$/)
      .waitFor();
    await page.getByLabel(/^Parallelism/).fill('2');
    await page.getByLabel('Program arguments', { exact: true }).fill(args);
    if (shotName) await shot(shotName);
    await page.getByRole('button', { name: 'Run job' }).click();
    await page.waitForURL(/#\/jobs\/[0-9a-f]{32}$/, { timeout: 60_000 });
    return /#\/jobs\/([0-9a-f]{32})$/.exec(page.url())![1]!;
  }

  it('runs an uploaded job: RUNNING with its graph, then FINISHED with record counts', async () => {
    const jobId = await submit('4000 500', '03-submit');
    await expect.poll(() => jobState().textContent(), { timeout: 15_000 }).toBe('RUNNING');
    // Tasks report RUNNING once initialized, a moment after the job: wait for every vertex.
    await expect
      .poll(async () => (await api(`/jobs/${jobId}`)).vertices.map((v: { status: string }) => v.status), {
        timeout: 15_000,
      })
      .toEqual(['RUNNING', 'RUNNING']);
    const job = await api(`/jobs/${jobId}`);
    expect(job.parallelism).toBe(2);
    const graph = page.getByRole('img', { name: /^Job graph with \d+ vertices$/ });
    await expect
      .poll(() => graph.getAttribute('aria-label'))
      .toBe(`Job graph with ${job.vertices.length} vertices`);
    expect(job.vertices.length).toBeGreaterThanOrEqual(2);
    expect(await graph.locator('g.vertex').count()).toBe(job.vertices.length);
    for (const v of job.vertices) {
      const box = graph.locator(`g.vertex[data-vertex-id="${v.id}"]`);
      // The page polls on its own: it shows the same state at its next refresh.
      await expect
        .poll(() => box.locator('title').textContent(), { timeout: 10_000 })
        .toBe(`${v.name} (parallelism 2, ${v.status})`);
    }
    expect(job.vertices.map((v: { name: string }) => v.name).join(' ')).toContain('Tokenizer');
    // Edges come from the job's plan, each labelled with its partitioner.
    const inputs = (job.plan.nodes as Array<{ inputs: unknown[] }>).reduce(
      (n, node) => n + node.inputs.length,
      0,
    );
    expect(inputs).toBeGreaterThan(0);
    expect(await graph.locator('g.edge').count()).toBe(inputs);
    expect(await graph.locator('g.edge text').allTextContents()).toContain('HASH');
    await page.getByText('No checkpoints yet.').waitFor();
    await page.getByText('No exceptions.').waitFor();
    // Backpressure (share of the last interval, and the total) and the watermark per vertex: this job has
    // no event time, so no watermark.
    const vertices = page.getByRole('table', { name: 'Records in and out per vertex' });
    expect(await vertices.locator('th').allTextContents()).toEqual(
      expect.arrayContaining(['Backpressured', 'Watermark']),
    );
    await expect
      .poll(async () => (await api(`/jobs/${jobId}`)).vertices[0].metrics['backpressured-time-ms'])
      .toBeGreaterThanOrEqual(0);
    await expect.poll(() => vertices.getByText(/ms total/).count(), { timeout: 10_000 }).toBeGreaterThan(0);
    await shot('04-job-running');

    // The final counts, reported when the tasks finish.
    await expect.poll(() => jobState().textContent(), { timeout: 30_000 }).toBe('FINISHED');
    // All input ended: every vertex reached the end of event time.
    await page
      .getByRole('table', { name: 'Records in and out per vertex' })
      .getByText('end of input')
      .first()
      .waitFor();
    const finished = await api(`/jobs/${jobId}`);
    const source = finished.vertices[0];
    expect(source.metrics['write-records']).toBeGreaterThan(4000); // two words per generated line
    const row = vertexRow(source.name);
    await expect
      .poll(async () => (await row.getByRole('cell').allTextContents()).slice(4, 6))
      .toEqual([
        source.metrics['read-records'] === undefined
          ? '—'
          : source.metrics['read-records'].toLocaleString('en-US'),
        source.metrics['write-records'].toLocaleString('en-US'),
      ]);
    const last = finished.vertices.at(-1);
    expect(last.metrics['read-records']).toBeGreaterThan(0);
    expect(await page.getByRole('button', { name: 'Cancel job' }).isDisabled()).toBe(true);
    await shot('05-job-finished');
  });

  it('takes a savepoint from the page, shows its path, and cancels the running job', async () => {
    const jobId = await submit('unbounded 200');
    await expect.poll(() => jobState().textContent(), { timeout: 15_000 }).toBe('RUNNING');
    expect(await page.getByRole('heading', { level: 2 }).textContent()).toBe(
      'live words (unbounded at 200/s)',
    );
    // Live record counts (reported with the TaskManagers' heartbeats) while the job runs.
    const { vertices } = await api(`/jobs/${jobId}`);
    const counts = async (name: string) =>
      (await vertexRow(name).getByRole('cell').allTextContents())
        .slice(4, 6)
        .map((c) => Number(c.replace(/,/g, '')));
    await expect
      .poll(async () => (await counts(vertices[0].name))[1], { timeout: 15_000 })
      .toBeGreaterThan(0);
    await expect
      .poll(async () => (await counts(vertices.at(-1).name))[0], { timeout: 15_000 })
      .toBeGreaterThan(0);
    expect(await jobState().textContent()).toBe('RUNNING');
    const seen = (await counts(vertices[0].name))[1]!;
    await shot('06-job-running-live-counts');

    // The autoscaler (advice only) evaluated the job: its state, and each vertex's inputs.
    const inputs = page.getByRole('table', { name: /^Inputs of the decision of / });
    await inputs.waitFor({ timeout: 20_000 });
    expect(await page.getByTestId('autoscaler-state').textContent()).toMatch(/^(no-change|advice|waiting)$/);
    expect(await page.getByLabel('Autoscaler state').textContent()).toContain('advice only');
    const busy = await inputs
      .getByRole('row', { name: new RegExp(`^${escapeRegExp(vertices[0].name)}`) })
      .getByRole('cell')
      .nth(3)
      .textContent();
    expect(Number(busy?.replace(/,/g, ''))).toBeGreaterThan(0);
    await page.getByRole('table', { name: 'Recent autoscaler decisions' }).waitFor();
    await shot('06b-autoscaler');

    await page.getByRole('button', { name: 'Trigger savepoint' }).click();
    const notice = page.getByRole('status').filter({ hasText: 'Savepoint completed' });
    await notice.waitFor({ timeout: 30_000 });
    const path = /Savepoint completed: (\S+)/.exec((await notice.textContent()) ?? '')?.[1];
    expect(path).toMatch(new RegExp(`^savepoints/savepoint-${jobId.slice(0, 6)}-[0-9a-f]{12}$`));
    // The checkpoint history (REST, as the dashboard reads it) lists it as a completed savepoint.
    const checkpoints = await api(`/jobs/${jobId}/checkpoints`);
    expect(checkpoints.latest.savepoint.external_path).toBe(path);
    expect(checkpoints.counts.completed).toBeGreaterThanOrEqual(1);
    await shot('07-savepoint');

    expect((await api(`/jobs/${jobId}`)).vertices[0].metrics['write-records']).toBeGreaterThanOrEqual(seen);

    // Rescaled to 1 over REST: the page shows the new parallelism and the rescale.
    const requirements = await api(`/jobs/${jobId}/resource-requirements`);
    const toOne = Object.fromEntries(
      Object.keys(requirements).map((id) => [id, { parallelism: { lowerBound: 1, upperBound: 1 } }]),
    );
    const put = await fetch(`${url}/jobs/${jobId}/resource-requirements`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(toOne),
    });
    expect(put.status, await put.clone().text()).toBe(200);
    const summary = page.getByTestId('rescale-summary');
    await expect
      .poll(() => summary.textContent(), { timeout: 15_000 })
      .toMatch(
        /^Scheduler mode default · parallelism v0 1 \(max 128\).* · last rescale .*, \d+ ms downtime$/,
      );
    const rescaleRow = page.getByRole('table', { name: 'Rescales, newest first' }).getByRole('row').nth(1);
    expect((await rescaleRow.getByRole('cell').allTextContents()).slice(1, 4)).toEqual([
      'user',
      expect.stringMatching(/→ 1/),
      'COMPLETED',
    ]);
    await expect.poll(() => jobState().textContent(), { timeout: 15_000 }).toBe('RUNNING');
    await shot('07b-rescaled');

    await page.getByRole('button', { name: 'Cancel job' }).click();
    // Cancelling takes a moment on a loaded machine: wait for the state with a deadline, not a fixed time.
    await expect.poll(() => jobState().textContent(), { timeout: 15_000 }).toBe('CANCELED');
    expect((await api(`/jobs/${jobId}`)).state).toBe('CANCELED');
    await page.getByText(/^Cancellation requested: the job is (CANCELLING|CANCELED)\.$/).waitFor();
    await shot('08-job-canceled');

    await page.getByRole('link', { name: 'Jobs', exact: true }).click();
    await page.getByRole('row', { name: /live words \(unbounded at 200\/s\) CANCELED/ }).waitFor();
    await page.getByRole('row', { name: /live words \(4000 at 500\/s\) FINISHED/ }).waitFor();
    await shot('09-jobs');
    await page.getByRole('link', { name: 'Overview' }).click();
    const canceled = page.locator('.card', { has: page.getByText('Canceled', { exact: true }) });
    await expect.poll(() => canceled.locator('.value').textContent(), { timeout: 15_000 }).toBe('1');
    await shot('10-overview-after');
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
