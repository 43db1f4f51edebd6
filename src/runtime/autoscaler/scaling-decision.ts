/**
 * The autoscaler's decision for one job at one moment, from the rates of its vertices over the metrics
 * window (Flink's Kubernetes-operator autoscaler, FLIP-271): pure, no I/O, no clock of its own.
 *
 * For each vertex, in topological order:
 * - true processing rate per subtask = records in per second ÷ busy fraction ÷ parallelism (what one
 *   subtask could do if it were busy all the time);
 * - the rate it must handle: a source's arrival rate (records read per second plus the backlog's growth)
 *   plus backlog ÷ `catch-up.duration`; any other vertex's, the sum over its inputs of their target rate ×
 *   their records out per record in;
 * - utilisation at that rate = target rate ÷ (true rate per subtask × parallelism); inside target ±
 *   boundary the vertex keeps its parallelism; outside it gets ceil(target rate ÷ (true rate per subtask ×
 *   target utilisation)), bounded by the vertex's min and max parallelism, its key groups, the scale-up
 *   and scale-down max factors and the slots the cluster can offer;
 * - vertices joined by forward edges take the largest of their parallelisms (they must stay equal);
 * - a scale-down of the job waits for `scale-down.interval` since the previous one; a vertex whose last
 *   scale-up did not raise its rate (less than `scaling.effectiveness.threshold` of the expected gain) is
 *   not scaled up again.
 *
 * Refuses to decide (outcome `missing-metrics`, with the reason) when a vertex has no busy time or record
 * counts in the window, or no records reached a vertex that should get some: a guess would churn.
 */
import type { AutoscalerConfig } from '../../config/autoscaler-config.js';
import type { VertexParallelism } from '../jobmaster/rescale.js';
import type { VertexRates, VertexWindow } from './metrics-window.js';

export const ScalingOutcome = {
  /** The target differs from the current parallelism: rescale. */
  Rescale: 'rescale',
  /** Every vertex is within its utilisation boundary (or held where it is). */
  NoChange: 'no-change',
  /** Not evaluated: stabilising after a start or rescale, the window not full yet, tasks not running. */
  Waiting: 'waiting',
  /** Not evaluated: a metric the decision needs is missing. */
  MissingMetrics: 'missing-metrics',
} as const;
export type ScalingOutcome = (typeof ScalingOutcome)[keyof typeof ScalingOutcome];

export interface JobTopology {
  vertices: ReadonlyArray<{ id: string; name: string }>;
  edges: ReadonlyArray<{ source: string; target: string; partitioner: string }>;
}

/** What the decision found for one vertex: its inputs and its result. */
export interface VertexEvaluation {
  id: string;
  name: string;
  parallelism: number;
  targetParallelism: number;
  recordsInPerSecond: number;
  recordsOutPerSecond: number;
  busyTimeMsPerSecond: number;
  backpressuredTimeMsPerSecond: number;
  /** Per subtask; null when no records came in (unknown). */
  trueProcessingRate: number | null;
  /** The rate the vertex must handle (source: arrival + catch-up). */
  targetDataRate: number;
  /** At the target data rate with the current parallelism; null when the true rate is unknown. */
  utilization: number | null;
  backlog: number | null;
  /** Why the target is what it is (bounds hit, boundary, blocked scale-up, …). */
  note: string;
}

/** The last rescale of each vertex the autoscaler made, for effectiveness detection. */
export interface ScaleUpRecord {
  from: number;
  to: number;
  /** The vertex's true processing rate (all subtasks) before. */
  rateBefore: number;
}

export interface ScalingHistory {
  /** When the job last scaled down (on the autoscaler's clock); undefined: never. */
  lastScaleDownAt: number | undefined;
  /** Scale-ups not yet judged. */
  pendingScaleUps: ReadonlyMap<string, ScaleUpRecord>;
  /** Vertices whose scale-up was ineffective: why. */
  ineffective: ReadonlyMap<string, string>;
}

export interface DecisionInput {
  now: number;
  config: AutoscalerConfig;
  topology: JobTopology;
  windows: ReadonlyMap<string, VertexWindow>;
  current: VertexParallelism;
  maxParallelism: VertexParallelism;
  /** Slots the cluster can offer this job at most (its own plus free, plus what a pool can add). */
  slotCapacity: number | undefined;
  history: ScalingHistory;
}

export interface ScalingDecision {
  outcome: ScalingOutcome;
  /** One sentence: what and why. */
  reason: string;
  vertices: VertexEvaluation[];
  /** The full target when the outcome is `rescale`. */
  target?: VertexParallelism;
  /** Scale-ups found ineffective in this evaluation (vertex id → why). */
  ineffective: Record<string, string>;
}

