import type { SluiceError } from '../../src/common/errors.js';
import type { LeaderContender, LeadershipRevocation } from '../../src/ha/leader-election.js';

/** A contender that records its grants and revocations with monotonic timestamps (`performance.now()`). */
export class RecordingContender implements LeaderContender {
  readonly name: string;
  readonly grants: { epoch: number; at: number }[] = [];
  readonly revocations: (LeadershipRevocation & { observedAt: number })[] = [];
  readonly errors: SluiceError[] = [];
  #now: () => number;

  constructor(name: string, now: () => number = () => performance.now()) {
    this.name = name;
    this.#now = now;
  }

  onGrantLeadership(epoch: number): void {
    if (this.leading !== undefined)
      throw new Error(`${this.name}: granted ${epoch} while leading ${this.leading}`);
    this.grants.push({ epoch, at: this.#now() });
  }

  onRevokeLeadership(revocation: LeadershipRevocation): void {
    if (this.leading !== revocation.epoch) {
      throw new Error(`${this.name}: revoked ${revocation.epoch} while leading ${this.leading}`);
    }
    this.revocations.push({ ...revocation, observedAt: this.#now() });
  }

  onError(error: SluiceError): void {
    this.errors.push(error);
  }

  /** The epoch this contender leads under, per its callbacks. */
  get leading(): number | undefined {
    return this.grants.length > this.revocations.length ? this.grants.at(-1)!.epoch : undefined;
  }

  get lastGrant(): { epoch: number; at: number } | undefined {
    return this.grants.at(-1);
  }

  get lastRevocation(): (LeadershipRevocation & { observedAt: number }) | undefined {
    return this.revocations.at(-1);
  }

  /** Leadership intervals [from, to) on the recording clock. */
  intervals(): { epoch: number; from: number; to: number }[] {
    return this.grants.map((g, i) => ({
      epoch: g.epoch,
      from: g.at,
      to: this.revocations[i]?.observedAt ?? Number.POSITIVE_INFINITY,
    }));
  }
}

/** Throws if two contenders' leadership intervals overlap, or epochs do not increase over time. */
export function assertOneLeaderAtATime(contenders: RecordingContender[]): void {
  const all = contenders.flatMap((c) => c.intervals().map((i) => ({ ...i, who: c.name })));
  all.sort((a, b) => a.from - b.from);
  for (let i = 1; i < all.length; i++) {
    const prev = all[i - 1]!;
    const cur = all[i]!;
    if (cur.from < prev.to) {
      throw new Error(`two leaders at once: ${JSON.stringify(prev)} and ${JSON.stringify(cur)}`);
    }
    if (cur.epoch <= prev.epoch) {
      throw new Error(`epochs do not increase: ${JSON.stringify(prev)} then ${JSON.stringify(cur)}`);
    }
  }
}

/** Polls `condition` every 10 ms until it holds; fails after `timeoutMs` with `what`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A fresh cluster id per test (a fresh set of buckets). */
export function testClusterId(prefix: string): string {
  return `${prefix}_${Math.random().toString(36).slice(2, 10)}`;
}
