/**
 * Every configuration option of Sluice, in one table: Flink-style dotted keys, their type, default,
 * bounds and description. The loader (`config.ts`) and the documentation (`docs/configuration.md`) follow
 * this table; a test checks that every key here is documented.
 */

export type OptionType = 'string' | 'int' | 'number' | 'boolean' | 'duration' | 'memory' | 'list' | 'enum';

export interface OptionSpec {
  readonly type: OptionType;
  /**
   * Written the way a user would write it (`'5 s'`, `'512 kb'`, `3`); parsed like any other value.
   * Options without a default are optional (or, for `cluster.run-dir`, resolved by the loader).
   */
  readonly default?: string | number | boolean;
  /** Lower bound, inclusive: a count for `int`, milliseconds for `duration`, bytes for `memory`. */
  readonly min?: number;
  /** Upper bound, inclusive, in the same units as `min`. */
  readonly max?: number;
  /** The allowed values of an `enum`. */
  readonly values?: readonly string[];
  /** A `string` value must match this. */
  readonly pattern?: RegExp;
  /** What `pattern` means, for error messages. */
  readonly patternHint?: string;
  /** Each item of a `list` must be a NATS server address. */
  readonly item?: 'nats-server';
  /** A file or directory path: a leading `~/` is expanded to the home directory. */
  readonly path?: boolean;
  /** Masked as `******` in `SluiceConfig.effective` and in error messages. */
  readonly secret?: boolean;
  readonly description: string;
}

/** Ids that end up in NATS subjects: letters, digits, `_` and `-`, 1 to 64 characters. */
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const ID_HINT = '1 to 64 letters, digits, _ or -; it is used in NATS subjects';

const KB = 1024;
const MB = 1024 * KB;

