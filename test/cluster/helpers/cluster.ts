// The single-node cluster of `npm run test:cluster`: whether this machine can run it,
// building what is missing, bringing it up step by step and tearing it down.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importImages, startCoreDns, writeKubernetesEndpoint } from './addons.js';
import { makeClusterPki } from './cluster-pki.js';
import {
  startApiserver,
  startContainerd,
  startControllers,
  startEtcd,
  startKubeProxy,
  startKubeRouter,
  startKubelet,
} from './components.js';
import { writeConfigs } from './configs.js';
import { cleanup } from './host-cleanup.js';
import { leftovers, recordOutsideDirs, recordSysctls } from './host-state.js';
import {
  BASE,
  BRIDGE,
  COMPONENTS,
  GATEWAY,
  IMAGES,
  IMAGE_CACHE,
  POD_CIDR,
  bin,
  paths,
} from './layout.js';
import { progress, run } from './run.js';

const TOOLS = [
  'containerd',
  'runc',
  'ctr',
  'socat',
  'ipset',
  'iptables',
  'ip6tables',
  'openssl',
  'ip',
  'conntrack',
];

const has = (cmd: string) => run('sh', ['-c', `command -v ${cmd}`], { allowFail: true }).code === 0;

/** Why this machine cannot run the cluster, or undefined when it can. */
export function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'the cluster test needs Linux';
  if (process.getuid?.() !== 0)
    return 'the cluster test needs root (it runs a kubelet, containerd and iptables)';
  if (run('unshare', ['--net', '--mount', 'true'], { allowFail: true }).code !== 0)
    return 'the cluster test needs network and mount namespaces (unshare --net --mount failed)';
  const missing = TOOLS.filter((t) => !has(t));
  if (missing.length)
    return `the cluster test needs ${missing.join(', ')} (apt-get install containerd runc iptables ipset conntrack socat containernetworking-plugins)`;
  if (!existsSync('/usr/lib/cni/bridge'))
    return 'the cluster test needs the CNI plugins in /usr/lib/cni (apt-get install containernetworking-plugins)';
  // scripts/image/build-images.sh runs its own dockerd on a debootstrap rootfs, compiles
  // the pause image with gcc, and Go builds the components.
  const builders = ['dockerd', 'debootstrap', 'gcc', 'go'].filter((t) => !has(t));
  if (builders.length)
    return `building the images and components needs ${builders.join(', ')} (apt-get install docker.io debootstrap gcc golang-go)`;
  return undefined;
}

/** Runs a build script with its progress lines on our output. */
function runScript(what: string, script: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else
        reject(new Error(`${what} failed (${script} exited ${String(code)}); its output is above`));
    });
  });
}

/** Builds the components when any is missing (the first build takes about 40 minutes on 2 cores). */
export async function ensureBuilt(repo: string): Promise<void> {
  const missing = COMPONENTS.filter((c) => !existsSync(bin(c)));
  if (missing.length === 0) return;
  progress(
    `building ${missing.join(', ')} with scripts/cluster/build.sh (about 40 min the first time)`,
  );
  await runScript(
    'building the cluster components',
    join(repo, 'scripts/cluster/build.sh'),
    [],
    90 * 60_000,
  );
}

/** Builds the project image and the pause and CoreDNS images from this checkout. */
export async function ensureImages(repo: string): Promise<void> {
  const script = join(repo, 'scripts/image/build-images.sh');
  if (existsSync(script)) {
    progress('building the images with scripts/image/build-images.sh');
    await runScript('building the images', script, [repo], 45 * 60_000);
  } else if (IMAGES.every((i) => existsSync(join(IMAGE_CACHE, i)))) {
    progress(
      `scripts/image/build-images.sh not in this checkout; using the images in ${IMAGE_CACHE}`,
    );
  } else {
    throw new Error(
      `no image tarballs in ${IMAGE_CACHE} and no scripts/image/build-images.sh to build them`,
    );
  }
}

async function step(name: string, fn: () => void | Promise<void>): Promise<void> {
  const started = Date.now();
  progress(`${name} ...`);
  await fn();
  progress(`${name}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function createBridge(): void {
  const [, bits] = POD_CIDR.split('/');
  run('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  run('ip', ['addr', 'add', `${GATEWAY}/${bits!}`, 'dev', BRIDGE]);
  run('ip', ['link', 'set', BRIDGE, 'up']);
  // Bridged pod-to-pod packets must pass iptables, or neither Services nor policies see them.
  run('modprobe', ['br_netfilter'], { allowFail: true });
  writeFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', '1\n');
  writeFileSync('/proc/sys/net/bridge/bridge-nf-call-ip6tables', '1\n');
  writeFileSync('/proc/sys/net/ipv4/ip_forward', '1\n');
}

/** Brings the whole cluster up; the caller tears it down with down(), also when this throws. */
export async function up(): Promise<void> {
  await step('clearing what an earlier run left', cleanup);
  const left = leftovers();
  if (left.length) throw new Error(`cannot clear an earlier run's leftovers: ${left.join('; ')}`);
  mkdirSync(BASE, { recursive: true, mode: 0o700 });
  writeFileSync(paths.sysctls, JSON.stringify(recordSysctls(), null, 2));
  recordOutsideDirs();
  await step('cluster PKI and configuration', () => {
    makeClusterPki();
    writeConfigs();
    createBridge();
  });
  await step('etcd', startEtcd);
  await step('kube-apiserver', startApiserver);
  await step('kubernetes Service endpoint', writeKubernetesEndpoint);
  await step('kube-controller-manager and kube-scheduler', startControllers);
  await step('containerd', startContainerd);
  await step('images', importImages);
  await step('kubelet', startKubelet);
  await step('kube-proxy', startKubeProxy);
  await step('kube-router (NetworkPolicies)', startKubeRouter);
  await step('CoreDNS', startCoreDns);
  progress(`cluster ready; logs in ${paths.logs}`);
}

/** Tears everything down; returns what could not be removed (empty when all went). */
export async function down(): Promise<string[]> {
  await step('teardown', cleanup);
  return leftovers();
}
