import type { ConnectorContext, Sink, SinkWriter } from '../../api/connector.js';
import type { StreamOperator } from './operator.js';

/** Feeds records to a sink's writer; finishes it when the input ends. */
export class SinkOperator implements StreamOperator {
  #writer: SinkWriter<unknown> | undefined;

  constructor(
    readonly sink: Sink<unknown>,
    readonly context: ConnectorContext,
  ) {}

  async open(): Promise<void> {
    this.#writer = await this.sink.createWriter(this.context);
  }

  processElement(value: unknown, timestamp: number | undefined): void {
    this.#writer!.write(value, timestamp);
  }

  processWatermark(): void {}

  /** Undefined when the writer keeps no state (not a two-phase-commit sink). */
  snapshotState(checkpointId: number): unknown {
    return this.#writer?.snapshotState?.(checkpointId);
  }

  /** Whether the writer stores state with checkpoints. */
  get stateful(): boolean {
    return this.#writer?.snapshotState !== undefined;
  }

  async notifyCheckpointComplete(checkpointId: number): Promise<void> {
    await this.#writer?.notifyCheckpointComplete?.(checkpointId);
  }

  get writable(): boolean {
    return this.#writer?.writable ?? true;
  }

  async ready(): Promise<void> {
    await this.#writer?.ready?.();
  }

  async endInput(): Promise<void> {
    await this.#writer?.finish?.();
  }

  async close(): Promise<void> {
    await this.#writer?.close?.();
  }
}