export const OPTIONS = {
  'cluster.id': {
    type: 'string',
    default: 'default',
    pattern: ID_PATTERN,
    patternHint: ID_HINT,
    description: 'Id of the cluster; every NATS subject of the cluster starts with it.',
  },
  'cluster.run-dir': {
    type: 'string',
    path: true,
    description:
      'Directory where standalone clusters keep their pid and state files. Default: `~/.sluice/clusters`.',
  },
  'nats.servers': {
    type: 'list',
    default: 'nats://127.0.0.1:4222',
    item: 'nats-server',
    description:
      'NATS servers to connect to, comma separated: `nats://host:port`, `tls://host:port` or `host:port`.',
  },
  'nats.user': { type: 'string', description: 'NATS user name (with `nats.password`).' },
  'nats.password': { type: 'string', secret: true, description: 'NATS password (with `nats.user`).' },
  'nats.token': { type: 'string', secret: true, description: 'NATS authentication token.' },
  'nats.nkey-seed-file': { type: 'string', path: true, description: 'File holding an NKey seed.' },
  'nats.creds-file': {
    type: 'string',
    path: true,
    description: 'NATS credentials file (JWT and NKey seed), as made by `nsc`.',
  },
  'nats.tls.ca-file': {
    type: 'string',
    path: true,
    description: 'CA certificate (PEM) to verify the NATS server with.',
  },
  'nats.tls.cert-file': {
    type: 'string',
    path: true,
    description: 'Client certificate (PEM) for mutual TLS, with `nats.tls.key-file`.',
  },
  'nats.tls.key-file': {
    type: 'string',
    path: true,
    description: 'Private key (PEM) of the client certificate.',
  },
  'nats.connect-timeout': {
    type: 'duration',
    default: '5 s',
    min: 1,
    description: 'How long to wait for the connection to a NATS server.',
  },
  'nats.ping-interval': {
    type: 'duration',
    default: '1 s',
    min: 100,
    description:
      'How often a Sluice process pings its NATS server; a server that misses `nats.max-pings-out` pongs in a row is left for another one (so a cut-off server is left after 2–3 intervals, not minutes).',
  },
  'nats.max-pings-out': {
    type: 'int',
    default: 2,
    min: 1,
    description: 'How many pings may be unanswered before the connection counts as stale and reconnects.',
  },
  'rpc.ask.timeout': {
    type: 'duration',
    default: '10 s',
    min: 1,
    description: 'How long an ask (request/reply between actors) waits for its answer.',
  },
  'rpc.ask.retries': {
    type: 'int',
    default: 3,
    min: 0,
    description: 'How often an idempotent ask is retried after a timeout or when nobody is listening.',
  },
  'rpc.max-message-size': {
    type: 'memory',
    default: '512 kb',
    min: KB,
    max: 64 * MB,
    description: 'Largest message an actor sends or accepts; keep it within the NATS server `max_payload`.',
  },
  'heartbeat.interval': {
    type: 'duration',
    default: '1 s',
    min: 1,
    description: 'How often TaskManagers and JobMasters send heartbeats.',
  },
  'heartbeat.timeout': {
    type: 'duration',
    default: '5 s',
    min: 1,
    description:
      'How long without a heartbeat before the peer is considered dead. Must be greater than `heartbeat.interval`.',
  },
  'slot.request.timeout': {
    type: 'duration',
    default: '60 s',
    min: 1,
    description: 'How long a job waits for the slots it needs before it fails.',
  },
  'taskmanager.numberOfTaskSlots': {
    type: 'int',
    default: 1,
    min: 1,
    max: 1024,
    description: 'Number of task slots a TaskManager offers.',
  },
  'resourcemanager.taskmanager-timeout': {
    type: 'duration',
    default: '30 s',
    min: 0,
    description:
      'A TaskManager of a pool (`sluice cluster start --taskmanagers MIN..MAX`) whose slots have all been free this long is stopped, while more than MIN run.',
  },
  'taskmanager.registration.timeout': {
    type: 'duration',
    default: '5 min',
    min: 1,
    description:
      'How long a TaskManager tries to register with a ResourceManager before it gives up and exits.',
  },
  'taskmanager.slot-isolation': {
    type: 'enum',
    default: 'thread',
    values: ['thread', 'none'],
    description:
      "`thread` runs each slot of a TaskManager on its own worker thread (N slots use up to N cores; user code that crashes or loops forever stalls only its slot); `none` runs every slot on the TaskManager's event loop. The local environment always runs `none`.",
  },
  'task.cancellation.timeout': {
    type: 'duration',
    default: '10 s',
    min: 1,
    description:
      'How long a cancelled task may take to end. A slot worker whose task has not ended by then (user code blocking its thread) is terminated and started afresh; its tasks end CANCELED (or FAILED when not cancelled).',
  },
  'taskmanager.id': {
    type: 'string',
    pattern: ID_PATTERN,
    patternHint: ID_HINT,
    description: 'Id of the TaskManager. Default: made from the host name and the process id.',
  },
  'taskmanager.host': {
    type: 'string',
    description: 'Host name the TaskManager reports. Default: the host name of the machine.',
  },
  'jobmanager.id': {
    type: 'string',
    pattern: ID_PATTERN,
    patternHint: ID_HINT,
    description: 'Id of the JobManager. Default: made from the host name and the process id.',
  },
  'parallelism.default': {
    type: 'int',
    default: 1,
    min: 1,
    max: 32768,
    description: 'Parallelism of operators and jobs that do not set their own.',
  },
  'execution.buffer-timeout': {
    type: 'duration',
    default: '100 ms',
    min: 0,
    max: 60000,
    description:
      'How long a network buffer may wait for more records before it is sent; 0 sends every record at once (lowest latency, lower throughput).',
  },
  'scheduler-mode': {
    type: 'enum',
    default: 'default',
    values: ['default', 'reactive'],
    description:
      "`reactive` (Flink's Reactive Mode): every job uses all free slots, up to its max parallelism, and is rescaled from a checkpoint when TaskManagers join or leave; `default` keeps the parallelism a job was submitted (or last rescaled) with.",
  },
  'jobmanager.adaptive-scheduler.resource-stabilization-timeout': {
    type: 'duration',
    default: '1 s',
    min: 0,
    description:
      'Reactive mode: after the slots available to a job change, wait until they have not changed for this long before rescaling the job to them (several TaskManagers starting together cause one rescale).',
  },
  'jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling': {
    type: 'duration',
    default: '5 s',
    min: 0,
    description:
      'Reactive mode: a job is not scaled up again sooner than this after its last rescale ended (against flapping). A job that lost slots restarts at once, at the parallelism it can still have.',
  },
  'jobmanager.memory.process.size': {
    type: 'memory',
    min: 67108864,
    description:
      'Memory of a JobManager process started by Sluice (cluster start, application and per-job mode); three quarters become the Node heap limit (--max-old-space-size).',
  },
  'taskmanager.memory.process.size': {
    type: 'memory',
    min: 67108864,
    description:
      'Memory of a TaskManager process started by Sluice (cluster start, application and per-job mode); three quarters become the Node heap limit (--max-old-space-size).',
  },
  'metrics.enabled': {
    type: 'boolean',
    default: true,
    description: 'Serve Prometheus metrics (`GET /metrics`) from every JobManager and TaskManager process.',
  },
  'metrics.port': {
    type: 'string',
    default: '9249-9299',
    pattern: /^\s*\d{1,5}\s*(-\s*\d{1,5}\s*)?$/,
    patternHint: 'a port or a range such as 9249-9299 (0: any free port)',
    description:
      'Port of the metrics endpoint, or a range: each process takes the first free one (several TaskManagers on one host). 0 takes any free port.',
  },
  'metrics.bind-address': {
    type: 'string',
    default: '127.0.0.1',
    description: 'Address the metrics endpoint listens on.',
  },
  'job.autoscaler.enabled': {
    type: 'boolean',
    default: false,
    description:
      "Run the autoscaler for a job: it sizes each vertex from its busy time, its records and its sources' backlog, and rescales the job (see docs/deployment.md, Elastic scaling). Every `job.autoscaler.*` key set on the JobManager is the default of its jobs; a job may set its own (`sluice run -D`).",
  },
  'job.autoscaler.scaling.enabled': {
    type: 'boolean',
    default: true,
    description:
      'Whether the autoscaler applies its decisions; `false` only computes, logs and shows them (advice mode).',
  },
  'job.autoscaler.control-loop.interval': {
    type: 'duration',
    default: '10 s',
    min: 100,
    description: "How often the autoscaler samples a job's metrics and evaluates it.",
  },
  'job.autoscaler.metrics.window': {
    type: 'duration',
    default: '15 min',
    min: 1,
    description:
      'Metrics are averaged over this window; no decision is taken before a full window has been collected since the last rescale.',
  },
  'job.autoscaler.stabilization.interval': {
    type: 'duration',
    default: '5 min',
    min: 0,
    description:
      'After a job starts or rescales, no metrics are collected for this long (they are not yet steady).',
  },
  'job.autoscaler.target.utilization': {
    type: 'number',
    default: 0.7,
    min: 0.01,
    max: 1,
    description:
      'Busy share each vertex is sized for, at the rate it must process (source rate plus catch-up).',
  },
  'job.autoscaler.target.utilization.boundary': {
    type: 'number',
    default: 0.3,
    min: 0,
    max: 1,
    description:
      'No vertex is rescaled while its utilisation stays within target ± boundary (0.7 ± 0.3: from 0.4 to 1.0).',
  },
  'job.autoscaler.catch-up.duration': {
    type: 'duration',
    default: '30 min',
    min: 1,
    description:
      "A source's backlog (JetStream: its consumer's pending messages) should be worked off within this time: it adds backlog ÷ duration to the rate a vertex is sized for.",
  },
  'job.autoscaler.scale-up.max-factor': {
    type: 'number',
    default: 100000,
    min: 0,
    description: 'A vertex grows to at most parallelism × (1 + factor) in one rescale.',
  },
  'job.autoscaler.scale-down.max-factor': {
    type: 'number',
    default: 0.6,
    min: 0,
    max: 1,
    description:
      'A vertex shrinks to at least parallelism × (1 − factor) in one rescale (1: no limit; 0: never down).',
  },
  'job.autoscaler.scale-down.interval': {
    type: 'duration',
    default: '1 h',
    min: 0,
    description: 'Least time between two scale-downs of a job (a scale-down wanted earlier waits).',
  },
  'job.autoscaler.scaling.effectiveness.detection.enabled': {
    type: 'boolean',
    default: true,
    description:
      "After a scale-up, compare the vertex's new processing rate with the expected one; when it grew by less than the threshold, the vertex is not scaled up again (the decision says so). Flink's default is false.",
  },
  'job.autoscaler.scaling.effectiveness.threshold': {
    type: 'number',
    default: 0.1,
    min: 0,
    max: 1,
    description: 'A scale-up that delivered less than this share of its expected rate gain was ineffective.',
  },
  'job.autoscaler.vertex.min-parallelism': {
    type: 'int',
    default: 1,
    min: 1,
    max: 32768,
    description: 'The autoscaler never sets a vertex below this parallelism.',
  },
  'job.autoscaler.vertex.max-parallelism': {
    type: 'int',
    default: 200,
    min: 1,
    max: 32768,
    description:
      "The autoscaler never sets a vertex above this parallelism (nor above the vertex's max parallelism, nor above the slots the cluster can offer).",
  },
  'restart-strategy.type': {
    type: 'enum',
    values: ['none', 'fixed-delay', 'exponential-delay', 'failure-rate'],
    description:
      'What a job does when a task fails: give up (`none`), or restart all its tasks after a delay, from the latest checkpoint (from the beginning without checkpoints). Default, as in Flink: `exponential-delay` when checkpointing is on, else `none`.',
  },
  'execution.checkpointing.interval': {
    type: 'duration',
    default: '0 ms',
    min: 0,
    description:
      'Take a checkpoint this often (0: no checkpoints). A job can set its own with `env.enableCheckpointing(ms)`.',
  },
  'execution.checkpointing.mode': {
    type: 'enum',
    default: 'EXACTLY_ONCE',
    values: ['EXACTLY_ONCE', 'AT_LEAST_ONCE'],
    description:
      '`EXACTLY_ONCE` aligns barriers at operators with several inputs; `AT_LEAST_ONCE` does not (lower latency, duplicates after a restore).',
  },
  'execution.checkpointing.timeout': {
    type: 'duration',
    default: '10 min',
    min: 1,
    description: 'A checkpoint not complete by then is aborted (its objects deleted).',
  },
  'execution.checkpointing.ack-timeout': {
    type: 'duration',
    min: 1,
    description:
      'A checkpoint that has received no acknowledgement for this long (since its trigger or its last ack) is aborted and the next one triggered: a trigger or an ack was lost. Default: `max(2 × interval, 10 s)`, at most `execution.checkpointing.timeout`.',
  },
  'execution.checkpointing.min-pause': {
    type: 'duration',
    default: '0 ms',
    min: 0,
    description: 'Least time between the end of one checkpoint and the start of the next.',
  },
  'execution.checkpointing.max-concurrent-checkpoints': {
    type: 'int',
    default: 1,
    min: 1,
    description: 'Checkpoints that may be in progress at once.',
  },
  'state.checkpoints.num-retained': {
    type: 'int',
    default: 2,
    min: 1,
    description:
      'Completed checkpoints kept per job (older ones are deleted). Restore falls back to an older retained one when the latest is damaged, so the default is 2 (Flink: 1).',
  },
  'state.backend.local-recovery': {
    type: 'boolean',
    default: true,
    description:
      "A TaskManager keeps in memory the state objects its subtasks stored for their job's latest checkpoint, and a subtask deployed on it restores the objects it finds there instead of reading them from the object store (a rescale places new subtasks where most of their key groups are). Flink's key (its default: off; here on, as the copy is the snapshot's own encoding, kept at no extra encoding cost).",
  },
  'state.backend.local-recovery.max-size': {
    type: 'memory',
    default: '512 mb',
    min: 0,
    description:
      "Most memory a TaskManager gives local recovery, over all jobs: room for a new copy is made by dropping other jobs' copies, oldest first; a copy that does not fit is not kept (its subtask then restores from the object store).",
  },
  'state.savepoints.dir': {
    type: 'string',
    default: 'savepoints',
    pattern: /^[A-Za-z0-9_.\-/]{1,200}$/,
    patternHint: 'a path of letters, digits, _ . - and / inside the state object store',
    description: 'Where savepoints go by default, as a path in the `state` object store.',
  },
  'restart-strategy.fixed-delay.attempts': {
    type: 'int',
    default: 1,
    min: 0,
    description: 'Restarts before the job fails (fixed-delay).',
  },
  'restart-strategy.fixed-delay.delay': {
    type: 'duration',
    default: '1 s',
    min: 0,
    description: 'Wait before each restart (fixed-delay).',
  },
  'restart-strategy.exponential-delay.initial-backoff': {
    type: 'duration',
    default: '1 s',
    min: 0,
    description: 'Wait before the first restart (exponential-delay).',
  },
  'restart-strategy.exponential-delay.max-backoff': {
    type: 'duration',
    default: '1 min',
    min: 0,
    description: 'Longest wait between restarts (exponential-delay).',
  },
  'restart-strategy.exponential-delay.backoff-multiplier': {
    type: 'number',
    default: 1.5,
    min: 1,
    description: 'Factor the wait grows by after each restart (exponential-delay).',
  },
  'restart-strategy.exponential-delay.reset-backoff-threshold': {
    type: 'duration',
    default: '1 h',
    min: 1,
    description:
      'A job that ran this long without failing starts again from the initial backoff (exponential-delay).',
  },
  'restart-strategy.exponential-delay.jitter-factor': {
    type: 'number',
    default: 0.1,
    min: 0,
    max: 1,
    description: 'Random share added to or taken from each wait (exponential-delay).',
  },
  'restart-strategy.exponential-delay.attempts-before-reset-backoff': {
    type: 'int',
    default: 2147483647,
    min: 0,
    description: 'Restarts before the job fails, counted since the last backoff reset (exponential-delay).',
  },
  'restart-strategy.failure-rate.max-failures-per-interval': {
    type: 'int',
    default: 1,
    min: 1,
    description: 'Failures within one interval that make the job fail (failure-rate).',
  },
  'restart-strategy.failure-rate.failure-rate-interval': {
    type: 'duration',
    default: '1 min',
    min: 1,
    description: 'The interval failures are counted in (failure-rate).',
  },
  'restart-strategy.failure-rate.delay': {
    type: 'duration',
    default: '1 s',
    min: 0,
    description: 'Wait before each restart (failure-rate).',
  },
  'rest.enabled': {
    type: 'boolean',
    default: true,
    description: 'Whether the JobManager serves the REST API (see `docs/rest-api.md`).',
  },
  'rest.port': {
    type: 'int',
    default: 8081,
    min: 0,
    max: 65535,
    description: 'Port of the REST API; 0 picks a free port (the JobManager logs the URL it serves).',
  },
  'rest.bind-address': {
    type: 'string',
    default: '127.0.0.1',
    description:
      'Address the REST API listens on; `0.0.0.0` for every interface. Whoever reaches it can run job files on this host.',
  },
  'rest.max-upload-size': {
    type: 'memory',
    default: '64 mb',
    min: KB,
    max: 1024 * MB,
    description: 'Largest request body the REST API accepts (job file uploads); larger ones get 413.',
  },
  'high-availability.type': {
    type: 'enum',
    default: 'none',
    values: ['none', 'nats'],
    description:
      'High availability of the JobManager: `none` (one JobManager) or `nats` (leader election on NATS JetStream KV; standby JobManagers take over, jobs are recovered).',
  },
  'high-availability.lease': {
    type: 'duration',
    default: '3 s',
    min: 100,
    description:
      'Lease of the leader (the TTL of the leader bucket); the same on every JobManager of a cluster. Failover after a leader dies takes about this long.',
  },
  'high-availability.renew-interval': {
    type: 'duration',
    min: 1,
    description: 'How often the leader renews its lease. Default: a third of the lease.',
  },
  'high-availability.poll-interval': {
    type: 'duration',
    min: 1,
    description: 'How often a standby JobManager tries to take the lead. Default: a sixth of the lease.',
  },
  'high-availability.replicas': {
    type: 'int',
    default: 1,
    min: 1,
    max: 5,
    description:
      'Replicas of the HA buckets (leader, job graphs, job results, checkpoints and state, job bundles) when they are created (1, 3 or 5; 3 on a 3-node NATS cluster).',
  },
  'log.level': {
    type: 'enum',
    default: 'info',
    values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
    description: 'Lowest level that is logged.',
  },
  'log.format': {
    type: 'enum',
    default: 'auto',
    values: ['auto', 'json', 'pretty'],
    description: 'Log output: `json` lines, `pretty` text, or `auto` (pretty on a terminal, JSON otherwise).',
  },
} as const satisfies Record<string, OptionSpec>;

export type OptionKey = keyof typeof OPTIONS;

export const OPTION_KEYS: readonly OptionKey[] = Object.keys(OPTIONS) as OptionKey[];

export function isOptionKey(key: string): key is OptionKey {
  return Object.hasOwn(OPTIONS, key);
}

export function optionSpec(key: OptionKey): OptionSpec {
  return OPTIONS[key];
}

/** The environment variable of a key: `SLUICE_` + the key upper-cased, `.` and `-` turned into `_`. */
export function envVarName(key: string): string {
  return `SLUICE_${key.toUpperCase().replace(/[.-]/g, '_')}`;
}
