/**
 * Cluster-wide resources: `/overview`, `/config`, `/jobmanager/config`, `/taskmanagers`.
 */

import { isTerminalJobStatus, JobStatus } from '../../api/job-status.js';
import type { ClusterClient } from '../../client/cluster-client.js';
import type { SluiceConfig } from '../../config/config.js';
import { ok, type Router } from '../router.js';

export function clusterRoutes(router: Router, client: ClusterClient, config: SluiceConfig): void {
  router.get('/overview', async () => {
    const overview = await client.overview();
    const count = (status: string) => overview.jobs[status] ?? 0;
    let running = 0;
    for (const [status, n] of Object.entries(overview.jobs)) {
      if (!isTerminalJobStatus(status as JobStatus)) running += n;
    }
    return ok({
      taskmanagers: overview.taskManagers.length,
      'slots-total': overview.slotsTotal,
      'slots-available': overview.slotsFree,
      'jobs-running': running,
      'jobs-finished': count(JobStatus.FINISHED),
      'jobs-cancelled': count(JobStatus.CANCELED),
      'jobs-failed': count(JobStatus.FAILED),
      'jobs-suspended': count(JobStatus.SUSPENDED),
      'sluice-version': overview.version,
      'jobmanager-id': overview.jobManagerId,
    });
  });

  // The effective configuration of this JobManager, secrets masked.
  router.get('/config', () => ok(config.effective));
  router.get('/jobmanager/config', () =>
    ok(Object.entries(config.effective).map(([key, value]) => ({ key, value }))),
  );

  router.get('/taskmanagers', async () => {
    const { taskManagers } = await client.overview();
    const now = Date.now();
    return ok({
      taskmanagers: taskManagers.map((tm) => ({
        id: tm.id,
        host: tm.host,
        pid: tm.pid,
        slotsNumber: tm.slotsTotal,
        freeSlots: tm.slotsFree,
        // As in Flink, despite its name: when the last heartbeat came (ms since the epoch).
        timeSinceLastHeartbeat: now - tm.lastHeartbeatMs,
      })),
    });
  });
}
