/** Plain-text output of client commands. */

import { duration } from '../common/duration.js';
import type { ErrorInfo, JobDetails, JobSummary } from '../runtime/dispatcher/protocol.js';

export { duration };

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function jobTable(jobs: JobSummary[]): string {
  return table(
    ['JOB ID', 'STATUS', 'PARALLELISM', 'STARTED', 'DURATION', 'APPLICATION', 'NAME'],
    jobs.map((j) => [
      j.jobId,
      j.status,
      String(j.parallelism),
      new Date(j.startTime).toISOString(),
      duration(j.durationMs),
      j.applicationId ?? '-',
      j.name,
    ]),
  );
}

export function errorText(error: ErrorInfo): string {
  const lines = [error.message];
  if (error.location) lines.push(`  at task ${error.location}`);
  if (error.stack) lines.push(error.stack.split('\n').slice(1).join('\n'));
  return lines.join('\n');
}

export function jobDetailsText(job: JobDetails): string {
  const out = [
    `Job ${job.jobId} (${job.name})`,
    `  status:      ${job.status}`,
    `  started:     ${new Date(job.startTime).toISOString()}`,
    `  duration:    ${duration(job.durationMs)}`,
  ];
  for (const [name, value] of Object.entries(job.accumulators))
    out.push(`  ${`${name}:`.padEnd(12)} ${value}`);
  out.push(
    '',
    table(
      ['VERTEX', 'SUBTASK', 'STATE', 'ATTEMPT', 'TASKMANAGER'],
      job.vertices.flatMap((v) =>
        v.subtasks.map((s) => [
          v.name,
          `${s.index + 1}/${v.parallelism}`,
          s.state,
          String(s.attempt),
          s.taskManagerId ?? '-',
        ]),
      ),
    ),
  );
  if (job.error) out.push('', `Failure cause: ${errorText(job.error)}`);
  return out.join('\n');
}
