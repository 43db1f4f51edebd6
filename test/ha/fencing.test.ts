import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/common/errors.js';
import { isLeadershipLost, LeadershipLostError } from '../../src/ha/errors.js';
import { EpochFence } from '../../src/ha/fencing.js';

describe('EpochFence', () => {
  it('accepts the current and newer epochs, refuses older ones and says what superseded them', () => {
    const advances: [number, number][] = [];
    const fence = new EpochFence({ onAdvance: (epoch, previous) => advances.push([epoch, previous]) });
    expect(fence.current).toBeUndefined();
    expect(fence.check(5)).toEqual({ accepted: true, epoch: 5, advanced: true, previous: undefined });
    expect(fence.accept(5)).toBe(true); // the same leader again
    expect(fence.check(9)).toEqual({ accepted: true, epoch: 9, advanced: true, previous: 5 });
    expect(fence.check(5)).toEqual({ accepted: false, epoch: 5, supersededBy: 9 });
    expect(fence.accept(8)).toBe(false);
    expect(fence.current).toBe(9);
    expect(fence.check(9)).toMatchObject({ accepted: true, advanced: false });
    // The first epoch is not an advance (nothing older to cancel); later ones are.
    expect(advances).toEqual([[9, 5]]);
  });

  it('starts from a known epoch and throws LEADERSHIP_LOST from require()', () => {
    const fence = new EpochFence({ initial: 12 });
    expect(() => fence.require(12)).not.toThrow();
    let caught: unknown;
    try {
      fence.require(11);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(LeadershipLostError);
    expect(isLeadershipLost(caught)).toBe(true);
    expect(caught).toMatchObject({
      code: ErrorCode.LeadershipLost,
      epoch: 11,
      supersededBy: 12,
      retryable: false,
    });
    expect((caught as LeadershipLostError).toWire().details).toEqual({ epoch: 11, supersededBy: 12 });
  });

  it('refuses things that are not epochs', () => {
    const fence = new EpochFence();
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) {
      expect(() => fence.check(bad)).toThrow(expect.objectContaining({ code: ErrorCode.InvalidMessage }));
    }
    expect(fence.current).toBeUndefined();
    expect(() => new EpochFence({ initial: -3 })).toThrow(/not an epoch/);
  });
});
