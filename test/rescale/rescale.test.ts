/**
 * Rescaling a running job on a cluster of processes (a JobManager, two TaskManagers with 2 slots each):
 * the HA chaos test's job (an unbounded generator → keyBy → a keyed running count → the exactly-once
 * JetStream sink, checkpoints every 300 ms) is rescaled with `sluice rescale -p 4`, then per vertex over REST
 * (`PUT /jobs/:jobid/resource-requirements`: source 1, count 3), then down to 1 with `sluice rescale`, each
 * while it writes; then cancelled. Every output record must be there exactly once (per key the counts
 * 1..n each once, each counting another event of that key), and each rescale shows in `sluice status`,
 * REST and the rescale history. New subtasks restore some of their state from their TaskManager's local
 * copies (local recovery, on by default) — the exactly-once check covers that path.
 *
 * Bad input, each with its own clear error and the job unchanged: a parallelism of 0, one above the max
 * parallelism (128), an unknown vertex, a job id nobody knows, an ended job, and a rescale while another
 * one runs (RESCALE_IN_PROGRESS).
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parallelismOf, startTestCluster, type TestCluster } from '../harness/cluster.js';
import { exactlyOnceProblems } from '../harness/exactly-once.js';
import { type SluiceProcess, sluice } from '../harness/processes.js';

const JOB = fileURLToPath(new URL('../fixtures/jobs/chaos-count.ts', import.meta.url));
const KEYS = 8;

describe('rescaling a running job', () => {
  let cluster: TestCluster;
  let common: string[];
  let jm: SluiceProcess;
  let rest: string;

  beforeAll(async () => {
    cluster = await startTestCluster({
      clusterId: 'rescale',
      settings: ['heartbeat.interval=200 ms', 'heartbeat.timeout=2 s'],
      jobManagerSettings: ['rest.port=0'],
      taskManagers: { count: 2, slots: 2 },
      outputStreams: [{ name: 'RESCALED', subject: 'rescale.out' }],
    });
    common = cluster.common;
    jm = cluster.leader();
    rest = cluster.rest!;
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  const status = (jobId: string) => cluster.status(jobId);
  const parallelism = parallelismOf;
  /** Waits until a checkpoint completes after now (output committed at the current parallelism). */
  const nextCheckpoint = () => cluster.nextCheckpoint();
  const put = (jobId: string, body: unknown) =>
    fetch(`${rest}/jobs/${jobId}/resource-requirements`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('up with -p, per vertex over REST, down again: exactly-once output; bad input refused', async () => {
    const submitted = await sluice([
      'run',
      ...common,
      '-d',
      JOB,
      'rescale.out',
      String(KEYS),
      '150',
      '300',
      '2',
    ]);
    expect(submitted.code, submitted.stderr).toBe(0);
    const jobId = /JobID ([0-9a-f]{32})/.exec(submitted.stdout)![1]!;
    await jm.waitForMessage('checkpoint 2 completed', 30_000);
    expect(parallelism(await status(jobId))).toEqual({ v0: 2, v1: 2 });

    // Bad input first: each refused with its own message, nothing changes.
    const zero = await sluice(['rescale', ...common, jobId, '-p', '0']);
    expect(zero.code).not.toBe(0);
    expect(zero.stderr).toMatch(/parallelism 0 is not a whole number of at least 1/);
    const tooMany = await sluice(['rescale', ...common, jobId, '-p', '129']);
    expect(tooMany.code).not.toBe(0);
    expect(tooMany.stderr).toMatch(/parallelism 129 is above its max parallelism 128/);
    const noVertex = await sluice(['rescale', ...common, jobId, '--vertex', 'v9=2']);
    expect(noVertex.stderr).toMatch(/has no vertex 'v9'/);
    const notANumber = await sluice(['rescale', ...common, jobId, '-p', 'four']);
    expect(notANumber.stderr).toMatch(/'four' is not a whole number/);
    const unknown = await sluice(['rescale', ...common, 'ab'.repeat(16), '-p', '2']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/job (ab){16} is not known to this JobManager/);
    const restZero = await put(jobId, { v0: { parallelism: { lowerBound: 1, upperBound: 0 } } });
    expect(restZero.status).toBe(400);
    expect(JSON.stringify(await restZero.json())).toMatch(/parallelism 0/);
    expect(
      (await put('cd'.repeat(16), { v0: { parallelism: { lowerBound: 1, upperBound: 2 } } })).status,
    ).toBe(404);
    expect((await put(jobId, { v0: { parallelism: 2 } })).status).toBe(400);
    expect(parallelism(await status(jobId))).toEqual({ v0: 2, v1: 2 });

    // Two rescales asked at once over REST: one runs, the other is refused (not queued).
    const both = await Promise.all([
      put(jobId, {
        v0: { parallelism: { lowerBound: 1, upperBound: 3 } },
        v1: { parallelism: { lowerBound: 1, upperBound: 3 } },
      }),
      put(jobId, {
        v0: { parallelism: { lowerBound: 1, upperBound: 4 } },
        v1: { parallelism: { lowerBound: 1, upperBound: 4 } },
      }),
    ]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(JSON.stringify(await both.find((r) => r.status === 409)!.json())).toMatch(
      /already being rescaled/,
    );
    await nextCheckpoint();

    // Every vertex to 4 with the CLI (from 3, or nothing to do when the 4 above won).
    const up = await sluice(['rescale', ...common, jobId, '-p', '4']);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/rescaled: v0 3 -> 4, v1 3 -> 4|already runs at that parallelism/);
    const atFour = await status(jobId);
    expect(parallelism(atFour)).toEqual({ v0: 4, v1: 4 });
    expect(atFour.status).toBe('RUNNING');
    expect(atFour.vertices.flatMap((v) => v.subtasks).every((t) => t.state === 'RUNNING')).toBe(true);
    await nextCheckpoint();

    // Per vertex over REST (FLIP-291's shape): the source to 1, the count to 3.
    const restUp = await put(jobId, {
      v0: { parallelism: { lowerBound: 1, upperBound: 1 } },
      v1: { parallelism: { lowerBound: 1, upperBound: 3 } },
    });
    expect(restUp.status, await restUp.clone().text()).toBe(200);
    const got = (await (await fetch(`${rest}/jobs/${jobId}/resource-requirements`)).json()) as Record<
      string,
      { parallelism: { upperBound: number } }
    >;
    expect(got.v0!.parallelism.upperBound).toBe(1);
    expect(got.v1!.parallelism.upperBound).toBe(3);
    await nextCheckpoint();

    // Down to 1.
    const down = await sluice(['rescale', ...common, jobId, '-p', '1']);
    expect(down.code, down.stderr).toBe(0);
    expect(parallelism(await status(jobId))).toEqual({ v0: 1, v1: 1 });
    await nextCheckpoint();
    await nextCheckpoint();

    const history = (await (await fetch(`${rest}/jobs/${jobId}/rescales`)).json()) as {
      rescales: Array<{ status: string; cause: string; downtimeMs: number | null }>;
    };
    expect(history.rescales.length).toBeGreaterThanOrEqual(3);
    expect(history.rescales.every((r) => r.status === 'COMPLETED')).toBe(true);
    expect(history.rescales.every((r) => r.cause === 'user' && (r.downtimeMs ?? -1) >= 0)).toBe(true);

    expect((await sluice(['cancel', ...common, jobId])).code).toBe(0);
    await jm.waitForMessage('job CANCELED', 20_000);
    const ended = await sluice(['rescale', ...common, jobId, '-p', '2']);
    expect(ended.code).not.toBe(0);
    expect(ended.stderr).toMatch(/has already ended \(CANCELED\)/);

    // Local recovery: new subtasks restored state their TaskManager kept from the checkpoint (the rescale
    // placed them where their key groups were), without reading it from the object store.
    const restores = cluster.tms.flatMap((tm) => tm.lines.filter((l) => l.msg === 'state restored'));
    expect(restores.some((l) => Number(l.localBytes) > 0)).toBe(true);

    const { records, problems, perKey } = await exactlyOnceProblems(cluster.nc, 'RESCALED', KEYS);
    expect(problems).toEqual([]);
    expect(perKey.size).toBe(KEYS);
    expect(records).toBeGreaterThan(100);
  }, 180_000);
});
