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
 *
 * {@link ReactiveScaler} applies the policy to one running job: it hears of every change of the cluster's
 * slots from the ResourceManager, asks how many the job could have, and rescales it (cause `reactive`)
 * when the policy says so, or looks again when the policy's wait is over.
 */
import { JobStatus } from '../../api/job-status.js';
import type { Logger } from '../../common/log.js';
import type { Clock } from '../../ha/clock.js';
import type { JobGraph } from '../../jobgraph/job-graph.js';
import type { ResourceManager } from '../resourcemanager/resource-manager.js';
import { RescaleCause, type Rescaler, type VertexParallelism } from './rescale.js';

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

export interface ReactiveHost {
  jobId: string;
  log: Logger;
  rm: ResourceManager;
  rescaler: Rescaler;
  jobGraph(): JobGraph;
  status(): JobStatus;
  /** Every task of the current attempt runs and no rescale is under way. */
  steady(): boolean;
  leading(): boolean;
  runInMailbox<T>(fn: () => T): Promise<T>;
}

export class ReactiveScaler {
  readonly #host: ReactiveHost;
  readonly policy: ReactiveScalingPolicy;
  #timer: NodeJS.Timeout | undefined;
  readonly #unsubscribe: () => void;
  #closed = false;

  constructor(host: ReactiveHost, options: ReactiveModeOptions, clock: Clock) {
    this.#host = host;
    this.policy = new ReactiveScalingPolicy(options, clock);
    this.#unsubscribe = host.rm.onSlotsChanged(() => this.check());
  }

  /** Sizes a job that is about to be (re)deployed: the parallelism its slots allow now. */
  async sizeForDeployment(): Promise<{ available: number; target: VertexParallelism }> {
    const available = await this.#host.rm.availableSlotsFor(this.#host.jobId).catch(() => 0);
    this.policy.observeSlots(available);
    this.policy.rescaled();
    return { available, target: reactiveParallelism(this.#host.jobGraph(), Math.max(1, available)) };
  }

  /** Looks at the job's slots and rescales it when due (any time: it checks the job's state itself). */
  check(): void {
    const host = this.#host;
    if (this.#closed) return;
    void host.rm
      .availableSlotsFor(host.jobId)
      .then((available) => host.runInMailbox(() => this.#decide(available)))
      .catch(() => undefined);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#unsubscribe();
  }

  #decide(available: number): void {
    const host = this.#host;
    this.policy.observeSlots(available);
    clearTimeout(this.#timer);
    if (this.#closed || !host.leading() || host.status() !== JobStatus.RUNNING || !host.steady()) return;
    const decision = this.policy.decide(host.jobGraph(), host.rescaler.currentParallelism());
    if (decision.kind === 'wait') {
      host.log.debug({ waitMs: decision.waitMs, why: decision.why }, 'reactive mode: waiting');
      this.#timer = setTimeout(() => this.check(), decision.waitMs + 5);
      this.#timer.unref?.();
    } else if (decision.kind === 'rescale') {
      host.rescaler
        .rescale({
          target: decision.target,
          cause: RescaleCause.Reactive,
          reason: `${available} slots available`,
        })
        .catch((err: unknown) =>
          host.log.warn({ err: (err as Error).message }, 'reactive mode: the rescale did not happen'),
        );
    }
  }
}
