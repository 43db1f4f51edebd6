/**
 * The JobMaster's protocol (`sluice.<cluster>.jm.<jobId>.<type>`), declared once
 * ({@link JobMasterProtocol}): what the TaskExecutors running a job's tasks report to its JobMaster.
 *
 * Task reports are fenced `own-epoch`: a task deployed by a former leader (another epoch) reports to the
 * same subject, and the JobMaster of the current leader drops it (counted) before a handler sees it. The
 * execution report of a heartbeat lists executions of any epoch and is validated by the reconciler
 * (execution-reconciler.ts: a bad one is a counted drop), so it takes any body here.
 */
import { z } from 'zod';
import { defineProtocol, tell } from '../../actors/protocol.js';
import { CheckpointAckSchema, CheckpointDeclineSchema } from '../checkpoint/protocol.js';
import { TaskProgress, TaskStateUpdate } from '../taskexecutor/protocol.js';

export const JobMasterProtocol = defineProtocol({
  role: 'JobMaster',
  subject: 'jm.<jobId>',
  address: (subjects, jobId: string) => subjects.jobMaster(jobId),
  clientFacing: false,
  messages: {
    'task-state': tell(TaskStateUpdate, {
      description: "A task's state changed (RUNNING, FINISHED, FAILED with its cause, CANCELED).",
      fenced: 'own-epoch',
    }),
    'task-progress': tell(TaskProgress, {
      description: "A running task's accumulators, with every heartbeat.",
      fenced: 'own-epoch',
    }),
    ack: tell(CheckpointAckSchema, {
      description: "A task's state of a checkpoint is stored: its handle.",
      fenced: 'own-epoch',
    }),
    decline: tell(CheckpointDeclineSchema, {
      description: 'A task could not take part in a checkpoint (`taskGone`: it does not run there).',
      fenced: 'own-epoch',
    }),
    executions: tell(z.unknown(), {
      description:
        'Every heartbeat: the executions of the job a TaskExecutor holds (ExecutionReportSchema; reconciled).',
    }),
  },
});
