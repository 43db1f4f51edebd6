/**
 * The Kubernetes manifests (deploy/k8s) and the Dockerfile, checked without a cluster or a container engine:
 * every YAML document parses and is well-formed, selectors and references resolve, containers are limited
 * and run as non-root, the `sluice` arguments are accepted by the real CLI, the configuration they load is
 * valid, the NATS StatefulSet agrees with its server configuration, and the image name, entrypoint and
 * build stages agree with package.json and the repository.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { buildProgram } from '../../src/cli/main.js';
import { loadConfig, type SluiceConfig } from '../../src/config/config.js';
import { envVarName, isOptionKey, OPTION_KEYS } from '../../src/config/options.js';
import { sluice } from '../harness/processes.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const K8S = join(ROOT, 'deploy/k8s');
const NAMESPACE = 'sluice';
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** The image the Dockerfile builds (`docker build -t sluice:<version> .`) and every Sluice container runs. */
const IMAGE = `sluice:${VERSION}`;
/** The image's entrypoint: `node` and the CLI launcher. */
const ENTRYPOINT = ['node', '/opt/sluice/bin/sluice.js'];
/** CLI commands a manifest may use although they may not exist yet: only where the manifest says so. */
const PLANNED_COMMANDS = ['run-application'];
const PLANNED_ANNOTATION = 'sluice/requires-command';

// ---------------------------------------------------------------------------------------------------------
// The shapes read here (only the fields the checks use)

interface Metadata {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Probe {
  exec?: { command?: string[] };
  httpGet?: { path?: string; port?: string | number };
  tcpSocket?: { port?: string | number };
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath?: string };
    configMapKeyRef?: { name?: string; key?: string };
    secretKeyRef?: { name?: string; key?: string };
  };
}
interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  capabilities?: { drop?: string[] };
}
interface Container {
  name?: string;
  image?: string;
  command?: string[];
  args?: unknown[];
  env?: EnvVar[];
  envFrom?: Array<{ configMapRef?: { name?: string }; secretRef?: { name?: string } }>;
  ports?: Array<{ name?: string; containerPort?: number }>;
  resources?: {
    requests?: { cpu?: string | number; memory?: string };
    limits?: { cpu?: string | number; memory?: string };
  };
  securityContext?: SecurityContext;
  volumeMounts?: Array<{ name: string; mountPath: string; subPath?: string; readOnly?: boolean }>;
  startupProbe?: Probe;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command?: string[] } } };
}
interface Volume {
  name: string;
  configMap?: { name?: string; items?: Array<{ key: string; path: string }> };
  emptyDir?: unknown;
  secret?: unknown;
  persistentVolumeClaim?: unknown;
}
interface PodSpec {
  containers?: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  securityContext?: SecurityContext & { fsGroup?: number };
  enableServiceLinks?: boolean;
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
  restartPolicy?: string;
}
interface Resource {
  apiVersion?: string;
  kind?: string;
  metadata?: Metadata;
  data?: Record<string, string>;
  spec?: {
    replicas?: number;
    selector?: { matchLabels?: Record<string, string> } | Record<string, string>;
    serviceName?: string;
    podManagementPolicy?: string;
    strategy?: {
      type?: string;
      rollingUpdate?: { maxSurge?: number | string; maxUnavailable?: number | string };
    };
    template?: { metadata?: Metadata; spec?: PodSpec };
    volumeClaimTemplates?: Array<{ metadata?: Metadata }>;
    clusterIP?: string;
    publishNotReadyAddresses?: boolean;
    ports?: Array<{ name?: string; port?: number; targetPort?: string | number }>;
    maxUnavailable?: number | string;
    backoffLimit?: number;
    // HorizontalPodAutoscaler
    scaleTargetRef?: { apiVersion?: string; kind?: string; name?: string };
    minReplicas?: number;
    maxReplicas?: number;
    metrics?: Array<{
      type?: string;
      resource?: { name?: string; target?: { type?: string; averageUtilization?: number } };
    }>;
    behavior?: {
      scaleDown?: { stabilizationWindowSeconds?: number };
      scaleUp?: { stabilizationWindowSeconds?: number };
    };
  };
}
interface Kustomization {
  kind: 'Kustomization';
  namespace?: string;
  resources?: string[];
  images?: Array<{ name: string; newName?: string; newTag?: string }>;
}
interface Doc {
  file: string;
  resource: Resource;
}

// ---------------------------------------------------------------------------------------------------------
// Loading

function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return yamlFiles(path);
      return /\.ya?ml$/.test(name) ? [path] : [];
    });
}

const parseProblems: string[] = [];
const docs: Doc[] = [];
const kustomizations = new Map<string, Kustomization>();
for (const file of yamlFiles(K8S)) {
  const rel = relative(ROOT, file);
  for (const [index, document] of parseAllDocuments(readFileSync(file, 'utf8')).entries()) {
    for (const error of document.errors) parseProblems.push(`${rel} #${index + 1}: ${error.message}`);
    const value: unknown = document.toJS();
    if (value === null || value === undefined) continue; // an empty document (e.g. after a trailing ---)
    if (typeof value !== 'object' || Array.isArray(value)) {
      parseProblems.push(`${rel} #${index + 1}: not a map`);
      continue;
    }
    if ((value as { kind?: unknown }).kind === 'Kustomization')
      kustomizations.set(file, value as Kustomization);
    else docs.push({ file: rel, resource: value as Resource });
  }
}

const ofKind = (kind: string) => docs.filter((d) => d.resource.kind === kind);
const nameOf = (d: Doc) => `${d.resource.kind}/${d.resource.metadata?.name} (${d.file})`;
const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'Job'];
const workloads = docs.filter((d) => WORKLOAD_KINDS.includes(d.resource.kind ?? ''));
const configMaps = new Map(ofKind('ConfigMap').map((d) => [d.resource.metadata?.name ?? '', d.resource]));
const services = ofKind('Service');

function podSpec(d: Doc): PodSpec {
  const spec = d.resource.spec?.template?.spec;
  if (!spec) throw new Error(`${nameOf(d)} has no spec.template.spec`);
  return spec;
}
function containersOf(d: Doc): Container[] {
  const spec = podSpec(d);
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
}
function templateLabels(d: Doc): Record<string, string> {
  return d.resource.spec?.template?.metadata?.labels ?? {};
}
function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}
function isSluice(c: Container): boolean {
  return (c.image ?? '').split(':')[0] === 'sluice';
}
/** Kubernetes quantities of memory in bytes (Ki, Mi, Gi, or plain). */
function bytes(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G)?$/.exec(quantity);
  if (!m) throw new Error(`not a memory quantity: ${quantity}`);
  const unit =
    { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}
