// Leaves the machine as it was: every process, mount, network namespace, bridge, route,
// iptables chain, ipset, cgroup and sysctl of the cluster goes. Idempotent, so it runs
// before a start (to clear what a crashed run left) and after the test, also on failure.
// Everything is found by what is ours: the cluster folder, our bridge and subnets, and
// the names the Kubernetes components give their chains, sets and cgroups.
import {
  existsSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  rmdirSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import {
  BASE,
  BRIDGE,
  CNI_NETWORK,
  GATEWAY,
  POD_CIDR,
  SERVICE_CIDR,
  SYSCTLS,
  paths,
} from './layout.js';
import { progress, run } from './run.js';

const CGROUP_ROOT = '/sys/fs/cgroup';
/** Chains of the kubelet, kube-proxy and kube-router (KUBE-ROUTER-*, KUBE-NWPLCY-*, KUBE-POD-FW-*), and CNI's. */
const OUR_CHAIN = /^(KUBE-|CNI-)/;
const OUR_SET = /^(inet6:)?(KUBE-|kube-router)/i;
const TABLES = ['filter', 'nat', 'mangle', 'raw'];
const subnetPrefixes = [POD_CIDR, SERVICE_CIDR].map(
  (c) => c.split('.').slice(0, 3).join('.') + '.',
);

function cmdline(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** kubepods cgroup folders of every hierarchy, deepest first. */
function podCgroups(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
    }
    found.push(dir);
  };
  for (const h of existsSync(CGROUP_ROOT) ? readdirSync(CGROUP_ROOT) : []) {
    for (const top of ['kubepods', 'kubepods.slice']) {
      const dir = join(CGROUP_ROOT, h, top);
      if (existsSync(dir)) walk(dir);
    }
  }
  return found;
}

/**
 * Processes of the cluster: our daemons and containerd's shims (their command lines name
 * the cluster folder), the apiserver relay (it binds the bridge address), every pod process.
 */
function ourProcesses(): number[] {
  const pids = new Set<number>();
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    const c = cmdline(p);
    if (c.includes(BASE) || c.includes(`bind=${GATEWAY}`)) pids.add(Number(p));
  }
  for (const dir of podCgroups()) {
    try {
      for (const l of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n'))
        if (l.trim()) pids.add(Number(l));
    } catch {
      // A cgroup removed while we read it.
    }
  }
  return [...pids];
}

function ourMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4]?.replaceAll('\\040', ' '))
    .filter((m): m is string => m !== undefined && (m === BASE || m.startsWith(`${BASE}/`)))
    .sort((a, b) => b.length - a.length);
}

/** Lines of iptables-restore input that remove our chains and every jump into them. */
function chainRemoval(tool: 'iptables' | 'ip6tables', table: string): string[] {
  const saved = run(`${tool}-save`, ['-t', table], { allowFail: true }).stdout.split('\n');
  const chains = saved.filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]!);
  const ours = chains.filter((c) => OUR_CHAIN.test(c));
  if (ours.length === 0) return [];
  const jumps = saved.filter((l) => {
    const m = /^-A (\S+) .*-[jg] (\S+)/.exec(l);
    return m && !OUR_CHAIN.test(m[1]!) && OUR_CHAIN.test(m[2]!);
  });
  return [
    `*${table}`,
    ...jumps.map((l) => l.replace(/^-A /, '-D ')),
    ...ours.map((c) => `-F ${c}`),
    ...ours.map((c) => `-X ${c}`),
    'COMMIT',
  ];
}

function ourChains(): string[] {
  return (['iptables', 'ip6tables'] as const).flatMap((tool) =>
    TABLES.flatMap((t) =>
      run(`${tool}-save`, ['-t', t], { allowFail: true })
        .stdout.split('\n')
        .filter((l) => l.startsWith(':') && OUR_CHAIN.test(l.slice(1)))
        .map((l) => `${tool} ${t} ${l.slice(1).split(' ')[0]!}`),
    ),
  );
}

const ourSets = () =>
  run('ipset', ['list', '-n'], { allowFail: true })
    .stdout.split('\n')
    .filter((s) => OUR_SET.test(s));

const ourRoutes = () =>
  ['-4', '-6'].flatMap((f) =>
    run('ip', [f, 'route', 'show', 'table', 'all'], { allowFail: true })
      .stdout.split('\n')
      .filter((l) => l.includes(BRIDGE) || subnetPrefixes.some((p) => l.includes(p))),
  );

const bridgeExists = () => run('ip', ['link', 'show', BRIDGE], { allowFail: true }).code === 0;

/**
 * Folders outside the cluster folder that the kubelet and containerd create at fixed
 * paths. Removed at teardown only when the record says they did not exist before.
 */
const OUTSIDE_DIRS = ['/var/lib/kubelet', '/var/log/containers', '/run/containerd', '/var/lib/cni'];
const createdRecord = join(BASE, 'created-dirs.json');

/** Notes which of those folders this run will create. */
export function recordOutsideDirs(): void {
  writeFileSync(createdRecord, JSON.stringify(OUTSIDE_DIRS.filter((d) => !existsSync(d))));
}

function createdDirs(): string[] {
  if (!existsSync(createdRecord)) return [];
  const dirs = JSON.parse(readFileSync(createdRecord, 'utf8')) as string[];
  return dirs.filter((d) => existsSync(d));
}

/**
 * containerd 1.6 puts each shim's socket at /run/containerd/s/<sha256 of
 * "ADDRESS/NAMESPACE/ID">, whatever its own state folder: ours, by our address and ids.
 */
