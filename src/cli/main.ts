/**
 * The `sluice` command line. Every failure ends as one line on stderr and a non-zero exit status;
 * stack traces only with SLUICE_DEBUG=1.
 */
import { Command, CommanderError } from 'commander';
import { isSluiceError } from '../common/errors.js';
import { VERSION } from '../common/version.js';
import { clusterCommand } from './commands/cluster.js';
import { infoCommand } from './commands/info.js';
import { jobManagerCommand } from './commands/jobmanager.js';
import {
  cancelCommand,
  checkpointsCommand,
  listCommand,
  rescaleCommand,
  savepointCommand,
  statusCommand,
  stopCommand,
} from './commands/jobs.js';
import { runCommand } from './commands/run.js';
import { runApplicationCommand } from './commands/run-application.js';
import { taskManagerCommand } from './commands/taskmanager.js';

export function buildProgram(): Command {
  const program = new Command('sluice')
    .description('Sluice: stream processing on Node.js and NATS')
    .version(VERSION)
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride();
  for (const command of [
    jobManagerCommand(),
    taskManagerCommand(),
    clusterCommand(),
    runCommand(),
    runApplicationCommand(),
    infoCommand(),
    listCommand(),
    statusCommand(),
    cancelCommand(),
    savepointCommand(),
    stopCommand(),
    checkpointsCommand(),
    rescaleCommand(),
  ]) {
    program.addCommand(command);
  }
  for (const command of program.commands) {
    command.exitOverride();
    for (const sub of command.commands) sub.exitOverride();
  }
  return program;
}

/** Runs the CLI; resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`sluice: ${isSluiceError(err) ? `${message}` : message}\n`);
    if (process.env.SLUICE_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}