/** The value of an env var as the pod would see it (literal, or a ConfigMap key). */
function envValue(env: EnvVar): string | undefined {
  if (env.value !== undefined) return env.value;
  const ref = env.valueFrom?.configMapKeyRef;
  if (ref) return configMaps.get(ref.name ?? '')?.data?.[ref.key ?? ''];
  return undefined;
}
/** `$(VAR)` in args, expanded from the container's env the way the kubelet does. */
function expand(arg: string, env: EnvVar[]): string {
  return arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => {
    const found = env.find((e) => e.name === name);
    return found ? (envValue(found) ?? whole) : whole;
  });
}

// ---------------------------------------------------------------------------------------------------------
// The CLI, with every command's action replaced by a recorder

interface Invocation {
  /** `['taskmanager']`, `['cluster', 'start']`, ... */
  path: string[];
  options: Record<string, unknown>;
  args: unknown[];
}

async function parseCli(argv: string[]): Promise<Invocation> {
  const program = buildProgram();
  let invocation: Invocation | undefined;
  const hook = (command: Command, path: string[]) => {
    command.configureOutput({ writeOut: () => {}, writeErr: () => {} });
    for (const sub of command.commands) {
      const subPath = [...path, sub.name()];
      if (sub.commands.length > 0) {
        hook(sub, subPath);
        continue;
      }
      sub.configureOutput({ writeOut: () => {}, writeErr: () => {} });
      sub.action((...received: unknown[]) => {
        const options = received.at(-2) as Record<string, unknown>;
        invocation = { path: subPath, options, args: received.slice(0, -2) };
      });
    }
  };
  hook(program, []);
  await program.parseAsync(argv, { from: 'user' });
  if (!invocation) throw new Error(`'sluice ${argv.join(' ')}' runs no command`);
  return invocation;
}

const cliCommands = buildProgram().commands.map((c) => c.name());

/** Every place a manifest runs the sluice CLI: container args, and exec probes that call the launcher. */
interface CliUse {
  where: string;
  workload: Doc;
  container: Container;
  argv: string[];
}

function cliUses(): CliUse[] {
  const uses: CliUse[] = [];
  for (const workload of workloads) {
    for (const container of containersOf(workload)) {
      if (!isSluice(container)) continue;
      const env = container.env ?? [];
      const where = `${nameOf(workload)} container ${container.name}`;
      uses.push({
        where,
        workload,
        container,
        argv: (container.args ?? []).map((a) => expand(String(a), env)),
      });
      for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
        const command = container[kind]?.exec?.command;
        if (command && command[1] === ENTRYPOINT[1]) {
          uses.push({ where: `${where} ${kind}`, workload, container, argv: command.slice(2) });
        }
      }
    }
  }
  return uses;
}

// ---------------------------------------------------------------------------------------------------------
// Configuration as a container would load it

const tempDirs: string[] = [];
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-k8s-test-'));
  tempDirs.push(dir);
  return dir;
}

/** The ConfigMap key a path inside the container comes from (a mounted ConfigMap volume), if any. */
function configMapFile(
  workload: Doc,
  container: Container,
  path: string,
): { configMap: string; key: string } {
  const volumes = podSpec(workload).volumes ?? [];
  for (const mount of container.volumeMounts ?? []) {
    const volume = volumes.find((v) => v.name === mount.name);
    if (!volume?.configMap?.name) continue;
    if (mount.subPath !== undefined && mount.mountPath === path) {
      return { configMap: volume.configMap.name, key: mount.subPath };
    }
    if (mount.subPath === undefined && dirname(path) === mount.mountPath) {
      const file = path.slice(mount.mountPath.length + 1);
      const item = volume.configMap.items?.find((i) => i.path === file);
      return { configMap: volume.configMap.name, key: item ? item.key : file };
    }
  }
  throw new Error(`${path} is not a file of a ConfigMap mounted in ${nameOf(workload)}`);
}

/** YAML keys flattened the way the config loader does (nested maps joined with dots). */
function flatKeys(node: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(node).flatMap(([name, value]) => {
    const key = prefix === '' ? name : `${prefix}.${name}`;
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? flatKeys(value as Record<string, unknown>, key)
      : [key];
  });
}

interface Loaded {
  use: CliUse;
  invocation: Invocation;
  config: SluiceConfig;
  configFile?: { configMap: string; key: string };
}

async function loadFor(use: CliUse): Promise<Loaded> {
  const invocation = await parseCli(use.argv);
  const o = invocation.options;
  const env: Record<string, string> = {};
  for (const e of use.container.env ?? []) {
    const value = envValue(e);
    if (e.name.startsWith('SLUICE_') && value !== undefined) env[e.name] = value;
  }
  let file: string | undefined;
  let configFile: Loaded['configFile'];
  if (typeof o.config === 'string') {
    configFile = configMapFile(use.workload, use.container, o.config);
    const text = configMaps.get(configFile.configMap)?.data?.[configFile.key];
    if (text === undefined) throw new Error(`ConfigMap ${configFile.configMap} has no key ${configFile.key}`);
    file = join(tempDir(), 'config.yaml');
    writeFileSync(file, text);
  }
  // The same sources the command itself passes to loadConfig (src/cli/global-options.ts and the commands).
  const config = loadConfig({
    ...(file === undefined ? {} : { file }),
    env,
    dynamic: (o.define as string[] | undefined) ?? [],
    overrides: {
      'nats.servers': o.nats as string | undefined,
      'cluster.id': o.clusterId as string | undefined,
      'taskmanager.numberOfTaskSlots': o.slots as string | undefined,
      'parallelism.default': o.parallelism as string | undefined,
    },
  });
  return { use, invocation, config, ...(configFile === undefined ? {} : { configFile }) };
}

// ---------------------------------------------------------------------------------------------------------

