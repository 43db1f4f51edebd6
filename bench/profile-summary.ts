/**
 * Summarises V8 CPU profiles (`node --cpu-prof`): busy time (all samples but `(idle)`), the share of
 * garbage collection, self time per package (msgpackr, @nats-io, …, Sluice's own files, the job's bundle,
 * Node internals), and the top entries by self time, grouped by function and file.
 *
 *   npx tsx bench/profile-summary.ts [--top N] FILE.cpuprofile…
 *
 * Refuses a file that is not a CPU profile (no nodes/samples/timeDeltas) with a message naming it.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function load(file: string): CpuProfile {
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<CpuProfile>;
  if (!Array.isArray(parsed.nodes) || !Array.isArray(parsed.samples) || !Array.isArray(parsed.timeDeltas)) {
    throw new Error(`${file} is not a V8 CPU profile (no nodes, samples or timeDeltas)`);
  }
  return parsed as CpuProfile;
}

function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || '(anonymous)';
  if (!url) return name;
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('node_modules/');
  const short = nm >= 0 ? path.slice(nm + 'node_modules/'.length) : basename(path);
  return `${name} ${short}:${lineNumber + 1}`;
}

/** The group of a sample: a package under node_modules, `sluice`, `job bundle`, `node` or a V8 pseudo-entry. */
function groupOf(node: ProfileNode): string {
  const url = node.callFrame.url;
  if (!url)
    return node.callFrame.functionName.startsWith('(') ? node.callFrame.functionName : 'node (native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + 'node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  if (url.includes('?sluice=') || url.endsWith('.mjs')) return 'job bundle';
  if (/\/(dist|src)\//.test(url)) return 'sluice';
  return 'node';
}

function summarise(file: string, top: number): void {
  const profile = load(file);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const groups = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    const dt = profile.timeDeltas[i + 1] ?? 0; // the time until the next sample belongs to this one
    if (node === undefined || dt <= 0) continue;
    const key = label(node);
    self.set(key, (self.get(key) ?? 0) + dt);
    const group = groupOf(node);
    groups.set(group, (groups.get(group) ?? 0) + dt);
    total += dt;
  }
  const idle = self.get('(idle)') ?? 0;
  const busy = total - idle;
  const gc = self.get('(garbage collector)') ?? 0;
  const s = (us: number) => `${(us / 1e6).toFixed(2)} s`;
  const pct = (us: number) => `${((100 * us) / busy).toFixed(1)} %`;
  console.log(`\n${file}`);
  console.log(`  busy ${s(busy)} (idle ${s(idle)}), GC ${s(gc)} = ${pct(gc)} of busy`);
  const byGroup = [...groups.entries()]
    .filter(([k]) => k !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([k, us]) => `${k} ${pct(us)}`);
  console.log(`  by package: ${byGroup.join(', ')}`);
  const rows = [...self.entries()]
    .filter(([k]) => k !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, top);
  for (const [k, us] of rows) console.log(`  ${s(us).padStart(8)} ${pct(us).padStart(7)}  ${k}`);
}

const args = process.argv.slice(2);
let top = 20;
const files: string[] = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--top') top = Number(args[++i]);
  else files.push(args[i]!);
}
if (files.length === 0 || !(top > 0)) {
  console.error('usage: npx tsx bench/profile-summary.ts [--top N] FILE.cpuprofile…');
  process.exit(2);
}
for (const f of files) summarise(f, top);
