/**
 * Where a rescale puts its new subtasks, for local recovery (`state.backend.local-recovery`): the
 * TaskManagers keep the state objects their subtasks stored for the checkpoint the new subtasks restore
 * from, so a new subtask placed on the TaskManager that holds most of its key groups reads the least.
 *
 * `placeForLocalRecovery` orders the slots the ResourceManager gave (the scheduler deploys subtask `i` of
 * every vertex into slot `i`): each slot index is scored per TaskManager by the bytes of keyed state its
 * subtasks restore from objects stored there (an old object's bytes split evenly over its key groups, the
 * part that overlaps the new subtask's key groups counted), and slot indexes take the slots of their best
 * TaskManagers, highest scores first. It promises the same slots, each once, in another order; slot
 * indexes with no keyed state to restore (or whose TaskManagers have no slot left) keep the slots left
 * over, in the order given. Connector state (read by every new subtask) does not count.
 * It refuses nothing: a location it is not told is a TaskManager that holds nothing.
 */
import type { JobGraph } from '../../jobgraph/job-graph.js';
import type { RestoreSpec } from '../checkpoint/state-handles.js';
import type { SlotAssignment } from '../resourcemanager/resource-manager.js';
import { keyGroupRange } from '../state/key-groups.js';

/**
 * @param location the TaskManager that ran old subtask `subtaskIndex` of `vertexId` (the one that stored
 *   its state object), or undefined when unknown
 */
export function placeForLocalRecovery(
  slots: readonly SlotAssignment[],
  graph: JobGraph,
  restore: RestoreSpec,
  location: (vertexId: string, subtaskIndex: number) => string | undefined,
): SlotAssignment[] {
  const parallelism = new Map(graph.vertices.map((v) => [v.id, v.parallelism]));
  /** slot index → TaskManager → bytes restored from objects stored there */
  const scores = slots.map(() => new Map<string, number>());
  for (const handle of restore.handles) {
    const newParallelism = parallelism.get(handle.vertexId);
    const keyed = handle.operators.find((o) => o.keyed);
    if (handle.object === null || newParallelism === undefined || keyed === undefined) continue;
    const tm = location(handle.vertexId, handle.subtaskIndex);
    if (tm === undefined) continue;
    const maxP = keyed.maxParallelism;
    const [os, oe] = keyGroupRange(handle.subtaskIndex, maxP, handle.parallelism);
    const bytesPerGroup = handle.object.sizeBytes / Math.max(1, oe - os + 1);
    for (let i = 0; i < Math.min(newParallelism, slots.length); i++) {
      const [ns, ne] = keyGroupRange(i, maxP, newParallelism);
      const overlap = Math.min(oe, ne) - Math.max(os, ns) + 1;
      if (overlap <= 0) continue;
      const score = scores[i]!;
      score.set(tm, (score.get(tm) ?? 0) + overlap * bytesPerGroup);
    }
  }
  const candidates: Array<{ index: number; tm: string; bytes: number }> = [];
  for (const [index, score] of scores.entries())
    for (const [tm, bytes] of score) candidates.push({ index, tm, bytes });
  // Highest first; ties by slot index, then TaskManager id (deterministic).
  candidates.sort((a, b) => b.bytes - a.bytes || a.index - b.index || (a.tm < b.tm ? -1 : 1));
  const free = new Map<string, SlotAssignment[]>();
  for (const slot of slots) {
    const list = free.get(slot.taskManagerId);
    if (list) list.push(slot);
    else free.set(slot.taskManagerId, [slot]);
  }
  const placed: Array<SlotAssignment | undefined> = slots.map(() => undefined);
  const taken = new Set<SlotAssignment>();
  for (const { index, tm } of candidates) {
    if (placed[index] !== undefined) continue;
    const slot = free.get(tm)?.shift();
    if (slot === undefined) continue;
    placed[index] = slot;
    taken.add(slot);
  }
  const rest = slots.filter((s) => !taken.has(s));
  return placed.map((slot) => slot ?? rest.shift()!);
}