function shimSockets(): string[] {
  const tasks = join(paths.containerd, 'state', 'io.containerd.runtime.v2.task', 'k8s.io');
  const ids = existsSync(tasks) ? readdirSync(tasks) : [];
  return ids
    .map((id) => {
      const hash = createHash('sha256')
        .update(`${paths.containerdSock}/k8s.io/${id}`)
        .digest('hex');
      return join('/run/containerd/s', hash);
    })
    .filter((f) => existsSync(f));
}

/** Where kubelet links container logs, and libcni caches results: our entries only. */
function outsideFiles(): string[] {
  const found: string[] = [...shimSockets()];
  const logs = '/var/log/containers';
  for (const f of existsSync(logs) ? readdirSync(logs) : []) {
    try {
      if (readlinkSync(join(logs, f)).startsWith(paths.podLogs)) found.push(join(logs, f));
    } catch {
      // Not a link.
    }
  }
  const results = '/var/lib/cni/results';
  for (const f of existsSync(results) ? readdirSync(results) : [])
    if (f.startsWith(`${CNI_NETWORK}-`)) found.push(join(results, f));
  return found;
}

/** Host sysctls that differ from the values recorded before the cluster started, with those values. */
function changedSysctls(): Record<string, string> {
  if (!existsSync(paths.sysctls)) return {};
  const before = JSON.parse(readFileSync(paths.sysctls, 'utf8')) as Record<string, string>;
  return Object.fromEntries(Object.entries(before).filter(([k, v]) => readSysctl(k) !== v));
}

/** Removes a folder tree holding nothing but empty folders. */
function removeEmpty(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true }))
    if (e.isDirectory()) removeEmpty(join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch {
    // Not empty: someone else's files; leftovers() reports it.
  }
}

export function readSysctl(key: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${key}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The sysctls as they are before the cluster starts, for teardown to restore. */
export function recordSysctls(): Record<string, string> {
  const values: Record<string, string> = {};
  for (const k of SYSCTLS) {
    const v = readSysctl(k);
    if (v !== undefined) values[k] = v;
  }
  return values;
}

/** Everything of the cluster still on the machine; empty after a clean-up. */
export function leftovers(): string[] {
  return [
    ...ourProcesses().map((p) => `process ${p}: ${cmdline(String(p)).slice(0, 120)}`),
    ...ourMounts().map((m) => `mount ${m}`),
    ...(bridgeExists() ? [`bridge ${BRIDGE}`] : []),
    ...ourRoutes().map((r) => `route ${r}`),
    ...ourChains().map((c) => `chain ${c}`),
    ...ourSets().map((s) => `ipset ${s}`),
    ...podCgroups().map((c) => `cgroup ${c}`),
    ...outsideFiles().map((f) => `file ${f}`),
    ...Object.keys(changedSysctls()).map((k) => `sysctl ${k}`),
    ...createdDirs().map((d) => `folder ${d}`),
    ...(existsSync(BASE) ? [`folder ${BASE}`] : []),
  ];
}

/** Removes everything leftovers() finds, in the order that lets each step succeed. */
export async function cleanup(): Promise<void> {
  // Processes first (they hold mounts, namespaces and cgroups), until none is left.
  const started = Date.now();
  for (let i = 0; i < 50; i++) {
    const pids = ourProcesses();
    if (pids.length === 0) break;
    if (i === 10) progress(`teardown: still killing ${pids.join(' ')}`);
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  progress(`teardown: processes gone after ${Date.now() - started} ms`);
  for (const m of ourMounts()) {
    if (run('umount', [m], { allowFail: true }).code !== 0)
      run('umount', ['-l', m], { allowFail: true });
  }
  progress(`teardown: mounts gone after ${Date.now() - started} ms`);
  if (bridgeExists()) run('ip', ['link', 'del', BRIDGE], { allowFail: true });
  for (const f of ['-4', '-6'])
    for (const r of ourRoutes().filter((l) => !l.startsWith('local ')))
      run('ip', [f, 'route', 'del', ...r.trim().split(/\s+/)], { allowFail: true });
  progress(`teardown: bridge and routes gone after ${Date.now() - started} ms`);
  for (const tool of ['iptables', 'ip6tables'] as const) {
    for (const t of TABLES) {
      const lines = chainRemoval(tool, t);
      if (lines.length)
        run(`${tool}-restore`, ['--noflush'], { input: lines.join('\n') + '\n', allowFail: true });
    }
  }
  progress(`teardown: chains gone after ${Date.now() - started} ms`);
  for (const s of ourSets()) run('ipset', ['destroy', s], { allowFail: true });
  progress(`teardown: ipsets gone after ${Date.now() - started} ms`);
  for (const dir of podCgroups()) {
    try {
      rmdirSync(dir);
    } catch {
      // Still busy: leftovers() reports it.
    }
  }
  for (const f of outsideFiles()) unlinkSync(f);
  // What the kubelet alone uses goes whole; a shared folder only once it is empty.
  for (const d of createdDirs()) {
    if (d === '/var/lib/kubelet') rmSync(d, { recursive: true, force: true });
    else removeEmpty(d);
  }
  for (const [k, v] of Object.entries(changedSysctls())) writeFileSync(`/proc/sys/${k}`, `${v}\n`);
  if (Object.keys(changedSysctls()).length === 0 && ourMounts().length === 0)
    rmSync(BASE, { recursive: true, force: true });
}