/** Decides from a full metrics window. */
export function decide(input: DecisionInput): ScalingDecision {
  const { config, topology, current } = input;
  const order = topologicalOrder(topology);
  const rates = new Map<string, VertexRates>();
  for (const v of order) {
    const w = input.windows.get(v.id);
    if (!w) return missing(`vertex '${v.name}' has no metrics`);
    if (!w.ok) return missing(w.missing);
    rates.set(v.id, w.rates);
  }

  const inputsOf = (id: string) => topology.edges.filter((e) => e.target === id);
  const targetRate = new Map<string, number>();
  const evaluations: VertexEvaluation[] = [];
  const ineffective: Record<string, string> = {};
  let outOfBounds = 0;

  for (const v of order) {
    const r = rates.get(v.id)!;
    const p = current[v.id] ?? r.parallelism;
    const busyFraction = r.busyTimeMsPerSecond / 1_000;
    const inputs = inputsOf(v.id);
    let rate: number;
    if (inputs.length === 0) {
      const arrival = Math.max(0, r.recordsInPerSecond + r.backlogGrowthPerSecond);
      rate = arrival + (r.backlog ?? 0) / (config.catchUpDurationMs / 1_000);
    } else {
      rate = 0;
      for (const e of inputs) {
        const up = rates.get(e.source)!;
        const ratio = up.recordsInPerSecond > 0 ? up.recordsOutPerSecond / up.recordsInPerSecond : 0;
        rate += (targetRate.get(e.source) ?? 0) * ratio;
      }
    }
    targetRate.set(v.id, rate);

    const trueRate =
      r.recordsInPerSecond > 0 && busyFraction > 0 ? r.recordsInPerSecond / busyFraction / p : null;
    const base = {
      id: v.id,
      name: v.name,
      parallelism: p,
      recordsInPerSecond: round(r.recordsInPerSecond),
      recordsOutPerSecond: round(r.recordsOutPerSecond),
      busyTimeMsPerSecond: round(r.busyTimeMsPerSecond),
      backpressuredTimeMsPerSecond: round(r.backpressuredTimeMsPerSecond),
      trueProcessingRate: trueRate === null ? null : round(trueRate),
      targetDataRate: round(rate),
      backlog: r.backlog ?? null,
    };
    if (trueRate === null) {
      if (rate > 0) {
        return missing(
          `vertex '${v.name}' processed no records in the window although ${round(rate)} records/s should reach it: its true processing rate is unknown`,
        );
      }
      // Idle, and nothing is expected: as small as the bounds allow.
      const { parallelism, note } = bounded(input, v.id, p, 0, 'idle: no records in the window');
      if (parallelism !== p) outOfBounds++;
      evaluations.push({ ...base, targetParallelism: parallelism, utilization: 0, note });
      continue;
    }
    const utilization = rate / (trueRate * p);
    const low = config.targetUtilization - config.targetUtilizationBoundary;
    const high = config.targetUtilization + config.targetUtilizationBoundary;
    if (utilization >= low && utilization <= high) {
      evaluations.push({
        ...base,
        targetParallelism: p,
        utilization: round(utilization),
        note: `utilisation ${round(utilization)} within ${round(low)}..${round(high)}`,
      });
      continue;
    }
    outOfBounds++;
    const wanted = Math.ceil(rate / (trueRate * config.targetUtilization) - 1e-9);
    let { parallelism, note } = bounded(
      input,
      v.id,
      p,
      wanted,
      `utilisation ${round(utilization)} outside ${round(low)}..${round(high)}: needs ${wanted}`,
    );
    // Effectiveness of this vertex's last scale-up, judged once on the first full window after it.
    const pending = input.history.pendingScaleUps.get(v.id);
    if (config.effectivenessDetection && pending && pending.to === p) {
      const expectedGain = pending.rateBefore * (pending.to / pending.from - 1);
      const actualGain = trueRate * p - pending.rateBefore;
      if (expectedGain > 0 && actualGain < config.effectivenessThreshold * expectedGain) {
        ineffective[v.id] =
          `scaling '${v.name}' up from ${pending.from} to ${pending.to} was ineffective: its processing rate went from ${round(pending.rateBefore)} to ${round(trueRate * p)} records/s, ${percent(actualGain / expectedGain)} of the expected gain (threshold ${percent(config.effectivenessThreshold)})`;
      }
    }
    const blocked = ineffective[v.id] ?? input.history.ineffective.get(v.id);
    if (blocked !== undefined && parallelism > p) {
      parallelism = p;
      note = `${note}; not scaled up: ${blocked}`;
    }
    evaluations.push({ ...base, targetParallelism: parallelism, utilization: round(utilization), note });
  }

  if (outOfBounds === 0) {
    return {
      outcome: ScalingOutcome.NoChange,
      reason: `every vertex is within its utilisation boundary (${config.targetUtilization} ± ${config.targetUtilizationBoundary})`,
      vertices: evaluations,
      ineffective,
    };
  }

  alignForwardGroups(topology, evaluations);
  holdScaleDowns(input, evaluations);

  const target: Record<string, number> = {};
  for (const e of evaluations) target[e.id] = e.targetParallelism;
  const changed = evaluations.filter((e) => e.targetParallelism !== e.parallelism);
  if (changed.length === 0) {
    return {
      outcome: ScalingOutcome.NoChange,
      reason: `no vertex can change: ${evaluations
        .filter((e) => e.note.includes('outside') || e.note.includes('idle'))
        .map((e) => `${e.name}: ${e.note}`)
        .join('; ')}`,
      vertices: evaluations,
      ineffective,
    };
  }
  return {
    outcome: ScalingOutcome.Rescale,
    reason: changed.map((e) => `${e.name} ${e.parallelism} → ${e.targetParallelism} (${e.note})`).join('; '),
    vertices: evaluations,
    target,
    ineffective,
  };

  function missing(reason: string): ScalingDecision {
    return { outcome: ScalingOutcome.MissingMetrics, reason, vertices: [], ineffective: {} };
  }
}

