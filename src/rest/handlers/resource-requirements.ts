/**
 * A job's resource requirements (Flink's FLIP-291): `GET /jobs/:jobid/resource-requirements` gives each
 * vertex's parallelism as `{ "<vertexId>": { "parallelism": { "lowerBound": 1, "upperBound": N } } }`,
 * `PUT` with the same shape rescales the job to each vertex's `upperBound` (vertices not named keep theirs).
 * Differences from Flink: the PUT answers once the job runs at the new parallelism (200 with what changed)
 * instead of at once, and `lowerBound` is only checked (1 ≤ lowerBound ≤ upperBound), not used.
 * `GET /jobs/:jobid/rescales` (Sluice's own) gives the current and max parallelism, the scheduler mode and
 * the last rescales, for the dashboard.
 *
 * Refuses: a body not in that shape (400), a parallelism the job cannot have (400, INVALID_RESCALE), an
 * unknown job (404), an ended job or one being rescaled already (409).
 */
import { z } from 'zod';
import type { ClusterClient } from '../../client/cluster-client.js';
import type { ResourceRequirementsReply } from '../../runtime/dispatcher/protocol.js';
import { readJson } from '../body.js';
import { badRequest } from '../errors.js';
import { ok, type Router } from '../router.js';
import { jobIdOf, unknownJobAs404 } from './jobs.js';

const Bound = z.number().int('bounds are whole numbers');

const ResourceRequirementsBody = z.record(
  z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'vertex ids are 1-64 letters, digits, - or _'),
  z.object({ parallelism: z.object({ lowerBound: Bound, upperBound: Bound }) }),
);

export function resourceRequirementRoutes(router: Router, client: ClusterClient): void {
  const requirements = async (raw: string): Promise<ResourceRequirementsReply> => {
    const jobId = jobIdOf(raw);
    try {
      return await client.resourceRequirements(jobId);
    } catch (err) {
      throw unknownJobAs404(err, jobId);
    }
  };

  router.get('/jobs/:jobid/resource-requirements', async (ctx) => {
    const reply = await requirements(ctx.params.jobid!);
    return ok(
      Object.fromEntries(
        Object.entries(reply.parallelism).map(([id, p]) => [
          id,
          { parallelism: { lowerBound: 1, upperBound: p } },
        ]),
      ),
    );
  });

  router.put('/jobs/:jobid/resource-requirements', async (ctx) => {
    const jobId = jobIdOf(ctx.params.jobid!);
    const body = await readJson(ctx.req, ResourceRequirementsBody);
    if (Object.keys(body).length === 0) throw badRequest('no vertex in the resource requirements');
    const vertices: Record<string, number> = {};
    for (const [id, { parallelism }] of Object.entries(body)) {
      const { lowerBound, upperBound } = parallelism;
      if (upperBound >= 1 && (lowerBound < 1 || lowerBound > upperBound)) {
        throw badRequest(
          `vertex '${id}': lowerBound ${parallelism.lowerBound} must be from 1 to upperBound ${parallelism.upperBound}`,
        );
      }
      vertices[id] = parallelism.upperBound;
    }
    try {
      const reply = await client.rescale(jobId, {
        vertices,
        reason: 'PUT /jobs/:jobid/resource-requirements',
      });
      return ok({
        jobid: jobId,
        previous: reply.previous,
        target: reply.target,
        ...(reply.downtimeMs === undefined ? {} : { 'downtime-ms': reply.downtimeMs }),
      });
    } catch (err) {
      throw unknownJobAs404(err, jobId);
    }
  });

  router.get('/jobs/:jobid/rescales', async (ctx) => ok(await requirements(ctx.params.jobid!)));
}
