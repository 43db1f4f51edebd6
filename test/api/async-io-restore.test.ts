/**
 * Async I/O through a restart from a checkpoint (local environment, real nats-server): every request takes
 * 30–60 ms, so each checkpoint holds requests in flight; the job fails once after checkpoints committed,
 * restarts from the latest one, and the exactly-once file sink ends with every result exactly once.
 */
import { readdirSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeLocalCluster } from '../../src/execution/local-bridge.js';
import {
  AsyncDataStream,
  GeneratorSource,
  StreamExecutionEnvironment,
  TextFileSink,
} from '../../src/index.js';
import { type NatsServerHandle, startNatsServer } from '../../src/nats/launcher.js';
import { prng } from '../operators/harness.js';

describe('async I/O through a restart from a checkpoint', () => {
  let nats: NatsServerHandle;
  let root: string;

  beforeAll(async () => {
    // Restart quickly (the local cluster reads SLUICE_* when the first job starts).
    process.env.SLUICE_RESTART_STRATEGY_EXPONENTIAL_DELAY_INITIAL_BACKOFF = '100 ms';
    nats = await startNatsServer();
    root = await mkdtemp(join(tmpdir(), 'sluice-async-restore-'));
  });
  afterAll(async () => {
    await closeLocalCluster();
    await nats?.stop();
    await rm(root, { recursive: true, force: true });
  });

  for (const mode of ['ordered', 'unordered'] as const) {
    it(`${mode}: requests in flight at the checkpoint are invoked again; no result lost or doubled`, async () => {
      const COUNT = 3_000;
      const dir = join(root, mode);
      const invocations = new Map<number, number>();
      let failed = false;
      let seen = 0;
      const committed = () => readdirSync(dir).filter((f) => f.startsWith('part-')).length;

      const env = StreamExecutionEnvironment.createLocalEnvironment(2, nats.url);
      env.enableCheckpointing(150);
      const numbers = env
        .fromSource(new GeneratorSource(COUNT, (i) => i, { ratePerSecond: 1_500 }))
        .uid('numbers');
      const wait = mode === 'ordered' ? AsyncDataStream.orderedWait : AsyncDataStream.unorderedWait;
      wait(
        numbers,
        async (x: number) => {
          invocations.set(x, (invocations.get(x) ?? 0) + 1);
          await sleep(30 + Math.floor(prng(x + 11)() * 30));
          return [x * 3];
        },
        10_000,
        40,
      )
        .uid('lookup')
        .map((y) => {
          // Once two checkpoints have committed output (both subtasks' files), fail once.
          if (!failed && ++seen % 50 === 0 && committed() >= 4) {
            failed = true;
            throw new Error('injected failure after checkpoints');
          }
          return y;
        })
        .uid('fail-once')
        .sinkTo(new TextFileSink<number>(dir))
        .uid('out');
      await env.execute(`async restore ${mode}`);

      expect(failed).toBe(true);
      const values: number[] = [];
      for (const f of await readdir(dir)) {
        if (f.startsWith('.')) continue;
        for (const line of (await readFile(join(dir, f), 'utf8')).split('\n'))
          if (line) values.push(Number(line));
      }
      values.sort((a, b) => a - b);
      expect(values).toEqual([...Array(COUNT).keys()].map((x) => x * 3));
      // Restarted from a checkpoint, not from the beginning: the first inputs were invoked once, the ones
      // after the checkpoint (and those in flight in it) again.
      expect(invocations.get(0)).toBe(1);
      expect(invocations.get(1)).toBe(1);
      expect([...invocations.values()].filter((n) => n > 1).length).toBeGreaterThan(0);
    }, 90_000);
  }
});
