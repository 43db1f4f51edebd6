/** The data plane between parallel subtasks: credit-based, batched channels over NATS. */
export * from './elements.js';
export { type DecodedFrame, decodeFrame, encodeFrame, FRAME_VERSION } from './frame.js';
export * from './input-gate.js';
export * from './output-gate.js';
export * from './watermark-tracker.js';