describe('deploy/k8s: every YAML document', () => {
  it('parses (multi-document aware), and the tree has the expected resources', () => {
    expect(parseProblems).toEqual([]);
    const kinds = docs.map((d) => `${d.resource.kind}/${d.resource.metadata?.name}`).sort();
    expect(kinds).toEqual(
      expect.arrayContaining([
        'Namespace/sluice',
        'ConfigMap/nats-config',
        'Service/nats',
        'Service/nats-headless',
        'StatefulSet/nats',
        'PodDisruptionBudget/nats',
        'ConfigMap/sluice-config',
        'Deployment/sluice-jobmanager',
        'Deployment/sluice-taskmanager',
        'HorizontalPodAutoscaler/sluice-taskmanager',
        'PodDisruptionBudget/sluice-jobmanager',
        'Service/sluice-jobmanager',
        'ConfigMap/sluice-application',
        'Job/sluice-application',
      ]),
    );
  });

  it('has apiVersion, kind and metadata.name, and lives in the sluice namespace', () => {
    expect(docs.length).toBeGreaterThan(0);
    for (const d of docs) {
      const { apiVersion, kind, metadata } = d.resource;
      expect(typeof apiVersion, `${d.file}: apiVersion`).toBe('string');
      expect(typeof kind, `${d.file}: kind`).toBe('string');
      expect(typeof metadata?.name, `${d.file}: metadata.name`).toBe('string');
      if (kind !== 'Namespace') expect(metadata?.namespace, `${nameOf(d)}: namespace`).toBe(NAMESPACE);
    }
    const expected: Record<string, string> = {
      Namespace: 'v1',
      ConfigMap: 'v1',
      Service: 'v1',
      Deployment: 'apps/v1',
      StatefulSet: 'apps/v1',
      Job: 'batch/v1',
      PodDisruptionBudget: 'policy/v1',
      HorizontalPodAutoscaler: 'autoscaling/v2',
    };
    for (const d of docs) {
      expect(expected[d.resource.kind ?? ''], `${nameOf(d)}: a kind these manifests know`).toBeDefined();
      expect(d.resource.apiVersion, nameOf(d)).toBe(expected[d.resource.kind ?? '']);
    }
  });

  it('is listed by its directory’s kustomization, which lists only files and directories that exist', () => {
    for (const [file, k] of kustomizations) {
      expect(k.namespace, `${relative(ROOT, file)}: namespace`).toBe(NAMESPACE);
      for (const entry of k.resources ?? []) {
        const path = join(dirname(file), entry);
        expect(() => statSync(path), `${relative(ROOT, file)} lists ${entry}`).not.toThrow();
        if (statSync(path).isDirectory()) {
          expect(kustomizations.has(join(path, 'kustomization.yaml')), `${entry} has a kustomization`).toBe(
            true,
          );
        }
      }
    }
    // Every YAML file is reachable from the kustomization of its own directory.
    for (const file of yamlFiles(K8S)) {
      if (file.endsWith('kustomization.yaml')) continue;
      const k = kustomizations.get(join(dirname(file), 'kustomization.yaml'));
      expect(k?.resources ?? [], `${relative(ROOT, file)} is in its directory's kustomization`).toContain(
        relative(dirname(file), file),
      );
    }
    // The top level applies NATS and the session cluster; application mode is applied on its own.
    expect(kustomizations.get(join(K8S, 'kustomization.yaml'))?.resources).toEqual(
      expect.arrayContaining(['nats', 'session']),
    );
  });
});

describe('deploy/k8s: workloads', () => {
  it('are the StatefulSet nats, the two Deployments and the application Job', () => {
    expect(workloads.map(nameOf).sort()).toEqual([
      'Deployment/sluice-jobmanager (deploy/k8s/session/jobmanager.yaml)',
      'Deployment/sluice-taskmanager (deploy/k8s/session/taskmanager.yaml)',
      'Job/sluice-application (deploy/k8s/application/job.yaml)',
      'StatefulSet/nats (deploy/k8s/nats/statefulset.yaml)',
    ]);
  });

  it('select the labels of their own pod template', () => {
    for (const d of workloads) {
      const labels = templateLabels(d);
      expect(Object.keys(labels).length, `${nameOf(d)}: template labels`).toBeGreaterThan(0);
      const selector = d.resource.spec?.selector as { matchLabels?: Record<string, string> } | undefined;
      if (d.resource.kind === 'Job') {
        // A Job's selector is generated by Kubernetes unless manualSelector is set; none is written here.
        expect(selector, `${nameOf(d)}: no hand-written selector`).toBeUndefined();
        continue;
      }
      const matchLabels = selector?.matchLabels ?? {};
      expect(Object.keys(matchLabels).length, `${nameOf(d)}: selector.matchLabels`).toBeGreaterThan(0);
      expect(matches(matchLabels, labels), `${nameOf(d)}: selector matches the template labels`).toBe(true);
    }
  });

  it('have no two workloads whose pods one selector would mix', () => {
    for (const a of workloads) {
      const selector = (a.resource.spec?.selector as { matchLabels?: Record<string, string> } | undefined)
        ?.matchLabels;
      if (!selector) continue;
      for (const b of workloads) {
        if (a !== b)
          expect(matches(selector, templateLabels(b)), `${nameOf(a)} selects ${nameOf(b)}`).toBe(false);
      }
    }
  });

  it('run containers with an image, requests and limits, as a non-root user without privilege escalation', () => {
    for (const d of workloads) {
      const pod = podSpec(d);
      for (const c of containersOf(d)) {
        const what = `${nameOf(d)} container ${c.name}`;
        expect(c.name, what).toBeTruthy();
        expect(c.image, `${what}: image`).toMatch(/^[a-z0-9./-]+:[A-Za-z0-9._-]+$/);
        for (const kind of ['requests', 'limits'] as const) {
          expect(c.resources?.[kind]?.cpu, `${what}: resources.${kind}.cpu`).toBeDefined();
          expect(c.resources?.[kind]?.memory, `${what}: resources.${kind}.memory`).toBeDefined();
        }
        expect(bytes(c.resources?.requests?.memory ?? '')).toBeLessThanOrEqual(
          bytes(c.resources?.limits?.memory ?? ''),
        );
        const runAsNonRoot = c.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot;
        const runAsUser = c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
        expect(runAsNonRoot, `${what}: runAsNonRoot`).toBe(true);
        expect(runAsUser, `${what}: runAsUser`).toBeGreaterThan(0);
        expect(c.securityContext?.allowPrivilegeEscalation, `${what}: allowPrivilegeEscalation`).toBe(false);
        expect(c.securityContext?.capabilities?.drop, `${what}: capabilities.drop`).toEqual(['ALL']);
      }
    }
  });

  it('mount only volumes they declare, from ConfigMaps (and keys) that exist', () => {
    for (const d of workloads) {
      const pod = podSpec(d);
      const declared = new Set([
        ...(pod.volumes ?? []).map((v) => v.name),
        ...(d.resource.spec?.volumeClaimTemplates ?? []).map((t) => t.metadata?.name ?? ''),
      ]);
      for (const v of pod.volumes ?? []) {
        if (!v.configMap) continue;
        const cm = configMaps.get(v.configMap.name ?? '');
        expect(cm, `${nameOf(d)}: volume ${v.name} uses ConfigMap ${v.configMap.name}`).toBeDefined();
        for (const item of v.configMap.items ?? []) expect(cm?.data?.[item.key], item.key).toBeDefined();
      }
      for (const c of containersOf(d)) {
        for (const m of c.volumeMounts ?? []) {
          expect(declared.has(m.name), `${nameOf(d)} ${c.name}: volume ${m.name} is declared`).toBe(true);
          const volume = (pod.volumes ?? []).find((v) => v.name === m.name);
          if (volume?.configMap && m.subPath !== undefined) {
            expect(
              configMaps.get(volume.configMap.name ?? '')?.data?.[m.subPath],
              `${nameOf(d)} ${c.name}: subPath ${m.subPath} of ConfigMap ${volume.configMap.name}`,
            ).toBeDefined();
          }
        }
        for (const from of c.envFrom ?? []) {
          if (from.configMapRef) expect(configMaps.has(from.configMapRef.name ?? '')).toBe(true);
        }
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.configMapKeyRef;
          if (ref) {
            expect(
              configMaps.get(ref.name ?? '')?.data?.[ref.key ?? ''],
              `${nameOf(d)} ${c.name}: env ${e.name} from ConfigMap ${ref.name} key ${ref.key}`,
            ).toBeDefined();
          }
          expect(e.value !== undefined || e.valueFrom !== undefined, `env ${e.name} has a value`).toBe(true);
        }
      }
    }
  });

  it('probe ports that their containers declare', () => {
    for (const d of workloads) {
      for (const c of containersOf(d)) {
        const ports = new Set<string | number>(
          (c.ports ?? []).flatMap((p) => [p.name ?? '', p.containerPort ?? 0]),
        );
        for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
          const probe = c[kind];
          const port = probe?.httpGet?.port ?? probe?.tcpSocket?.port;
          if (port !== undefined)
            expect(ports.has(port), `${nameOf(d)} ${c.name} ${kind} port ${port}`).toBe(true);
        }
      }
    }
  });
});

