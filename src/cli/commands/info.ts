import { Command } from 'commander';
import type { JobGraph } from '../../jobgraph/job-graph.js';
import type { JobId } from '../../jobgraph/job-id.js';
import { table } from '../format.js';
import { configFrom, type GlobalOptions, withGlobalOptions } from '../global-options.js';

/** Prints a job graph: its vertices (chains of operators), their parallelism, and the edges. */
export function jobGraphText(graph: JobGraph): string {
  const lines = [`Job graph '${graph.name}'`, ''];
  lines.push(
    table(
      ['VERTEX', 'PARALLELISM', 'MAX PARALLELISM', 'OPERATORS (chained)'],
      graph.vertices.map((v) => [
        v.id,
        String(v.parallelism),
        String(v.maxParallelism),
        v.operator.kind === 'chain'
          ? v.operator.operators.map((o) => `${o.name} [${o.uid}]`).join(' -> ')
          : v.name,
      ]),
    ),
  );
  if (graph.edges.length > 0) {
    lines.push(
      '',
      table(
        ['EDGE', 'FROM', 'TO', 'PARTITIONER'],
        graph.edges.map((e) => [e.id, e.source, e.target, e.partitioner]),
      ),
    );
  }
  return lines.join('\n');
}

export function infoCommand(): Command {
  return withGlobalOptions(new Command('info'))
    .description("print a job file's job graph (vertices, parallelism, chains, edges) without running it")
    .argument('<job>', 'the job file')
    .argument('[args...]', 'arguments of the job')
    .option('-p, --parallelism <n>', 'default parallelism (parallelism.default)')
    .option('--json', 'print the JobGraph as JSON (with its program: the bundle hash, args, parallelism)')
    .option(
      '--upload',
      "store the bundle in the cluster's artifact store, so that the printed graph can be submitted by any NATS client (docs/protocol.md)",
    )
    .option('--execution <n>', 'which execute() call of the program (default 1: the first)', '1')
    .passThroughOptions()
    .action(
      async (
        job: string,
        args: string[],
        options: GlobalOptions & {
          parallelism?: string;
          json?: boolean;
          upload?: boolean;
          execution: string;
        },
      ) => {
        const config = configFrom(options, { 'parallelism.default': options.parallelism });
        const index = Number(options.execution) - 1;
        if (!Number.isInteger(index) || index < 0) throw new Error(`--execution must be a positive integer`);
        const { bundleJobFile, localBundleFile, uploadBundle } = await import(
          '../../execution/job-program.js'
        );
        const { planProgram } = await import('../../execution/planner.js');
        const { toJobGraph } = await import('../../jobgraph/chaining.js');
        const bundle = await bundleJobFile(job);
        const file = await localBundleFile(bundle);
        const program = { args, executionIndex: index, entry: job, parallelism: config.parallelismDefault };
        const { graph, jobName } = await planProgram(file, program, `info-${Date.now()}`);
        if (options.upload) {
          const { connectNats } = await import('../../nats/connection.js');
          const nc = await connectNats(config.nats, { name: 'sluice-info', reconnect: false });
          try {
            await uploadBundle(nc, config.clusterId, bundle, config.highAvailability.replicas);
          } finally {
            await nc.close();
          }
        }
        // A placeholder id: whoever submits the graph picks the job id.
        const jobGraph = toJobGraph(graph, {
          jobId: '0'.repeat(32) as JobId,
          name: jobName,
          program: { ...program, artifact: { sha256: bundle.sha256, sizeBytes: bundle.sizeBytes } },
        });
        process.stdout.write(
          options.json ? `${JSON.stringify(jobGraph, null, 2)}\n` : `${jobGraphText(jobGraph)}\n`,
        );
      },
    );
}
