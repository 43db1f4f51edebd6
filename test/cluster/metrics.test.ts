/**
 * Prometheus endpoints of a JobManager and a TaskManager process: scraped while a job runs, the
 * per-operator record counters increase, and the cluster gauges say what runs.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { SluiceProcess, sluice } from '../harness/processes.js';

const JOB = fileURLToPath(new URL('../fixtures/jobs/local-endless.ts', import.meta.url));

/** The value of the first sample of `metric` whose labels include all of `labels`. */
function sample(text: string, metric: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      return Number(line.split(' ').pop());
  }
  return undefined;
}

describe('metrics endpoints', () => {
  let nats: NatsServerHandle;
  let common: string[];
  let jm: SluiceProcess;
  let tm: SluiceProcess;
  let jmUrl: string;
  let tmUrl: string;

  beforeAll(async () => {
    nats = await startNatsServer();
    common = [
      '--nats',
      nats.url,
      '--cluster-id',
      'metrics',
      '-D',
      'metrics.port=0',
      '-D',
      'rest.enabled=false',
    ];
    // Checkpoints every 200 ms for every job of this cluster (the job does not ask for them itself).
    // The autoscaler in advice mode with test-sized windows: it evaluates the job, never rescales it.
    jm = new SluiceProcess([
      'jobmanager',
      ...common,
      '-D',
      'execution.checkpointing.interval=200 ms',
      ...[
        'job.autoscaler.enabled=true',
        'job.autoscaler.scaling.enabled=false',
        'job.autoscaler.control-loop.interval=500 ms',
        'job.autoscaler.metrics.window=2 s',
        'job.autoscaler.stabilization.interval=1 s',
      ].flatMap((d) => ['-D', d]),
    ]);
    jmUrl = String((await jm.waitForMessage('metrics endpoint listening')).url);
    tm = new SluiceProcess(['taskmanager', ...common, '--slots', '2']);
    tmUrl = String((await tm.waitForMessage('metrics endpoint listening')).url);
    await tm.waitForMessage('registered at ResourceManager');
  });

  afterAll(async () => {
    await tm?.stop();
    await jm?.stop();
    await nats?.stop();
  });

  it('shows per-operator counters increasing during a job, and the cluster state', async () => {
    const run = await sluice(['run', ...common, '-d', '-p', '2', JOB]);
    expect(run.code, run.stderr).toBe(0);
    const jobId = /JobID ([0-9a-f]{32})/.exec(run.stdout)![1]!;
    const scrape = async (url: string) => {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      return res.text();
    };
    const mapIn = async () =>
      sample(await scrape(tmUrl), 'sluice_operator_records_in_total', { job: jobId, operator: 'Map' });
    await expect.poll(mapIn, { timeout: 10_000 }).toBeGreaterThan(0);
    const first = (await mapIn())!;
    await expect.poll(mapIn, { timeout: 10_000 }).toBeGreaterThan(first);

    const tmText = await scrape(tmUrl);
    expect(sample(tmText, 'sluice_taskmanager_slots', { state: 'used' })).toBe(2);
    expect(sample(tmText, 'sluice_nats_connected')).toBe(1);
    expect(tmText).toContain('sluice_nodejs_heap_size_total_bytes');
    expect(tmText).toContain('sluice_task_backpressured_seconds_total');
    // Busy time: the source's vertex processes 500 records/s.
    expect(sample(tmText, 'sluice_task_busy_seconds_total', { job: jobId })).toBeGreaterThan(0);

    const jmText = await scrape(jmUrl);
    expect(sample(jmText, 'sluice_jobs', { status: 'RUNNING' })).toBe(1);
    expect(sample(jmText, 'sluice_taskmanagers')).toBe(1);
    expect(sample(jmText, 'sluice_slots', { state: 'used' })).toBe(2);
    expect(sample(jmText, 'sluice_job_restarts', { job: jobId })).toBe(0);
    expect(sample(jmText, 'sluice_jobmanager_leader')).toBe(1);
    const completed = async () =>
      sample(await scrape(jmUrl), 'sluice_job_checkpoints', { job: jobId, state: 'completed' });
    await expect.poll(completed, { timeout: 10_000 }).toBeGreaterThan(1);
    const cpText = await scrape(jmUrl);
    expect(sample(cpText, 'sluice_job_checkpoints', { job: jobId, state: 'failed' })).toBe(0);
    expect(sample(cpText, 'sluice_job_last_checkpoint_duration_seconds', { job: jobId })).toBeGreaterThan(0);
    expect(sample(cpText, 'sluice_job_last_checkpoint_size_bytes', { job: jobId })).toBeGreaterThanOrEqual(0);

    expect((await fetch(jmUrl.replace('/metrics', '/nope'))).status).toBe(404);

    // The autoscaler evaluated the job from its busy time and records: decisions counted, the inputs shown.
    const evaluated = async () => {
      const text = await scrape(jmUrl);
      return (
        (sample(text, 'sluice_autoscaler_decisions_total', { job: jobId, outcome: 'no-change' }) ?? 0) +
        (sample(text, 'sluice_autoscaler_decisions_total', { job: jobId, outcome: 'advice' }) ?? 0)
      );
    };
    await expect.poll(evaluated, { timeout: 15_000 }).toBeGreaterThan(0);
    const asText = await scrape(jmUrl);
    expect(
      sample(asText, 'sluice_autoscaler_decisions_total', { job: jobId, outcome: 'waiting' }),
    ).toBeGreaterThan(0);
    expect(sample(asText, 'sluice_autoscaler_rescales_total', { job: jobId })).toBe(0);
    expect(
      sample(asText, 'sluice_autoscaler_vertex_busy_time_ms_per_second', { job: jobId }),
    ).toBeGreaterThan(0);
    expect(sample(asText, 'sluice_autoscaler_vertex_records_in_per_second', { job: jobId })).toBeGreaterThan(
      100,
    );

    // The same counters reach the JobManager with the heartbeats: job status shows them live.
    const liveIn = async () => {
      const s = JSON.parse((await sluice(['status', ...common, '--json', jobId])).stdout) as {
        vertices: Array<{ accumulators: Record<string, number> }>;
      };
      return Object.entries(s.vertices[0]!.accumulators).find(([k]) => k.endsWith(' records in'))?.[1] ?? 0;
    };
    await expect.poll(liveIn, { timeout: 10_000 }).toBeGreaterThan(0);
    const before = await liveIn();
    await expect.poll(liveIn, { timeout: 10_000 }).toBeGreaterThan(before);
    expect((await sluice(['cancel', ...common, jobId])).code).toBe(0);
  });
});