describe('deploy/k8s: Services and the PodDisruptionBudget', () => {
  it('every Service selects the pods of some workload, and its named target ports exist there', () => {
    expect(services.length).toBeGreaterThan(0);
    for (const s of services) {
      const selector = (s.resource.spec?.selector ?? {}) as Record<string, string>;
      expect(Object.keys(selector).length, `${nameOf(s)}: selector`).toBeGreaterThan(0);
      const selected = workloads.filter((w) => matches(selector, templateLabels(w)));
      expect(selected.map(nameOf), `${nameOf(s)} selects a workload`).not.toEqual([]);
      for (const port of s.resource.spec?.ports ?? []) {
        expect(port.name, `${nameOf(s)}: ports are named`).toBeTruthy();
        const target = port.targetPort ?? port.port;
        for (const w of selected) {
          const declared = containersOf(w).flatMap((c) => c.ports ?? []);
          const found = declared.some((p) => p.name === target || p.containerPort === target);
          expect(found, `${nameOf(s)} port ${port.name} → ${target} in ${nameOf(w)}`).toBe(true);
        }
      }
    }
  });

  it('the StatefulSet names a headless Service that publishes not-ready pods (for the routes)', () => {
    const sts = ofKind('StatefulSet')[0]!;
    const headless = services.find((s) => s.resource.metadata?.name === sts.resource.spec?.serviceName);
    expect(headless, 'serviceName is a Service').toBeDefined();
    expect(headless?.resource.spec?.clusterIP).toBe('None');
    expect(headless?.resource.spec?.publishNotReadyAddresses).toBe(true);
    expect(sts.resource.spec?.podManagementPolicy).toBe('Parallel');
  });

  it('the NATS PodDisruptionBudget allows one server down and selects the NATS pods', () => {
    const pdbs = ofKind('PodDisruptionBudget').filter((d) => d.resource.metadata?.name === 'nats');
    expect(pdbs).toHaveLength(1);
    const pdb = pdbs[0]!;
    expect(pdb.resource.spec?.maxUnavailable).toBe(1);
    const selector =
      (pdb.resource.spec?.selector as { matchLabels?: Record<string, string> } | undefined)?.matchLabels ??
      {};
    const selected = workloads.filter((w) => matches(selector, templateLabels(w)));
    expect(selected.map((w) => w.resource.metadata?.name)).toEqual(['nats']);
  });
});

