/**
 * Exactly-once under TaskManager failures, shared by the test (small) and `npm run chaos:tm` (large):
 * a JetStream stream of numbered events → keyed sum (parallelism 2 over two TaskManager processes with one
 * slot each) → exactly-once JetStream sink. TaskManagers are SIGKILLed while the job runs, a replacement
 * is started each time; afterwards the sink's stream must hold, per key, the counts 1..n exactly once and
 * the last sum must be the key's total.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { SluiceProcess, sluice } from '../harness/processes.js';

const JOB = fileURLToPath(new URL('../fixtures/jobs/exactly-once-sum.ts', import.meta.url));
const KEYS = 100;

export interface ChaosOptions {
  events: number;
  /** TaskManager kills, spread over the run by output progress. */
  kills: number;
  /** The job busy-waits 1 ms every this many records per subtask (0: full speed). */
  spinEvery: number;
  checkpointIntervalMs: number;
  log?: (line: string) => void;
}

export interface ChaosResult {
  events: number;
  outputRecords: number;
  duplicates: number;
  missing: number;
  wrongSums: number;
  kills: Array<{ atOutput: number; recoveredMs: number }>;
  restarts: number;
  durationMs: number;
}

export async function runTaskManagerChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  let nats: NatsServerHandle | undefined;
  let nc: NatsConnection | undefined;
  let jm: SluiceProcess | undefined;
  const tms: SluiceProcess[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'sluice-tm-chaos-'));
  try {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'events', subjects: ['events.>'] });
    await jsm.streams.add({ name: 'sums', subjects: ['sums.>'], duplicate_window: 120_000_000_000 });
    await publishEvents(nc, options.events);
    log(`published ${options.events} events`);

    const common = [
      '--nats',
      nats.url,
      '--cluster-id',
      'chaos',
      '-D',
      'heartbeat.interval=200 ms',
      '-D',
      'heartbeat.timeout=1500 ms',
    ];
    jm = new SluiceProcess([
      'jobmanager',
      ...common,
      '-D',
      'restart-strategy.exponential-delay.initial-backoff=100 ms',
      '-D',
      'restart-strategy.exponential-delay.max-backoff=1 s',
      '-D',
      'restart-strategy.exponential-delay.attempts-before-reset-backoff=100',
    ]);
    await jm.waitForMessage('JobManager started');
    const startTm = () => {
      const tm = new SluiceProcess(['taskmanager', ...common, '--slots', '1']);
      tms.push(tm);
      return tm.waitForMessage('registered at ResourceManager');
    };
    await Promise.all([startTm(), startTm()]);
    const submitted = await sluice([
      'run',
      ...common,
      '-d',
      JOB,
      nats.url,
      'events',
      'sums.out',
      String(options.checkpointIntervalMs),
      String(options.spinEvery),
    ]);
    if (submitted.code !== 0) throw new Error(`submission failed: ${submitted.stderr}`);
    const jobId = /JobID ([0-9a-f]{32})/.exec(submitted.stdout)![1]!;

    const kills: ChaosResult['kills'] = [];
    for (let k = 1; k <= options.kills; k++) {
      // Kill when the committed output passed k/(kills+1) of the events, after a checkpoint completed.
      const threshold = Math.floor((options.events * k) / (options.kills + 1));
      await waitFor(
        async () => (await messageCount(jsm)) >= threshold,
        120_000,
        `output to reach ${threshold}`,
      );
      const victim = tms.find((t) => t.child.exitCode === null && t.child.signalCode === null)!;
      const killedAt = Date.now();
      const atOutput = await messageCount(jsm);
      // Counted before the kill: the restart may well happen before the replacement has registered.
      const restoredBefore = jm.lines.filter(
        (l) => typeof l.msg === 'string' && /^restoring from checkpoint/.test(l.msg),
      ).length;
      const victimId = victim.lines.find((l) => l.msg === 'registered at ResourceManager')?.taskManager;
      log(`kill ${k}: SIGKILL TaskManager ${String(victimId)} (pid ${victim.child.pid})`);
      victim.child.kill('SIGKILL');
      await startTm();
      const restores = () =>
        jm!.lines.filter((l) => typeof l.msg === 'string' && /^restoring from checkpoint/.test(l.msg)).length;
      await waitFor(
        async () => restores() > restoredBefore && (await jobRunning(common, jobId)),
        60_000,
        'the job to restore from a checkpoint and run again after a kill',
        () =>
          jm!.lines
            .filter((l) => !(typeof l.msg === 'string' && /^checkpoint \d+ completed$/.test(l.msg)))
            .slice(-40)
            .map((l) => JSON.stringify(l).slice(0, 400))
            .join('\n'),
      );
      kills.push({ atOutput, recoveredMs: Date.now() - killedAt });
      log(`kill ${k}: at ${atOutput} output records, running again after ${Date.now() - killedAt} ms`);
    }
    await waitFor(
      async () => (await messageCount(jsm)) >= options.events,
      180_000,
      `all ${options.events} results`,
    );
    // Anything more would be a duplicate: give late commits a moment to show up (bounded by a checkpoint).
    await new Promise((r) => setTimeout(r, 2 * options.checkpointIntervalMs + 500));
    const status = JSON.parse((await sluice(['status', ...common, '--json', jobId])).stdout) as {
      restarts: number;
    };
    await sluice(['cancel', ...common, jobId]);
    const check = await checkOutput(nc, options.events);
    return {
      events: options.events,
      ...check,
      kills,
      restarts: status.restarts,
      durationMs: Date.now() - started,
    };
  } finally {
    await Promise.all(tms.map((t) => t.stop()));
    await jm?.stop();
    await nc?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function publishEvents(nc: NatsConnection, events: number): Promise<void> {
  const js = jetstream(nc);
  const encoder = new TextEncoder();
  const window: Array<Promise<unknown>> = [];
  for (let i = 0; i < events; i++) {
    window.push(js.publish(`events.${i % 10}`, encoder.encode(JSON.stringify({ i, key: i % KEYS, v: i }))));
    if (window.length >= 2_000) await Promise.all(window.splice(0));
  }
  await Promise.all(window);
}

async function messageCount(jsm: JetStreamManager): Promise<number> {
  return (await jsm.streams.info('sums')).state.messages;
}

async function jobRunning(common: string[], jobId: string): Promise<boolean> {
  const r = await sluice(['status', ...common, '--json', jobId]);
  return r.code === 0 && (JSON.parse(r.stdout) as { status: string }).status === 'RUNNING';
}

async function waitFor(
  test: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
  context: () => string = () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await test())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${context()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Reads the whole output stream and checks it: per key the counts 1..n once each, the last sum the total. */
async function checkOutput(
  nc: NatsConnection,
  events: number,
): Promise<{ outputRecords: number; duplicates: number; missing: number; wrongSums: number }> {
  const js = jetstream(nc);
  const consumer = await js.consumers.get('sums');
  const seen = new Map<number, Map<number, number>>();
  let outputRecords = 0;
  const decoder = new TextDecoder();
  const total = (await (await jetstreamManager(nc)).streams.info('sums')).state.messages;
  const messages = await consumer.fetch({ max_messages: total, expires: 10_000 });
  for await (const m of messages) {
    const { key, n, sum } = JSON.parse(decoder.decode(m.data)) as { key: number; n: number; sum: number };
    outputRecords++;
    let byN = seen.get(key);
    if (!byN) {
      byN = new Map();
      seen.set(key, byN);
    }
    byN.set(n, byN.has(n) ? -1 : sum);
    if (outputRecords >= total) break;
  }
  let duplicates = 0;
  let missing = 0;
  let wrongSums = 0;
  for (let key = 0; key < KEYS; key++) {
    const expectedCount = Math.floor(events / KEYS) + (key < events % KEYS ? 1 : 0);
    let expectedTotal = 0;
    for (let i = key; i < events; i += KEYS) expectedTotal += i;
    const byN = seen.get(key) ?? new Map<number, number>();
    for (let n = 1; n <= expectedCount; n++) {
      const s = byN.get(n);
      if (s === undefined) missing++;
      else if (s === -1) duplicates++;
    }
    for (const n of byN.keys()) if (n < 1 || n > expectedCount) duplicates++;
    if (byN.get(expectedCount) !== expectedTotal) wrongSums++;
  }
  // A record counted twice at the same n shows as a duplicate; any surplus record too.
  duplicates += Math.max(0, outputRecords - events - duplicates);
  return { outputRecords, duplicates, missing, wrongSums };
}
