// What of the cluster is on the machine: its processes, mounts, bridge, routes,
// iptables chains, ipsets, cgroups, files at fixed paths outside the cluster folder and
// changed sysctls, each found by what is ours (the cluster folder, our bridge and
// subnets, the names the Kubernetes components give their chains, sets and cgroups).
// Also the records, written before a start, that teardown restores from.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
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
import { run } from './run.js';
const CGROUP_ROOT = '/sys/fs/cgroup';
/** Chains of the kubelet, kube-proxy and kube-router (KUBE-ROUTER-*, KUBE-NWPLCY-*, KUBE-POD-FW-*), and CNI's. */
export const OUR_CHAIN = /^(KUBE-|CNI-)/;
const OUR_SET = /^(inet6:)?(KUBE-|kube-router)/i;
export const TABLES = ['filter', 'nat', 'mangle', 'raw'];
const subnetPrefixes = [POD_CIDR, SERVICE_CIDR].map(
  (c) => c.split('.').slice(0, 3).join('.') + '.',
);

export function cmdline(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** kubepods cgroup folders of every hierarchy, deepest first. */
export function podCgroups(): string[] {
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
export function ourProcesses(): number[] {
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

export function ourMounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4]?.replaceAll('\\040', ' '))
    .filter((m): m is string => m !== undefined && (m === BASE || m.startsWith(`${BASE}/`)))
    .sort((a, b) => b.length - a.length);
}

export function ourChains(): string[] {
  return (['iptables', 'ip6tables'] as const).flatMap((tool) =>
    TABLES.flatMap((t) =>
      run(`${tool}-save`, ['-t', t], { allowFail: true })
        .stdout.split('\n')
        .filter((l) => l.startsWith(':') && OUR_CHAIN.test(l.slice(1)))
        .map((l) => `${tool} ${t} ${l.slice(1).split(' ')[0]!}`),
    ),
  );
}

export const ourSets = () =>
  run('ipset', ['list', '-n'], { allowFail: true })
    .stdout.split('\n')
    .filter((s) => OUR_SET.test(s));

export const ourRoutes = () =>
  ['-4', '-6'].flatMap((f) =>
    run('ip', [f, 'route', 'show', 'table', 'all'], { allowFail: true })
      .stdout.split('\n')
      .filter((l) => l.includes(BRIDGE) || subnetPrefixes.some((p) => l.includes(p))),
  );

export const bridgeExists = () =>
  run('ip', ['link', 'show', BRIDGE], { allowFail: true }).code === 0;

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

export function createdDirs(): string[] {
  if (!existsSync(createdRecord)) return [];
  const dirs = JSON.parse(readFileSync(createdRecord, 'utf8')) as string[];
  return dirs.filter((d) => existsSync(d));
}

/**
 * containerd 1.6 puts each shim's socket at /run/containerd/s/<sha256 of
 * "ADDRESS/NAMESPACE/ID">, whatever its own state folder: ours, by our address and ids.
 */
export function shimSockets(): string[] {
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
export function outsideFiles(): string[] {
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
export function changedSysctls(): Record<string, string> {
  if (!existsSync(paths.sysctls)) return {};
  const before = JSON.parse(readFileSync(paths.sysctls, 'utf8')) as Record<string, string>;
  return Object.fromEntries(Object.entries(before).filter(([k, v]) => readSysctl(k) !== v));
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
