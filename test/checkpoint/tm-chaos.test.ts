/**
 * Exactly-once under failure (short run; `npm run chaos:tm` runs the large one): three TaskManagers are
 * SIGKILLed while a keyed sum runs from a JetStream stream into an exactly-once JetStream sink; the output
 * holds every expected result once, none twice, and every key's final sum.
 */
import { describe, expect, it } from 'vitest';
import { runTaskManagerChaos } from './tm-chaos.js';

describe('exactly-once under TaskManager failures', () => {
  it('three SIGKILLed TaskManagers: every result exactly once, no gap, no duplicate', async () => {
    const result = await runTaskManagerChaos({
      events: 20_000,
      kills: 3,
      spinEvery: 5,
      checkpointIntervalMs: 200,
      log: (line) => console.log(`[tm-chaos] ${line}`),
    });
    expect(result.kills).toHaveLength(3);
    expect(result.restarts).toBeGreaterThanOrEqual(3);
    expect(result.missing).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(result.wrongSums).toBe(0);
    expect(result.outputRecords).toBe(20_000);
  }, 240_000);
});