describe('deploy/k8s: NATS', () => {
  const sts = ofKind('StatefulSet').find((d) => d.resource.metadata?.name === 'nats')!;
  const nats = containersOf(sts).find((c) => c.name === 'nats')!;
  const confVolume = podSpec(sts).volumes?.find((v) => v.configMap)?.configMap?.name ?? '';
  const conf = configMaps.get(confVolume)?.data?.['nats.conf'] ?? '';
  const confPath = nats.command?.[nats.command.indexOf('--config') + 1] ?? '';
  const mountOf = (name: string) => nats.volumeMounts?.find((m) => m.name === name)?.mountPath;
  const setting = (name: string) => new RegExp(`^\\s*${name}:\\s*(\\S+)`, 'm').exec(conf)?.[1];

  it('runs nats-server 2.10 or later with the configuration from its ConfigMap', () => {
    const tag = /^nats:(\d+)\.(\d+)/.exec(nats.image ?? '');
    expect(tag, `image ${nats.image} has a version tag`).not.toBeNull();
    const [major, minor] = [Number(tag?.[1]), Number(tag?.[2])];
    expect(major > 2 || (major === 2 && minor >= 10), `${nats.image} is 2.10 or later`).toBe(true);
    expect(conf).not.toBe('');
    expect(dirname(confPath)).toBe(mountOf('config'));
    expect(confPath.slice(dirname(confPath).length + 1)).toBe('nats.conf');
  });

  it('names each server after its pod and routes to every pod through the headless Service', () => {
    expect(setting('server_name')).toBe('$POD_NAME');
    expect(nats.env?.find((e) => e.name === 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe(
      'metadata.name',
    );
    const replicas = sts.resource.spec?.replicas ?? 0;
    expect(replicas).toBe(3);
    const clusterBlock = /cluster\s*\{([\s\S]*?)\n\}/.exec(conf)?.[1] ?? '';
    const clusterPort = /^\s*port:\s*(\d+)/m.exec(clusterBlock)?.[1];
    const routes = [...clusterBlock.matchAll(/nats:\/\/([a-z0-9.-]+):(\d+)/g)].map((m) => `${m[1]}:${m[2]}`);
    const expected = Array.from(
      { length: replicas },
      (_, i) => `${sts.resource.metadata?.name}-${i}.${sts.resource.spec?.serviceName}:${clusterPort}`,
    );
    expect(routes).toEqual(expected);
    expect(/^\s*no_advertise:\s*true/m.test(clusterBlock)).toBe(true);
    // Ports of the configuration = the container's ports.
    const ports = Object.fromEntries((nats.ports ?? []).map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({
      client: Number(setting('port')),
      cluster: Number(clusterPort),
      monitor: Number(setting('http_port')),
    });
  });

  it('keeps JetStream on the pod’s volume claim, fsyncs every write, and stops in lame duck mode', () => {
    const js = /jetstream\s*\{([\s\S]*?)\n\s*\}/.exec(conf)?.[1] ?? '';
    const storeDir = /^\s*store_dir:\s*(\S+)/m.exec(js)?.[1];
    const claim = sts.resource.spec?.volumeClaimTemplates?.[0]?.metadata?.name ?? '';
    expect(storeDir).toBe(mountOf(claim));
    expect(/^\s*sync_interval:\s*always\s*$/m.test(js), 'jetstream { sync_interval: always }').toBe(true);
    // The comment that says why, and which servers know the option.
    expect(conf).toMatch(/2\.10 or later/);
    const pidFile = setting('pid_file') ?? '';
    expect(dirname(pidFile)).toBe(mountOf('pid'));
    expect(nats.lifecycle?.preStop?.exec?.command).toEqual(['nats-server', `-sl=ldm=${pidFile}`]);
    expect(podSpec(sts).terminationGracePeriodSeconds).toBeGreaterThan(10 + 30);
  });
});

describe('deploy/k8s: Sluice containers', () => {
  const uses = cliUses();

  it(`run the image ${IMAGE} with its entrypoint (args only)`, () => {
    const sluiceContainers = workloads.flatMap((w) =>
      containersOf(w)
        .filter(isSluice)
        .map((c) => ({ w, c })),
    );
    expect(sluiceContainers.length).toBe(3);
    for (const { w, c } of sluiceContainers) {
      expect(c.image, `${nameOf(w)}`).toBe(IMAGE);
      expect(c.command, `${nameOf(w)}: the image's ENTRYPOINT is used, not replaced`).toBeUndefined();
    }
    for (const [file, k] of kustomizations) {
      for (const image of k.images ?? []) {
        if (image.name === 'sluice')
          expect(`${image.newName}:${image.newTag}`, relative(ROOT, file)).toBe(IMAGE);
      }
    }
  });

  it('run pods without Service links and with time for a graceful stop', () => {
    for (const w of workloads.filter((d) => containersOf(d).some(isSluice))) {
      const pod = podSpec(w);
      expect(pod.enableServiceLinks, `${nameOf(w)}: enableServiceLinks`).toBe(false);
      expect(pod.automountServiceAccountToken, `${nameOf(w)}: automountServiceAccountToken`).toBe(false);
      expect(pod.terminationGracePeriodSeconds ?? 30, nameOf(w)).toBeGreaterThanOrEqual(30);
    }
    // Why the links are off: a Service named sluice-<x> would get variables SLUICE_<X>_... in every pod.
    const configVars = new Set(OPTION_KEYS.map(envVarName));
    for (const s of services) {
      const base = (s.resource.metadata?.name ?? '').toUpperCase().replace(/-/g, '_');
      const linkVars = [`${base}_SERVICE_HOST`, `${base}_SERVICE_PORT`, `${base}_PORT`];
      for (const p of s.resource.spec?.ports ?? []) {
        linkVars.push(`${base}_SERVICE_PORT_${(p.name ?? '').toUpperCase().replace(/-/g, '_')}`);
        linkVars.push(`${base}_PORT_${p.port}_TCP`, `${base}_PORT_${p.port}_TCP_PORT`);
      }
      for (const v of linkVars) expect(configVars.has(v), `${v} would be read as configuration`).toBe(false);
    }
  });

  it('use only commands the CLI has (a planned one only where the manifest says it needs it)', async () => {
    expect(uses.length).toBeGreaterThanOrEqual(4);
    for (const use of uses) {
      const command = use.argv[0] ?? '';
      const annotations = use.workload.resource.metadata?.annotations ?? {};
      if (PLANNED_COMMANDS.includes(command)) {
        expect(use.workload.resource.kind, `${use.where}: ${command} only in the application Job`).toBe(
          'Job',
        );
        expect(annotations[PLANNED_ANNOTATION], `${use.where}: marked as needing ${command}`).toBe(command);
        if (!cliCommands.includes(command)) continue; // not built yet: nothing more to check
      } else {
        expect(cliCommands, `${use.where}: '${command}' is a sluice command`).toContain(command);
      }
      const invocation = await parseCli(use.argv);
      expect(invocation.path[0]).toBe(command);
    }
    // The session cluster runs a JobManager and TaskManagers; the Job runs an application.
    const byWorkload = (name: string) =>
      uses.find((u) => u.workload.resource.metadata?.name === name)?.argv[0];
    expect(byWorkload('sluice-jobmanager')).toBe('jobmanager');
    expect(byWorkload('sluice-taskmanager')).toBe('taskmanager');
    expect(byWorkload('sluice-application')).toBe('run-application');
  });

  it('set only known configuration keys, in config.yaml, -D and SLUICE_* variables', async () => {
    for (const use of uses) {
      if (!cliCommands.includes(use.argv[0] ?? '')) continue;
      const { options } = await parseCli(use.argv);
      for (const definition of (options.define as string[] | undefined) ?? []) {
        const key = definition.slice(0, definition.indexOf('='));
        expect(definition, `${use.where}: -D key=value`).toContain('=');
        expect(isOptionKey(key), `${use.where}: -D ${key} is a configuration key`).toBe(true);
      }
      for (const e of use.container.env ?? []) {
        if (e.name.startsWith('SLUICE_')) {
          const known = e.name === 'SLUICE_CONFIG_FILE' || OPTION_KEYS.some((k) => envVarName(k) === e.name);
          expect(known, `${use.where}: ${e.name} is the variable of a configuration key`).toBe(true);
        }
      }
    }
    const sluiceConfigs = [...configMaps.entries()].flatMap(([name, cm]) =>
      Object.entries(cm.data ?? {})
        .filter(([key]) => key === 'config.yaml')
        .map(([, text]) => ({ name, text })),
    );
    expect(sluiceConfigs.map((c) => c.name).sort()).toEqual(['sluice-application', 'sluice-config']);
    for (const { name, text } of sluiceConfigs) {
      const document = parseAllDocuments(text);
      expect(document).toHaveLength(1);
      const keys = flatKeys(document[0]!.toJS() as Record<string, unknown>);
      expect(keys.length).toBeGreaterThan(0);
      for (const key of keys) expect(isOptionKey(key), `${name} config.yaml: ${key}`).toBe(true);
    }
  });

  it('load a valid configuration (config.yaml through loadConfig, with -D, flags and env)', async () => {
    const loaded: Loaded[] = [];
    for (const use of uses) {
      if (!cliCommands.includes(use.argv[0] ?? '')) continue;
      loaded.push(await loadFor(use));
    }
    expect(loaded.length).toBeGreaterThanOrEqual(3);
    for (const { use, config, configFile } of loaded) {
      expect(configFile, `${use.where}: --config names a mounted ConfigMap file`).toBeDefined();
      // Every NATS server is a Service of this namespace, on one of its ports.
      for (const server of config.nats.servers) {
        const url = new URL(server);
        const [service, namespace, svc] = url.hostname.split('.');
        expect([namespace, svc], `${use.where}: ${server} is <service>.${NAMESPACE}.svc`).toEqual([
          NAMESPACE,
          'svc',
        ]);
        const found = services.find((s) => s.resource.metadata?.name === service);
        expect(found, `${use.where}: Service ${service}`).toBeDefined();
        expect(found?.resource.spec?.ports?.map((p) => p.port)).toContain(Number(url.port));
        expect(found?.resource.spec?.clusterIP, 'a Service with a virtual IP, not the headless one').not.toBe(
          'None',
        );
      }
      // The heap limit given to Node stays under the container's memory limit.
      const nodeOptions = envValue(use.container.env?.find((e) => e.name === 'NODE_OPTIONS') ?? { name: '' });
      const heapMiB = Number(/--max-old-space-size=(\d+)/.exec(nodeOptions ?? '')?.[1] ?? 0);
      if (heapMiB > 0) {
        expect(heapMiB * 2 ** 20).toBeLessThan(bytes(use.container.resources?.limits?.memory ?? '0'));
      }
    }

    const of = (name: string) => loaded.filter((l) => l.use.workload.resource.metadata?.name === name);
    const [jm] = of('sluice-jobmanager').filter((l) => l.invocation.path[0] === 'jobmanager');
    const [tm] = of('sluice-taskmanager');
    expect(jm && tm).toBeTruthy();
    // One cluster: the JobManager, the TaskManagers and the JobManager's readiness probe (a client) agree.
    const session = loaded.filter((l) => l.use.workload.resource.kind === 'Deployment');
    expect(new Set(session.map((l) => l.config.clusterId)).size).toBe(1);
    expect(new Set(session.map((l) => l.config.nats.servers.join(','))).size).toBe(1);
    // The REST Service reaches the JobManager's REST port on the pod's address.
    const restPort = jm!.use.container.ports?.find((p) => p.name === 'rest')?.containerPort;
    expect(restPort).toBe(jm!.config.rest.port);
    expect(jm!.config.rest.bindAddress).toBe('0.0.0.0');
    // The TaskManagers offer enough slots for a job at the default parallelism (at the HPA's minimum).
    const hpa = ofKind('HorizontalPodAutoscaler').find(
      (d) => d.resource.spec?.scaleTargetRef?.name === tm!.use.workload.resource.metadata?.name,
    );
    const tmReplicas = hpa?.resource.spec?.minReplicas ?? tm!.use.workload.resource.spec?.replicas ?? 1;
    expect(tm!.config.taskmanager.numberOfTaskSlots * tmReplicas).toBeGreaterThanOrEqual(
      tm!.config.parallelismDefault,
    );
    // Heartbeats: more than a missed beat or two before a TaskManager counts as lost.
    expect(tm!.config.heartbeat.timeoutMs).toBeGreaterThanOrEqual(5 * tm!.config.heartbeat.intervalMs);
    // The application keeps its cluster state on a writable volume (the root file system is read-only).
    const app = of('sluice-application')[0];
    if (app) {
      const mounts = app.use.container.volumeMounts ?? [];
      const writable = mounts.filter(
        (m) => podSpec(app.use.workload).volumes?.find((v) => v.name === m.name)?.emptyDir,
      );
      expect(
        writable.some((m) => app.config.runDir.startsWith(`${m.mountPath}/`)),
        `cluster.run-dir ${app.config.runDir} is on an emptyDir`,
      ).toBe(true);
    }
  });

  it('runs two JobManagers with high availability on NATS (a leader and a standby), rolled one at a time', async () => {
    const jm = workloads.find((w) => w.resource.metadata?.name === 'sluice-jobmanager')!;
    expect(jm.resource.spec?.replicas).toBe(2);
    expect(jm.resource.spec?.strategy?.type).toBe('RollingUpdate');
    expect(jm.resource.spec?.strategy?.rollingUpdate?.maxUnavailable).toBe(0);
    const use = cliUses().find((u) => u.workload === jm && u.argv[0] === 'jobmanager')!;
    const { config } = await loadFor(use);
    expect(config.highAvailability.type).toBe('nats');
    // The HA buckets are replicated on every NATS server of the StatefulSet.
    const nats = ofKind('StatefulSet').find((d) => d.resource.metadata?.name === 'nats')!;
    expect(config.highAvailability.replicas).toBe(nats.resource.spec?.replicas);
    // Heartbeats and the lease: a failover takes about a lease; the lease is shorter than heartbeat.timeout,
    // so the TaskManagers are still registered when the standby takes over.
    expect(config.highAvailability.leaseMs).toBeLessThan(config.heartbeat.timeoutMs);
    // One JobManager may be evicted at a time.
    const pdb = ofKind('PodDisruptionBudget').find((d) => d.resource.metadata?.name === 'sluice-jobmanager')!;
    expect(pdb.resource.spec?.maxUnavailable).toBe(1);
    const selector =
      (pdb.resource.spec?.selector as { matchLabels?: Record<string, string> } | undefined)?.matchLabels ??
      {};
    expect(
      workloads.filter((w) => matches(selector, templateLabels(w))).map((w) => w.resource.metadata?.name),
    ).toEqual(['sluice-jobmanager']);
    // Nothing says there is one JobManager without leader election any more.
    for (const file of ['deploy/k8s/README.md', 'docs/deployment.md', jm.file]) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      expect(text, file).not.toMatch(
        /without leader election|until HA exists|Exactly one until|no recovery yet/i,
      );
    }
  });

  it('runs the TaskManagers in reactive mode, scaled on CPU by a HorizontalPodAutoscaler that owns the replicas', async () => {
    const tm = workloads.find((w) => w.resource.metadata?.name === 'sluice-taskmanager')!;
    const hpas = ofKind('HorizontalPodAutoscaler');
    expect(hpas).toHaveLength(1);
    const hpa = hpas[0]!.resource.spec!;
    expect(hpa.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: 'sluice-taskmanager',
    });
    expect(hpa.minReplicas).toBeGreaterThanOrEqual(1);
    expect(hpa.maxReplicas).toBeGreaterThan(hpa.minReplicas!);
    const cpu = hpa.metrics?.find((m) => m.type === 'Resource' && m.resource?.name === 'cpu');
    expect(cpu?.resource?.target?.type).toBe('Utilization');
    expect(cpu?.resource?.target?.averageUtilization).toBeGreaterThan(0);
    expect(cpu?.resource?.target?.averageUtilization).toBeLessThanOrEqual(100);
    // Every pod that leaves restarts the job: scale down slowly.
    expect(hpa.behavior?.scaleDown?.stabilizationWindowSeconds).toBeGreaterThanOrEqual(60);
    // The HPA owns the replica count; CPU utilisation needs a CPU request.
    expect(tm.resource.spec?.replicas).toBeUndefined();
    for (const c of containersOf(tm)) expect(c.resources?.requests?.cpu, nameOf(tm)).toBeDefined();
    // The JobManagers run the jobs in reactive mode; a leaving TaskManager restarts a job (restart strategy
    // not `none`) from a checkpoint.
    const jmUse = cliUses().find(
      (u) => u.workload.resource.metadata?.name === 'sluice-jobmanager' && u.argv[0] === 'jobmanager',
    )!;
    const { config } = await loadFor(jmUse);
    expect(config.scheduler.mode).toBe('reactive');
    expect(config.restartStrategy.type).not.toBe('none');
    expect(config.checkpointing.intervalMs).toBeGreaterThan(0);
  });

  it('enables the autoscaler where it fits: advice only beside reactive mode, scaling in the application', async () => {
    const loaded = await Promise.all(
      cliUses()
        .filter((u) => ['jobmanager', 'run-application'].includes(u.argv[0] ?? ''))
        .map((u) => loadFor(u)),
    );
    const session = loaded.find((l) => l.use.workload.resource.metadata?.name === 'sluice-jobmanager')!;
    expect(session.config.autoscaler.enabled).toBe(true);
    // Reactive mode sizes the session's jobs: the autoscaler must not fight it.
    expect(session.config.scheduler.mode === 'reactive' && session.config.autoscaler.scalingEnabled).toBe(
      false,
    );
    const app = loaded.find((l) => l.use.workload.resource.metadata?.name === 'sluice-application')!;
    expect(app.config.autoscaler).toMatchObject({ enabled: true, scalingEnabled: true });
    expect(app.config.scheduler.mode).not.toBe('reactive');
    // A rescale restores from a checkpoint.
    expect(app.config.checkpointing.intervalMs).toBeGreaterThan(0);
    expect(app.config.autoscaler.metricsWindowMs).toBeGreaterThan(app.config.checkpointing.intervalMs);
  });

  it('writes only to mounted volumes: read-only root file system, an emptyDir for the temp dir', () => {
    for (const w of workloads) {
      for (const c of containersOf(w).filter(isSluice)) {
        expect(c.securityContext?.readOnlyRootFilesystem, nameOf(w)).toBe(true);
        const tmp = c.volumeMounts?.find((m) => m.mountPath === '/tmp');
        expect(
          podSpec(w).volumes?.find((v) => v.name === tmp?.name)?.emptyDir,
          `${nameOf(w)}: /tmp`,
        ).toBeDefined();
      }
    }
  });
});

describe('deploy/k8s: the application template', () => {
  const job = ofKind('Job')[0]!;
  const container = containersOf(job)[0]!;

  it('is a Job that runs once and is marked as needing run-application', () => {
    expect(podSpec(job).restartPolicy).toBe('Never');
    expect(job.resource.spec?.backoffLimit).toBe(0);
    expect(job.resource.metadata?.annotations?.[PLANNED_ANNOTATION]).toBe('run-application');
    // Attached: a detached client would end the pod, and the application with it.
    expect(container.args).not.toContain('-d');
    expect(container.args).not.toContain('--detached');
  });

  it('ships a job file in its ConfigMap that runs (on a local cluster) and prints its result', async () => {
    const invocation = cliCommands.includes('run-application')
      ? await parseCli(container.args as string[])
      : null;
    const jobPath = invocation ? String(invocation.args[0]) : '/opt/sluice-job/job.ts';
    const { configMap, key } = configMapFile(job, container, jobPath);
    const source = configMaps.get(configMap)?.data?.[key];
    expect(source, `${configMap}/${key}`).toBeDefined();
    const file = join(tempDir(), 'job.ts');
    writeFileSync(file, source ?? '');
    // `sluice run --local`: bundled like any job file, run on a private cluster (its own nats-server).
    const result = await sluice(['run', '--local', '-p', '2', file, '1000'], {}, 90_000);
    expect(result.code, result.stderr).toBe(0);
    // 1000 lines of two words over 8 words, each word 125 times in each position.
    const totals = result.stdout
      .split('\n')
      .filter((l) => l.includes('\t'))
      .map((l) => l.split('\t'));
    expect(totals).toHaveLength(8);
    for (const [, count] of totals) expect(count).toBe('250');
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  keyword: string;
  rest: string;
}

/** Instructions with continuation lines joined and comment lines dropped. */
function dockerInstructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current = '';
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line)) continue;
    if (current === '' && line.trim() === '') continue;
    const continued = /\\\s*$/.test(line);
    current += `${continued ? line.replace(/\\\s*$/, '') : line} `;
    if (!continued) {
      const [keyword = '', ...rest] = current.trim().split(/\s+/);
      out.push({ keyword: keyword.toUpperCase(), rest: rest.join(' ') });
      current = '';
    }
  }
  return out;
}

