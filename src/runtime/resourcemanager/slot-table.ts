/**
 * The ResourceManager's slot table as plain functions: each registered TaskManager's slots, each free
 * (`null`) or held by a job. Promises: an allocation or reservation takes slots all at once or none
 * (returns undefined / false, the table unchanged); an allocation spreads over the TaskManagers with the
 * most free slots (ties: lowest id, so it is stable). Called only from the ResourceManager's mailbox.
 */

export interface SlotAssignment {
  taskManagerId: string;
  slotIndex: number;
}

/** A TaskManager's slots: slots[i] is the job holding slot i, or null when free. */
export interface SlotRow {
  readonly id: string;
  slots: Array<string | null>;
}

export function freeSlots(rows: Iterable<SlotRow>): number {
  let n = 0;
  for (const row of rows) n += row.slots.filter((s) => s === null).length;
  return n;
}

export function totalSlots(rows: Iterable<SlotRow>): number {
  let n = 0;
  for (const row of rows) n += row.slots.length;
  return n;
}

export function heldSlots(rows: Iterable<SlotRow>, jobId: string): number {
  let n = 0;
  for (const row of rows) n += row.slots.filter((s) => s === jobId).length;
  return n;
}

/**
 * `count` slots for a job, its own counted as free (a job asking for slots holds none — a restart releases
 * them first — so slots a TaskManager reports as held by it are leftovers of its run under a former leader,
 * HA recovery: usable). With `replace`, the job's slots the assignment does not use are freed (a rescale to
 * fewer slots).
 */
export function allocateSlots(
  rows: Iterable<SlotRow>,
  jobId: string,
  count: number,
  replace: boolean,
): SlotAssignment[] | undefined {
  const free = new Map<SlotRow, number[]>();
  let available = 0;
  for (const row of rows) {
    const indexes = row.slots.flatMap((holder, index) =>
      holder === null || holder === jobId ? [index] : [],
    );
    available += indexes.length;
    free.set(row, indexes);
  }
  if (available < count) return undefined;
  const assignments: SlotAssignment[] = [];
  for (let i = 0; i < count; i++) {
    // Spread out: take from the TaskManager with the most free slots (ties: lowest id, stable).
    let best: SlotRow | undefined;
    for (const [row, indexes] of free) {
      const bestFree = best ? free.get(best)!.length : 0;
      if (
        indexes.length > bestFree ||
        (indexes.length === bestFree && best && indexes.length > 0 && row.id < best.id)
      ) {
        best = row;
      }
    }
    const slotIndex = free.get(best!)!.shift()!;
    best!.slots[slotIndex] = jobId;
    assignments.push({ taskManagerId: best!.id, slotIndex });
  }
  if (replace) {
    for (const [row, indexes] of free)
      for (const i of indexes) if (row.slots[i] === jobId) row.slots[i] = null;
  }
  return assignments;
}

/** Takes free slots for the job until it holds `count` (it keeps its own); false when too few are free. */
export function reserveUpTo(rows: readonly SlotRow[], jobId: string, count: number): boolean {
  const held = heldSlots(rows, jobId);
  if (held >= count) return true;
  if (freeSlots(rows) + held < count) return false;
  let missing = count - held;
  for (const row of rows) {
    for (let i = 0; i < row.slots.length && missing > 0; i++) {
      if (row.slots[i] === null) {
        row.slots[i] = jobId;
        missing--;
      }
    }
  }
  return true;
}
