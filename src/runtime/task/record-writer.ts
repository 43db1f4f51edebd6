/**
 * Routes a task's output records onto one outgoing edge: picks the target subtask(s) by the edge's
 * partitioner and hands elements to the edge's OutputGate.
 */
import type { KeySelector } from '../../api/functions.js';
import type { Partitioning } from '../../api/transformation.js';
import { watermark } from '../network/elements.js';
import type { OutputGate } from '../network/output-gate.js';
import { keyGroupOfKey, subtaskForKeyGroup } from '../state/key-groups.js';

export class RecordWriter {
  readonly gate: OutputGate;
  readonly #partitioning: Partitioning;
  readonly #keySelector: KeySelector<unknown, unknown> | undefined;
  readonly #targets: number;
  readonly #targetMaxParallelism: number;
  readonly #subtaskIndex: number;
  #next: number;

  constructor(
    gate: OutputGate,
    options: {
      partitioning: Partitioning;
      keySelector: KeySelector<unknown, unknown> | undefined;
      targetParallelism: number;
      targetMaxParallelism: number;
      subtaskIndex: number;
    },
  ) {
    this.gate = gate;
    this.#partitioning = options.partitioning;
    this.#keySelector = options.keySelector;
    this.#targets = options.targetParallelism;
    this.#targetMaxParallelism = options.targetMaxParallelism;
    this.#subtaskIndex = options.subtaskIndex;
    this.#next = options.subtaskIndex % options.targetParallelism;
    if (options.partitioning === 'hash' && !options.keySelector)
      throw new Error('hash partitioning needs a key');
  }

  emit(value: unknown, timestamp: number | undefined): void {
    switch (this.#partitioning) {
      case 'forward':
        this.gate.emitRecord(this.#subtaskIndex, value, timestamp);
        return;
      case 'rebalance': {
        const next = this.#next;
        this.gate.emitRecord(next, value, timestamp);
        this.#next = next + 1 === this.#targets ? 0 : next + 1;
        return;
      }
      case 'shuffle':
        this.gate.emitRecord(Math.floor(Math.random() * this.#targets), value, timestamp);
        return;
      case 'broadcast':
        for (let t = 0; t < this.#targets; t++) this.gate.emitRecord(t, value, timestamp);
        return;
      case 'hash': {
        const group = keyGroupOfKey(this.#keySelector!(value), this.#targetMaxParallelism);
        this.gate.emitRecord(
          subtaskForKeyGroup(group, this.#targetMaxParallelism, this.#targets),
          value,
          timestamp,
        );
        return;
      }
    }
  }

  emitWatermark(wm: number): void {
    this.gate.broadcast(watermark(wm));
  }

  /** Sends end-of-partition on every channel and waits until everything is out. */
  async finish(): Promise<void> {
    await this.gate.finish();
  }
}