/** The wanted parallelism within every bound, and a note naming the bound that held it. */
function bounded(
  input: DecisionInput,
  id: string,
  p: number,
  wanted: number,
  why: string,
): { parallelism: number; note: string } {
  const { config } = input;
  const lower: Array<[number, string]> = [
    [config.vertexMinParallelism, 'job.autoscaler.vertex.min-parallelism'],
    [Math.ceil(p * (1 - config.scaleDownMaxFactor) - 1e-9), 'job.autoscaler.scale-down.max-factor'],
  ];
  const upper: Array<[number, string]> = [
    [config.vertexMaxParallelism, 'job.autoscaler.vertex.max-parallelism'],
    [input.maxParallelism[id] ?? Number.POSITIVE_INFINITY, 'its max parallelism (key groups)'],
    [Math.floor(p * (1 + config.scaleUpMaxFactor)), 'job.autoscaler.scale-up.max-factor'],
    // Last: what the cluster can offer wins over every lower bound.
    [input.slotCapacity ?? Number.POSITIVE_INFINITY, 'the slots the cluster can offer'],
  ];
  const bounds: Array<[number, string]> = [];
  let parallelism = wanted;
  for (const [limit, name] of lower) {
    if (parallelism < limit) {
      parallelism = limit;
      bounds.push([limit, name]);
    }
  }
  for (const [limit, name] of upper) {
    if (parallelism > limit) {
      parallelism = limit;
      bounds.push([limit, name]);
    }
  }
  parallelism = Math.max(1, parallelism);
  const held = bounds.at(-1);
  return { parallelism, note: held ? `${why}, held at ${held[0]} by ${held[1]}` : why };
}

/** Vertices joined by forward edges must keep equal parallelism: each group takes its largest target. */
function alignForwardGroups(topology: JobTopology, evaluations: VertexEvaluation[]): void {
  const byId = new Map(evaluations.map((e) => [e.id, e]));
  const forward = topology.edges.filter((e) => e.partitioner === 'forward');
  for (let changed = true; changed; ) {
    changed = false;
    for (const edge of forward) {
      const a = byId.get(edge.source);
      const b = byId.get(edge.target);
      if (!a || !b || a.targetParallelism === b.targetParallelism) continue;
      const [low, high] = a.targetParallelism < b.targetParallelism ? [a, b] : [b, a];
      low.targetParallelism = high.targetParallelism;
      low.note = `${low.note}; ${high.targetParallelism} as '${high.name}' (a forward edge joins them)`;
      changed = true;
    }
  }
}

/** A scale-down within `scale-down.interval` of the previous one waits (the vertices keep theirs). */
function holdScaleDowns(input: DecisionInput, evaluations: VertexEvaluation[]): void {
  const last = input.history.lastScaleDownAt;
  const interval = input.config.scaleDownIntervalMs;
  if (last === undefined || input.now - last >= interval) return;
  const waitS = Math.ceil((last + interval - input.now) / 1_000);
  for (const e of evaluations) {
    if (e.targetParallelism >= e.parallelism) continue;
    e.note = `${e.note}; scale-down to ${e.targetParallelism} waits ${waitS} s more (job.autoscaler.scale-down.interval)`;
    e.targetParallelism = e.parallelism;
  }
}

/** Sources first; every vertex after all of its inputs. */
function topologicalOrder(topology: JobTopology): JobTopology['vertices'] {
  const indegree = new Map(topology.vertices.map((v) => [v.id, 0]));
  for (const e of topology.edges) indegree.set(e.target, (indegree.get(e.target) ?? 0) + 1);
  const ready = topology.vertices.filter((v) => indegree.get(v.id) === 0);
  const out: Array<JobTopology['vertices'][number]> = [];
  while (ready.length > 0) {
    const v = ready.shift()!;
    out.push(v);
    for (const e of topology.edges) {
      if (e.source !== v.id) continue;
      const n = (indegree.get(e.target) ?? 0) - 1;
      indegree.set(e.target, n);
      if (n === 0) ready.push(topology.vertices.find((x) => x.id === e.target)!);
    }
  }
  return out;
}

function round(x: number): number {
  return Math.round(x * 1_000) / 1_000;
}

function percent(x: number): string {
  return `${Math.round(x * 100)}%`;
}
