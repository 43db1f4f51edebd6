/**
 * OutputTag: names a side output of an operator (as Flink's OutputTag). A process function emits to it
 * with `ctx.output(tag, value)`; `getSideOutput(tag)` on the operator's stream reads it back as a stream
 * of its own. Tags are equal when their ids are: two tags with the same id are the same side output.
 *
 * Refuses an empty id or one over 128 characters (it travels in the plan). Records emitted to a tag
 * nobody reads are dropped, as in Flink.
 */
import { ErrorCode, SluiceError } from '../common/errors.js';

export class OutputTag<T> {
  /** Phantom field: ties the side output's element type to the tag. */
  declare readonly _type?: T;
  readonly id: string;

  constructor(id: string) {
    if (typeof id !== 'string' || id.length === 0 || id.length > 128) {
      throw new SluiceError(
        ErrorCode.InvalidJob,
        `an OutputTag needs an id of 1 to 128 characters, got ${JSON.stringify(id)}`,
      );
    }
    this.id = id;
  }

  toString(): string {
    return `OutputTag(${this.id})`;
  }
}
