/**
 * Barrier alignment over a task's input channels: exactly-once blocks each channel from its barrier until
 * all have it (ended channels count as aligned); at-least-once blocks nothing; newer barriers abandon an
 * older alignment; late and repeated barriers are ignored.
 */
import { describe, expect, it } from 'vitest';
import { BarrierAligner } from '../../src/runtime/task/barrier-aligner.js';

function setup(channels: number, exactlyOnce: boolean) {
  const events: string[] = [];
  const blocked = new Set<number>();
  const aligner = new BarrierAligner(
    channels,
    exactlyOnce,
    {
      block: (c) => {
        blocked.add(c);
        events.push(`block ${c}`);
      },
      unblockAll: () => {
        blocked.clear();
        events.push('unblock');
      },
    },
    (id, target) => events.push(`snapshot ${id} ${target}`),
  );
  return { aligner, events, blocked };
}

describe('BarrierAligner', () => {
  it('exactly-once: blocks each channel at its barrier, snapshots once all have it, then unblocks', () => {
    const { aligner, events, blocked } = setup(3, true);
    aligner.onBarrier(0, 1, 't1');
    aligner.onBarrier(2, 1, 't1');
    expect([...blocked].sort()).toEqual([0, 2]);
    expect(events).not.toContain('snapshot 1 t1');
    expect(aligner.pending).toBe(1);
    aligner.onBarrier(1, 1, 't1');
    expect(events.slice(-2)).toEqual(['snapshot 1 t1', 'unblock']);
    expect(blocked.size).toBe(0);
    expect(aligner.pending).toBeUndefined();
  });

  it('at-least-once: never blocks, snapshots at the last barrier', () => {
    const { aligner, events } = setup(2, false);
    aligner.onBarrier(1, 4, 't4');
    aligner.onBarrier(0, 4, 't4');
    expect(events).toEqual(['snapshot 4 t4']);
  });

  it('an ended channel counts as aligned, before or after the other barriers', () => {
    const a = setup(2, true);
    a.aligner.onEnd(1);
    a.aligner.onBarrier(0, 1, 't');
    expect(a.events).toContain('snapshot 1 t');
    const b = setup(2, true);
    b.aligner.onBarrier(0, 2, 't');
    expect(b.events).not.toContain('snapshot 2 t');
    b.aligner.onEnd(1);
    expect(b.events).toContain('snapshot 2 t');
  });

  it('a newer barrier abandons an older alignment; older and repeated barriers are ignored', () => {
    const { aligner, events } = setup(2, true);
    aligner.onBarrier(0, 1, 'old');
    aligner.onBarrier(0, 2, 'new');
    expect(events).toEqual(['block 0', 'unblock', 'block 0']);
    aligner.onBarrier(1, 1, 'old'); // checkpoint 1 was abandoned: its late barrier does nothing
    expect(events).not.toContain('snapshot 1 old');
    aligner.onBarrier(1, 2, 'new');
    expect(events).toContain('snapshot 2 new');
    const count = events.length;
    aligner.onBarrier(0, 2, 'new'); // checkpoint 2 is done
    aligner.onBarrier(1, 1, 'old');
    expect(events.length).toBe(count);
  });
});
