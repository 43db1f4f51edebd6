/**
 * The autoscaler's metric history of one job: samples of each vertex's cumulative counters (records in and
 * out, busy ms, backpressured ms, all summed over subtasks) and its sources' backlog, kept over
 * `job.autoscaler.metrics.window`, turned into per-second rates over that window.
 *
 * Promises: rates come from the first and last sample of the window only (cumulative counters: no sample in
 * between matters); a vertex whose counters are missing, or went backwards (its tasks restarted), gives a
 * reason instead of a number. Refuses nothing: the caller decides whether the window is full.
 * Pure: time is whatever the samples say.
 */

/** A vertex's counters at one moment (cumulative since its tasks started), summed over its subtasks. */
export interface VertexSample {
  parallelism: number;
  recordsIn?: number | undefined;
  recordsOut?: number | undefined;
  busyMs?: number | undefined;
  backpressuredMs?: number | undefined;
  /** A source's backlog (a gauge, not cumulative); undefined when the source reports none. */
  pendingRecords?: number | undefined;
}

/** Every vertex of a job at one moment; `at` in ms on the autoscaler's clock. */
export interface JobSample {
  at: number;
  vertices: Readonly<Record<string, VertexSample>>;
}

/** A vertex over the window: per-second rates, and shares of its subtasks' wall time. */
export interface VertexRates {
  parallelism: number;
  windowMs: number;
  recordsInPerSecond: number;
  recordsOutPerSecond: number;
  /** Flink's busyTimeMsPerSecond: busy ms per second of one subtask (the average over subtasks). */
  busyTimeMsPerSecond: number;
  backpressuredTimeMsPerSecond: number;
  /** The backlog at the end of the window; undefined when the source reports none. */
  backlog: number | undefined;
  /** How fast the backlog grew over the window (negative: it shrank); 0 without a backlog metric. */
  backlogGrowthPerSecond: number;
}

export type VertexWindow = { ok: true; rates: VertexRates } | { ok: false; missing: string };

export class MetricsWindow {
  readonly #windowMs: number;
  #samples: JobSample[] = [];

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  /** Adds a sample and drops those no longer needed to span the window ending at it. */
  add(sample: JobSample): void {
    const last = this.#samples.at(-1);
    if (last && sample.at <= last.at) return;
    this.#samples.push(sample);
    // Keep the newest sample at or before the window's start, so that the window is covered in full.
    const start = sample.at - this.#windowMs;
    while (this.#samples.length > 2 && this.#samples[1]!.at <= start) this.#samples.shift();
  }

  clear(): void {
    this.#samples = [];
  }

  get size(): number {
    return this.#samples.length;
  }

  /** Time the samples span (0 with fewer than two). */
  get spanMs(): number {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    return first && last ? last.at - first.at : 0;
  }

  /** Whether the samples cover the whole window (up to `slackMs`, a sampling interval's jitter). */
  isFull(slackMs: number): boolean {
    return this.#samples.length >= 2 && this.spanMs >= this.#windowMs - slackMs;
  }

  latest(): JobSample | undefined {
    return this.#samples.at(-1);
  }

  /** The vertex's rates over the window. */
  rates(vertexId: string, name = vertexId): VertexWindow {
    const first = this.#samples[0]?.vertices[vertexId];
    const last = this.#samples.at(-1)?.vertices[vertexId];
    if (!first || !last || this.#samples.length < 2) {
      return { ok: false, missing: `vertex '${name}': fewer than two samples in the window` };
    }
    for (const key of ['recordsIn', 'recordsOut', 'busyMs'] as const) {
      if (first[key] === undefined || last[key] === undefined) {
        const metric = { recordsIn: 'records in', recordsOut: 'records out', busyMs: 'busy time' }[key];
        return {
          ok: false,
          missing: `vertex '${name}' reports no ${metric} (a built-in task, or tasks that report no metrics)`,
        };
      }
      if (last[key]! < first[key]!) {
        return { ok: false, missing: `vertex '${name}': its counters went back (its tasks restarted)` };
      }
    }
    if (first.parallelism !== last.parallelism) {
      return { ok: false, missing: `vertex '${name}': its parallelism changed within the window` };
    }
    const seconds = (this.#samples.at(-1)!.at - this.#samples[0]!.at) / 1_000;
    const perSecond = (a: number | undefined, b: number | undefined) => ((b ?? 0) - (a ?? 0)) / seconds;
    const p = last.parallelism;
    const backlog = last.pendingRecords;
    return {
      ok: true,
      rates: {
        parallelism: p,
        windowMs: seconds * 1_000,
        recordsInPerSecond: perSecond(first.recordsIn, last.recordsIn),
        recordsOutPerSecond: perSecond(first.recordsOut, last.recordsOut),
        busyTimeMsPerSecond: clampMsPerSecond(perSecond(first.busyMs, last.busyMs) / p),
        backpressuredTimeMsPerSecond: clampMsPerSecond(
          Math.max(0, perSecond(first.backpressuredMs ?? 0, last.backpressuredMs ?? 0)) / p,
        ),
        backlog,
        backlogGrowthPerSecond:
          backlog === undefined || first.pendingRecords === undefined
            ? 0
            : perSecond(first.pendingRecords, backlog),
      },
    };
  }
}

/** A subtask cannot be busy more than all of a second (timer granularity and sampling can say so). */
function clampMsPerSecond(ms: number): number {
  return Math.min(1_000, Math.max(0, ms));
}