describe('Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const instructions = dockerInstructions(text);
  const stages: Instruction[][] = [];
  for (const i of instructions) {
    if (i.keyword === 'FROM') stages.push([i]);
    else stages.at(-1)?.push(i);
  }
  const build = stages.find((s) => / AS build$/i.test(s[0]!.rest))!;
  const final = stages.at(-1)!;
  const dockerignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));

  it('builds in a node:20-bookworm-slim stage and runs in a second one', () => {
    expect(stages).toHaveLength(2);
    expect(build).toBeDefined();
    expect(build).not.toBe(final);
    const arg = instructions.find((i) => i.keyword === 'ARG' && i.rest.startsWith('NODE_IMAGE='));
    expect(arg?.rest).toBe('NODE_IMAGE=node:20-bookworm-slim');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile variable, not a template
    expect(final[0]!.rest).toBe('${NODE_IMAGE}');
  });

  it(`is tagged and labelled ${IMAGE} (package.json's version)`, () => {
    expect(text).toContain(`docker build -t ${IMAGE} .`);
    const version = final.find((i) => i.keyword === 'ARG' && i.rest.startsWith('SLUICE_VERSION='));
    expect(version?.rest).toBe(`SLUICE_VERSION=${VERSION}`);
    const label = final.find((i) => i.keyword === 'LABEL');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile variable, not a template
    expect(label?.rest).toContain('org.opencontainers.image.version="${SLUICE_VERSION}"');
  });

  it('runs `node /opt/sluice/bin/sluice.js` as a non-root user, --help by default', () => {
    const entrypoint = final.find((i) => i.keyword === 'ENTRYPOINT');
    expect(JSON.parse(entrypoint?.rest ?? 'null')).toEqual(ENTRYPOINT);
    expect(JSON.parse(final.find((i) => i.keyword === 'CMD')?.rest ?? 'null')).toEqual(['--help']);
    expect(statSync(join(ROOT, 'bin/sluice.js')).isFile()).toBe(true);
    // The launcher runs ../dist/cli/main.js, which the final stage copies next to it.
    expect(readFileSync(join(ROOT, 'bin/sluice.js'), 'utf8')).toContain("from '../dist/cli/main.js'");
    const workdir = final.find((i) => i.keyword === 'WORKDIR')?.rest;
    expect(`${workdir}/bin/sluice.js`).toBe(ENTRYPOINT[1]);
    const user = final.filter((i) => i.keyword === 'USER').at(-1)?.rest ?? 'root';
    const uid = Number(user.split(':')[0]);
    expect(uid, `USER ${user} is numeric and not root`).toBeGreaterThan(0);
    // The manifests run the same user.
    for (const w of workloads) {
      if (containersOf(w).some(isSluice)) expect(podSpec(w).securityContext?.runAsUser).toBe(uid);
    }
  });

  it('copies files that exist in the repository and that .dockerignore lets through', () => {
    const copies = stages.flatMap((s) =>
      s.filter((i) => i.keyword === 'COPY' && !i.rest.includes('--from=')),
    );
    expect(copies.length).toBeGreaterThan(0);
    const sources = copies.flatMap((c) =>
      c.rest
        .split(/\s+/)
        .filter((t) => !t.startsWith('--'))
        .slice(0, -1),
    );
    expect(sources).toEqual(
      expect.arrayContaining(['package.json', 'package-lock.json', 'tsconfig.build.json', 'src', 'bin']),
    );
    for (const source of sources) {
      expect(() => statSync(join(ROOT, source)), `${source} exists`).not.toThrow();
      const ignored = dockerignore.some((p) => p === source || source.startsWith(`${p}/`));
      expect(ignored, `${source} is not in .dockerignore`).toBe(false);
    }
    // What the build compiles is copied: tsconfig.build.json includes only copied directories.
    const buildConfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as {
      include: string[];
    };
    for (const dir of buildConfig.include) expect(sources).toContain(dir);
  });

  it('installs, builds and prunes to production dependencies in the build stage only; no nats-server', () => {
    const runs = (stage: Instruction[]) => stage.filter((i) => i.keyword === 'RUN').map((i) => i.rest);
    const buildRuns = runs(build);
    expect(buildRuns[0]).toMatch(/^npm ci\b.*\|\| npm install\b/);
    const last = buildRuns.at(-1) ?? '';
    expect(last).toMatch(/npm run build && npm prune --omit=dev/);
    // The final stage installs nothing: its node_modules are the build stage's, pruned.
    expect(runs(final).filter((r) => /\bnpm (ci|install|i)\b/.test(r))).toEqual([]);
    const fromBuild = final
      .filter((i) => i.keyword === 'COPY')
      .map((i) => {
        expect(i.rest, 'the final stage copies from the build stage').toContain('--from=build');
        return i.rest.split(/\s+/).filter((t) => !t.startsWith('--'))[0];
      });
    expect(fromBuild.sort()).toEqual(['/src/bin', '/src/dist', '/src/node_modules', '/src/package.json']);
    expect(text).not.toMatch(/^\s*RUN\b.*nats-server/m);
  });
});
