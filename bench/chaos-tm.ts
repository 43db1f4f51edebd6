/**
 * `npm run chaos:tm [-- --events N --kills K]`: the exactly-once TaskManager chaos run at full size (default
 * 200 000 events, 3 kills). Prints what it did and the verdict; exits 1 on a gap, a duplicate or a wrong sum.
 */
import { runTaskManagerChaos } from '../test/checkpoint/tm-chaos.js';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

const result = await runTaskManagerChaos({
  events: arg('events', 200_000),
  kills: arg('kills', 3),
  spinEvery: arg('spin-every', 25),
  checkpointIntervalMs: arg('interval', 500),
  log: (line) => console.log(line),
});
console.log(JSON.stringify(result, null, 2));
const ok =
  result.missing === 0 &&
  result.duplicates === 0 &&
  result.wrongSums === 0 &&
  result.outputRecords === result.events;
console.log(ok ? 'exactly once: every result once, no gap, no duplicate' : 'EXACTLY-ONCE VIOLATED');
process.exit(ok ? 0 : 1);
