/**
 * What a JobManager shows Prometheus of its autoscalers (`job.autoscaler.enabled`): decisions by outcome
 * and rescales per job, and per vertex the inputs and result of the latest decision (busy time, rates,
 * backlog, utilisation, current and target parallelism). Reads the Dispatcher through the small interface
 * below, never the actors.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/** The part of a job's autoscaler state the metrics show. */
export interface AutoscalerMetrics {
  jobId: string;
  counts: Readonly<Record<string, number>>;
  rescales: number;
  /** The latest decision that evaluated the vertices (waiting ones have none). */
  decisions: ReadonlyArray<{
    vertices: ReadonlyArray<{
      id: string;
      name: string;
      parallelism: number;
      targetParallelism: number;
      recordsInPerSecond: number;
      busyTimeMsPerSecond: number;
      trueProcessingRate: number | null;
      targetDataRate: number;
      utilization: number | null;
      backlog: number | null;
    }>;
  }>;
}

export interface AutoscalerMetricsSource {
  autoscalersByJob(): Promise<ReadonlyArray<AutoscalerMetrics>>;
}

export function registerAutoscalerMetrics(registry: Registry, sourceOf: () => AutoscalerMetricsSource): void {
  const read = () =>
    sourceOf()
      .autoscalersByJob()
      .catch(() => [] as AutoscalerMetrics[]);
  new Counter({
    name: 'sluice_autoscaler_decisions_total',
    help: 'Autoscaler evaluations of each running job by outcome (rescale, no-change, waiting, missing-metrics, advice, rescale-failed)',
    labelNames: ['job', 'outcome'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const a of await read())
        for (const [outcome, n] of Object.entries(a.counts)) this.inc({ job: a.jobId, outcome }, n);
    },
  });
  new Counter({
    name: 'sluice_autoscaler_rescales_total',
    help: 'Rescales the autoscaler made of each running job',
    labelNames: ['job'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const a of await read()) this.inc({ job: a.jobId }, a.rescales);
    },
  });
  type Vertex = AutoscalerMetrics['decisions'][number]['vertices'][number];
  const perVertex = (name: string, help: string, pick: (v: Vertex) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ['job', 'vertex', 'vertex_id'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const a of await read()) {
          for (const v of a.decisions.find((d) => d.vertices.length > 0)?.vertices ?? []) {
            const value = pick(v);
            if (value !== null) this.set({ job: a.jobId, vertex: v.name, vertex_id: v.id }, value);
          }
        }
      },
    });
  perVertex(
    'sluice_autoscaler_vertex_parallelism',
    "A vertex's parallelism when the autoscaler last decided",
    (v) => v.parallelism,
  );
  perVertex(
    'sluice_autoscaler_vertex_target_parallelism',
    'The parallelism the autoscaler last decided for a vertex',
    (v) => v.targetParallelism,
  );
  perVertex(
    'sluice_autoscaler_vertex_busy_time_ms_per_second',
    "A vertex's busy ms per second of one subtask over the metrics window (Flink's busyTimeMsPerSecond)",
    (v) => v.busyTimeMsPerSecond,
  );
  perVertex(
    'sluice_autoscaler_vertex_records_in_per_second',
    'Records a vertex received per second over the metrics window',
    (v) => v.recordsInPerSecond,
  );
  perVertex(
    'sluice_autoscaler_vertex_true_processing_rate',
    'Records per second one subtask of a vertex could process if it were busy all the time',
    (v) => v.trueProcessingRate,
  );
  perVertex(
    'sluice_autoscaler_vertex_target_data_rate',
    'Records per second a vertex must process (source rate plus backlog catch-up, propagated)',
    (v) => v.targetDataRate,
  );
  perVertex(
    'sluice_autoscaler_vertex_utilization',
    "A vertex's utilisation at its target data rate and current parallelism",
    (v) => v.utilization,
  );
  perVertex(
    'sluice_autoscaler_vertex_backlog_records',
    "A source vertex's backlog (records not read yet) at the end of the metrics window",
    (v) => v.backlog,
  );
}
