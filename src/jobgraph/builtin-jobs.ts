/**
 * Built-in test jobs, runnable as `sluice run builtin:<name> [args…]` until (and besides) job files.
 * Each is one chained vertex (source → map → sink) with the requested parallelism.
 *
 *   builtin:count [records]        counts 0..records-1 spread over the subtasks, maps x → 2x, sums
 *   builtin:endless [ratePerSec]   emits until cancelled
 *   builtin:fail [failAtRecord]    the map function throws at the given record
 */
import { ErrorCode, SluiceError } from '../common/errors.js';
import type { JobGraph } from './job-graph.js';
import type { JobId } from './job-id.js';

export const BUILTIN_PREFIX = 'builtin:';

interface BuiltinJob {
  description: string;
  vertexName: string;
  /** Parses the program arguments into operator args. */
  args(argv: string[]): Record<string, number>;
}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new SluiceError(ErrorCode.InvalidJob, `${name} must be a non-negative integer, got '${text}'`);
  }
  return value;
}

export const BUILTIN_JOBS: Record<string, BuiltinJob> = {
  count: {
    description: 'counts records 0..N-1 over the subtasks, maps x to 2x and sums them (default N = 1000000)',
    vertexName: 'Source: Counter -> Map: Double -> Sink: Sum',
    args: (argv) => ({ records: positiveInt('records', argv[0], 1_000_000) }),
  },
  endless: {
    description: 'emits records at a rate (default 1000/s per subtask) until cancelled',
    vertexName: 'Source: Ticker -> Sink: Discard',
    args: (argv) => ({ rate: positiveInt('rate', argv[0], 1_000) }),
  },
  fail: {
    description: 'its map function throws at record K (default 1000)',
    vertexName: 'Source: Counter -> Map: Explode -> Sink: Sum',
    args: (argv) => ({ failAt: positiveInt('failAt', argv[0], 1_000) }),
  },
};

export function isBuiltinJobRef(ref: string): boolean {
  return ref.startsWith(BUILTIN_PREFIX);
}

export function builtinJobGraph(ref: string, argv: string[], parallelism: number, jobId: JobId): JobGraph {
  const name = ref.slice(BUILTIN_PREFIX.length);
  const job = BUILTIN_JOBS[name];
  if (!job) {
    const known = Object.keys(BUILTIN_JOBS)
      .map((n) => BUILTIN_PREFIX + n)
      .join(', ');
    throw new SluiceError(ErrorCode.InvalidJob, `unknown built-in job '${ref}' (known: ${known})`);
  }
  return {
    jobId,
    name: `${name} ${argv.join(' ')}`.trim(),
    vertices: [
      {
        id: `${name}-chain`,
        name: job.vertexName,
        parallelism,
        maxParallelism: 128,
        operator: { kind: 'builtin', name, args: job.args(argv) },
      },
    ],
    edges: [],
    bufferTimeoutMs: 100,
  };
}
