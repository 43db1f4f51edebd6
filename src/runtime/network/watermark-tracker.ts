/**
 * The combined watermark of several input channels: the minimum over the channels still open. A channel's
 * watermark only moves forward (a lower one is ignored); a channel that ended no longer holds the minimum
 * back. Once every channel has ended the combined watermark is +Infinity (end of time: every timer fires).
 */
export class WatermarkTracker {
  readonly #watermarks: Float64Array;
  readonly #ended: Uint8Array;
  #open: number;
  #current = Number.NEGATIVE_INFINITY;

  constructor(channelCount: number) {
    if (!Number.isSafeInteger(channelCount) || channelCount < 1) {
      throw new RangeError(`channel count must be a positive integer, got ${channelCount}`);
    }
    this.#watermarks = new Float64Array(channelCount).fill(Number.NEGATIVE_INFINITY);
    this.#ended = new Uint8Array(channelCount);
    this.#open = channelCount;
  }

  /** The combined watermark so far (-Infinity before every channel has sent one). */
  get current(): number {
    return this.#current;
  }

  /** Records a channel's watermark; returns the new combined watermark when it advances, else undefined. */
  update(channel: number, watermark: number): number | undefined {
    this.#check(channel);
    const old = this.#watermarks[channel]!;
    if (this.#ended[channel] === 1 || !(watermark > old)) return undefined;
    this.#watermarks[channel] = watermark;
    // only the channel(s) holding the minimum can move it
    if (old > this.#current) return undefined;
    return this.#advance();
  }

  /** A channel ended; returns the new combined watermark when that advances it, else undefined. */
  endChannel(channel: number): number | undefined {
    this.#check(channel);
    if (this.#ended[channel] === 1) return undefined;
    this.#ended[channel] = 1;
    this.#open--;
    return this.#advance();
  }

  #advance(): number | undefined {
    let min = Number.POSITIVE_INFINITY;
    if (this.#open > 0) {
      const wms = this.#watermarks;
      const ended = this.#ended;
      for (let i = 0; i < wms.length; i++) if (ended[i] === 0 && wms[i]! < min) min = wms[i]!;
    }
    if (min > this.#current) {
      this.#current = min;
      return min;
    }
    return undefined;
  }

  #check(channel: number): void {
    if (!Number.isInteger(channel) || channel < 0 || channel >= this.#watermarks.length) {
      throw new RangeError(`channel ${channel} is out of range 0..${this.#watermarks.length - 1}`);
    }
  }
}
