/**
 * Per-task and per-operator counters of the tasks running in a TaskManager, exposed to Prometheus:
 * records in and out of each operator, the time each task spent backpressured and busy, and a source
 * task's backlog (records it has not read yet).
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export interface OperatorCounters {
  readonly name: string;
  readonly uid: string;
  recordsIn(): number;
  recordsOut(): number;
}

export interface TaskCounters {
  readonly jobId: string;
  readonly vertex: string;
  readonly subtask: number;
  readonly operators: OperatorCounters[];
  backpressuredMs(): number;
  /** Time spent processing (neither idle nor backpressured). */
  busyMs?(): number;
  /** A source's backlog; undefined when it reports none. */
  pendingRecords?(): number | undefined;
}

/** Where a running task shows its counters (the TaskManager's TaskMetrics, or a slot worker's relay). */
export interface TaskCountersSink {
  /** Shows a running task's counters; call the returned function when the task ends. */
  add(task: TaskCounters): () => void;
}

export class TaskMetrics implements TaskCountersSink {
  readonly #live = new Set<TaskCounters>();

  constructor(registry: Registry, slots: () => { total: number; used: number }) {
    const live = this.#live;
    const perOperator = (pick: (o: OperatorCounters) => number) =>
      function (this: Counter) {
        this.reset();
        for (const t of live) {
          for (const o of t.operators) {
            this.inc(
              { job: t.jobId, vertex: t.vertex, subtask: String(t.subtask), operator: o.name, uid: o.uid },
              pick(o),
            );
          }
        }
      };
    new Counter({
      name: 'sluice_operator_records_in_total',
      help: 'Records an operator received',
      labelNames: ['job', 'vertex', 'subtask', 'operator', 'uid'],
      registers: [registry],
      collect: perOperator((o) => o.recordsIn()),
    });
    new Counter({
      name: 'sluice_operator_records_out_total',
      help: 'Records an operator emitted',
      labelNames: ['job', 'vertex', 'subtask', 'operator', 'uid'],
      registers: [registry],
      collect: perOperator((o) => o.recordsOut()),
    });
    new Counter({
      name: 'sluice_task_backpressured_seconds_total',
      help: 'Time a task waited for its outputs (backpressure)',
      labelNames: ['job', 'vertex', 'subtask'],
      registers: [registry],
      collect() {
        this.reset();
        for (const t of live)
          this.inc(
            { job: t.jobId, vertex: t.vertex, subtask: String(t.subtask) },
            t.backpressuredMs() / 1_000,
          );
      },
    });
    new Counter({
      name: 'sluice_task_busy_seconds_total',
      help: "Time a task spent processing records (neither idle nor backpressured: Flink's busy time)",
      labelNames: ['job', 'vertex', 'subtask'],
      registers: [registry],
      collect() {
        this.reset();
        for (const t of live) {
          const busy = t.busyMs?.();
          if (busy !== undefined)
            this.inc({ job: t.jobId, vertex: t.vertex, subtask: String(t.subtask) }, busy / 1_000);
        }
      },
    });
    new Gauge({
      name: 'sluice_source_pending_records',
      help: "A source task's backlog: records it has not read yet (JetStream: its share of the consumer's num_pending)",
      labelNames: ['job', 'vertex', 'subtask'],
      registers: [registry],
      collect() {
        this.reset();
        for (const t of live) {
          const pending = t.pendingRecords?.();
          if (pending !== undefined)
            this.set({ job: t.jobId, vertex: t.vertex, subtask: String(t.subtask) }, pending);
        }
      },
    });
    new Gauge({
      name: 'sluice_taskmanager_slots',
      help: 'Task slots of this TaskManager, by state',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const s = slots();
        this.set({ state: 'used' }, s.used);
        this.set({ state: 'free' }, s.total - s.used);
      },
    });
  }

  /** Shows a running task's counters; call the returned function when the task ends. */
  add(task: TaskCounters): () => void {
    this.#live.add(task);
    return () => this.#live.delete(task);
  }
}
