/**
 * The worker thread of one TaskManager slot (`taskmanager.slot-isolation: thread`): runs the tasks the
 * TaskExecutor deploys into that slot, on its own event loop, its own NATS connection (data, credits,
 * artifacts, state) and its own plans (a job's bundle is imported and its main run to execute() once per
 * job in this worker, shared by the job's tasks in the slot), and its thread channels: a port to each
 * other slot's worker, for the frames between subtasks of different slots (network/thread-channels.ts).
 *
 * It promises: every deployed task ends with exactly one `ended` message; `running`, `ack`, `decline`,
 * `local-state` (a copy of stored state kept for local recovery, for the other slots) and periodic `progress` (accumulators and operator counters) go to the main thread, which owns the
 * execution table and talks to the JobMaster. It never talks to the ResourceManager or the JobMaster
 * itself, and it refuses nothing: the main thread checked the request. A task that blocks this thread
 * stalls only this slot; the main thread terminates the worker when such a task is cancelled.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Subjects } from '../actors/subjects.js';
import { createLogger } from '../common/log.js';
import { DefaultPlanResolver } from '../execution/plan-resolver.js';
import type { TaskCounters } from '../metrics/task-metrics.js';
import { connectNats } from '../nats/connection.js';
import { lazyArtifactCache } from '../runtime/artifacts/artifact-store.js';
import { LocalStateCache, localRecovery } from '../runtime/checkpoint/local-state.js';
import { StateStore } from '../runtime/checkpoint/state-store.js';
import { installThreadChannelHub, ThreadChannelHub } from '../runtime/network/thread-channels.js';
import type { TaskControls } from '../runtime/task/stream-task.js';
import type { TaskContext } from '../runtime/taskexecutor/builtin-tasks.js';
import type { DeployRequest } from '../runtime/taskexecutor/protocol.js';
import {
  type CountersSnapshot,
  type FromSlotWorker,
  type SlotWorkerData,
  type TaskProgressSnapshot,
  type ToSlotWorker,
  toThreadError,
} from '../runtime/taskexecutor/slot-protocol.js';
import { runTask, type TaskRunEnvironment } from '../runtime/taskexecutor/task-runner.js';

interface WorkerTask {
  jobId: string;
  controller: AbortController;
  controls: TaskControls;
  accumulators: Record<string, number>;
  counters: TaskCounters | undefined;
  running: boolean;
}

const port = parentPort;
if (!port) throw new Error('slot-worker.js runs as a worker thread of a TaskManager (see slot-workers.ts)');
const data = workerData as SlotWorkerData;
const { config } = data;
if (data.sourceMaps) process.setSourceMapsEnabled(true);

const log = createLogger({
  level: config.log.level,
  format: config.log.format,
  base: {
    cluster: config.clusterId,
    process: 'taskmanager',
    taskManager: data.taskManagerId,
    slot: data.slotIndex,
  },
});
const post = (message: FromSlotWorker) => port.postMessage(message);
// Thread channels to the other slots' workers (their ports come as 'peer' messages).
const hub = new ThreadChannelHub({ process: data.processToken, slot: data.slotIndex }, log);
installThreadChannelHub(hub);
const tasks = new Map<number, WorkerTask>();
// Local recovery: this thread's copies and those the other slots' workers kept (shared memory).
const localStates = config.taskmanager.localRecovery.enabled
  ? new LocalStateCache(config.taskmanager.localRecovery.maxBytes)
  : undefined;

const connected = connectNats(config.nats, {
  name: `sluice-taskmanager-${data.taskManagerId}-slot-${data.slotIndex}`,
  log,
});
// Nothing runs without the connection: a worker that cannot connect dies, and the main thread fails
// the slot's tasks and starts a new worker.
connected.catch((err: unknown) => {
  throw err;
});

const environment: Promise<TaskRunEnvironment> = connected.then((nc) => {
  let stateStore: Promise<StateStore> | undefined;
  const plans = new DefaultPlanResolver(
    lazyArtifactCache(nc, config.clusterId, config.highAvailability.replicas),
  );
  // This thread runs no heartbeats: load the API job bundles link against before the first job comes.
  plans.warmUp();
  return {
    nc,
    subjects: new Subjects(config.clusterId),
    clusterId: config.clusterId,
    log,
    plans,
    ...(localStates
      ? { localRecovery: localRecovery(localStates, (copy) => post({ type: 'local-state', copy })) }
      : {}),
    stateStore: () => {
      stateStore ??= StateStore.open(nc, config.clusterId, { replicas: config.highAvailability.replicas });
      stateStore.catch(() => {
        stateStore = undefined;
      });
      return stateStore;
    },
  };
});
environment.catch(() => undefined);

function snapshot(id: number, task: WorkerTask): TaskProgressSnapshot {
  const counters = task.counters;
  const countersSnapshot: CountersSnapshot | undefined = counters && {
    jobId: counters.jobId,
    vertex: counters.vertex,
    subtask: counters.subtask,
    backpressuredMs: counters.backpressuredMs(),
    busyMs: counters.busyMs?.() ?? 0,
    ...(counters.pendingRecords?.() === undefined ? {} : { pendingRecords: counters.pendingRecords()! }),
    operators: counters.operators.map((o) => ({
      name: o.name,
      uid: o.uid,
      recordsIn: o.recordsIn(),
      recordsOut: o.recordsOut(),
    })),
  };
  return {
    id,
    accumulators: { ...task.accumulators },
    ...(countersSnapshot ? { counters: countersSnapshot } : {}),
  };
}

const progress = setInterval(() => {
  if (tasks.size === 0) return;
  post({ type: 'progress', tasks: [...tasks].map(([id, task]) => snapshot(id, task)) });
}, data.progressIntervalMs);

async function deploy(id: number, request: DeployRequest, epoch: number | undefined): Promise<void> {
  const controller = new AbortController();
  const task: WorkerTask = {
    jobId: request.task.jobId,
    controller,
    controls: {},
    accumulators: {},
    counters: undefined,
    running: false,
  };
  tasks.set(id, task);
  const ctx: TaskContext = {
    subtaskIndex: request.task.subtaskIndex,
    parallelism: request.parallelism,
    signal: controller.signal,
    accumulators: task.accumulators,
    running: () => {
      if (task.running) return;
      task.running = true;
      post({ type: 'running', id });
    },
  };
  try {
    const env = await environment;
    await runTask(
      {
        ...env,
        metrics: {
          add: (counters) => {
            task.counters = counters;
            return () => {
              task.counters = undefined;
            };
          },
        },
      },
      {
        request,
        epoch,
        ctx,
        controls: task.controls,
        ack: (checkpointId, handle, syncMs) => post({ type: 'ack', id, checkpointId, handle, syncMs }),
        decline: (checkpointId, reason) => post({ type: 'decline', id, checkpointId, reason }),
      },
    );
    post({ type: 'ended', id, accumulators: { ...task.accumulators } });
  } catch (err) {
    post({ type: 'ended', id, accumulators: { ...task.accumulators }, error: toThreadError(err) });
  } finally {
    tasks.delete(id);
    if (![...tasks.values()].some((t) => t.jobId === task.jobId)) {
      void environment.then((env) => env.plans.release(task.jobId)).catch(() => undefined);
    }
  }
}

async function stop(): Promise<void> {
  clearInterval(progress);
  for (const task of tasks.values()) task.controller.abort(new Error('TaskManager shutting down'));
  const nc = await connected.catch(() => undefined);
  await nc?.drain().catch(() => nc.close());
  log.flush();
  process.exit(0);
}

port.on('message', (message: ToSlotWorker) => {
  switch (message.type) {
    case 'deploy':
      void deploy(message.id, message.request, message.epoch);
      break;
    case 'cancel':
      tasks.get(message.id)?.controller.abort(new Error(message.reason));
      break;
    case 'trigger': {
      const trigger = tasks.get(message.id)?.controls.trigger;
      if (trigger) trigger(message.checkpointId, message.target, message.stop);
      else {
        post({
          type: 'decline',
          id: message.id,
          checkpointId: message.checkpointId,
          reason: 'the task is not a running source',
        });
      }
      break;
    }
    case 'complete':
      tasks.get(message.id)?.controls.complete?.(message.checkpointId);
      break;
    case 'local-state':
      localStates?.add(message.copy);
      break;
    case 'peer':
      hub.addPeer(message.slot, message.port);
      break;
    case 'stop':
      void stop();
      break;
  }
});
