/**
 * Reactive mode (Flink: `scheduler-mode: reactive`, FLIP-159): a job runs at the parallelism its slots
 * allow, up to each vertex's max parallelism, and follows the cluster as TaskManagers come and go.
 *
 * {@link reactiveParallelism} sizes a job for a number of slots: every vertex gets the slots, capped by its
 * max parallelism; the two ends of a forward edge get the smaller of the two (a forward edge needs equal
 * parallelisms). With slot sharing, a job needs as many slots as its largest vertex.
 *
 * {@link ReactiveScalingPolicy} decides when a running job is rescaled to what its slots allow, against
 * flapping (pure: time from the injected {@link Clock}, no NATS):
 * - the slots available to the job must have stayed the same for
 *   `jobmanager.adaptive-scheduler.resource-stabilization-timeout` (several TaskManagers starting together
 *   cause one rescale, not one each);
 * - the last rescale must have ended at least
 *   `jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling` ago.
 * When neither holds yet it says how long to wait. It does not decide anything about a job that lost slots:
 * its tasks there failed, and the JobMaster's restart schedules it at the parallelism it can still have.
 */
import type { Clock } from '../../ha/clock.js';
import type { JobGraph } from '../../jobgraph/job-graph.js';
import type { VertexParallelism } from './rescale.js';

export interface ReactiveModeOptions {
  /** `jobmanager.adaptive-scheduler.resource-stabilization-timeout`. */
  stabilizationTimeoutMs: number;
  /** `jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling`. */
  cooldownAfterRescalingMs: number;
}

/** Every vertex's parallelism for a job that may use `slots` slots (at least 1 each). */
export function reactiveParallelism(graph: JobGraph, slots: number): VertexParallelism {
  const p: Record<string, number> = {};
  for (const v of graph.vertices) p[v.id] = Math.max(1, Math.min(v.maxParallelism, slots));
  // Forward edges: both ends at the smaller one, until nothing changes (chains of forward edges).
  for (let changed = true; changed; ) {
    changed = false;
    for (const e of graph.edges) {
      if (e.partitioner !== 'forward' || p[e.source] === p[e.target]) continue;
      const min = Math.min(p[e.source]!, p[e.target]!);
      p[e.source] = min;
      p[e.target] = min;
      changed = true;
    }
  }
  return p;
}

export function sameParallelism(a: VertexParallelism, b: VertexParallelism): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

export type ReactiveDecision =
  | { kind: 'keep' }
  | { kind: 'rescale'; target: VertexParallelism }
  | { kind: 'wait'; waitMs: number; why: string };

export class ReactiveScalingPolicy {
  readonly #options: ReactiveModeOptions;
  readonly #clock: Clock;
  #slots: number | undefined;
  #slotsSince = 0;
  #lastRescaleEnd: number | undefined;

  constructor(options: ReactiveModeOptions, clock: Clock) {
    this.#options = options;
    this.#clock = clock;
  }

  /** The slots available to the job now (free ones and its own); a change restarts the stabilization. */
  observeSlots(slots: number): void {
    if (slots === this.#slots) return;
    this.#slots = slots;
    this.#slotsSince = this.#clock.now();
  }

  /** A rescale (or a restart at a new parallelism) of the job ended now. */
  rescaled(): void {
    this.#lastRescaleEnd = this.#clock.now();
  }

  /** What to do about a running job whose vertices have `current` parallelism. */
  decide(graph: JobGraph, current: VertexParallelism): ReactiveDecision {
    if (this.#slots === undefined) return { kind: 'keep' };
    const target = reactiveParallelism(graph, this.#slots);
    if (sameParallelism(target, current)) return { kind: 'keep' };
    const now = this.#clock.now();
    const stableFor = now - this.#slotsSince;
    if (stableFor < this.#options.stabilizationTimeoutMs) {
      return {
        kind: 'wait',
        waitMs: this.#options.stabilizationTimeoutMs - stableFor,
        why: `the slots changed ${Math.round(stableFor)} ms ago (resource-stabilization-timeout ${this.#options.stabilizationTimeoutMs} ms)`,
      };
    }
    if (this.#lastRescaleEnd !== undefined) {
      const since = now - this.#lastRescaleEnd;
      if (since < this.#options.cooldownAfterRescalingMs) {
        return {
          kind: 'wait',
          waitMs: this.#options.cooldownAfterRescalingMs - since,
          why: `the last rescale ended ${Math.round(since)} ms ago (executing.cooldown-after-rescaling ${this.#options.cooldownAfterRescalingMs} ms)`,
        };
      }
    }
    return { kind: 'rescale', target };
  }
}
