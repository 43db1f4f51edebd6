/**
 * Graceful shutdown does not depend on NATS: with the server gone, SIGTERM still ends a JobManager and
 * a TaskManager with exit status 0.
 */
import { describe, expect, it } from 'vitest';
import { startNatsServer } from '../../src/nats/launcher.js';
import { SluiceProcess } from '../harness/processes.js';

describe('shutdown without NATS', () => {
  it('exits 0 on SIGTERM after the NATS server died', async () => {
    const nats = await startNatsServer();
    const common = [
      '--nats',
      nats.url,
      '--cluster-id',
      'nonats',
      '-D',
      'rest.enabled=false',
      '-D',
      'metrics.enabled=false',
    ];
    const jm = new SluiceProcess(['jobmanager', ...common]);
    await jm.waitForMessage('JobManager started');
    const tm = new SluiceProcess(['taskmanager', ...common]);
    await tm.waitForMessage('registered at ResourceManager');
    await nats.stop();
    await jm.waitForMessage('disconnected from NATS');
    expect(await tm.stop(5_000)).toBe(0);
    expect(await jm.stop(5_000)).toBe(0);
  });
});
