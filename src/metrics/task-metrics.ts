/**
 * Per-task and per-operator counters of the tasks running in a TaskManager, exposed to Prometheus:
 * records in and out of each operator, and the time each task spent backpressured.
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
