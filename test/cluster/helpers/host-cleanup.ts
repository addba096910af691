// Leaves the machine as it was: every process, mount, network namespace, bridge, route,
// iptables chain, ipset, cgroup and sysctl of the cluster goes (host-state.ts finds
// them). Idempotent, so it runs before a start (to clear what a crashed run left) and
// after the test, also on failure.
import { readdirSync, rmSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  OUR_CHAIN,
  TABLES,
  bridgeExists,
  changedSysctls,
  createdDirs,
  ourMounts,
  ourProcesses,
  ourRoutes,
  ourSets,
  outsideFiles,
  podCgroups,
} from './host-state.js';
import { BASE, BRIDGE } from './layout.js';
import { progress, run } from './run.js';

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
