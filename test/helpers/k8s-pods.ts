// Pods of the manifests, run for real without a cluster.
//
// Each pod is a Linux network namespace with one IP on a bridge that lives in a
// namespace of its own (no interface or route is ever added to the host's network),
// and its own /etc/hosts and /etc/resolv.conf (via `ip netns exec`, which mounts
// /etc/netns/NAME/* over /etc) holding what cluster DNS would answer. Each container
// is a process in a private mount namespace whose root is built from the pod spec:
// a tmpfs holding the host's /usr, /etc and libraries read-only (standing in for the
// image's OS layers), the image's WORKDIR and files, and the pod's volumes at their
// mountPaths (Secrets in the kubelet's ..data symlink layout, read-only, owned by
// root:fsGroup with defaultMode; emptyDir as a size-capped tmpfs). The root is then
// remounted read-only when readOnlyRootFilesystem says so, and the command runs
// chrooted, as runAsUser:runAsGroup, with no capabilities and no_new_privs. Exec
// probes run like the kubelet runs them: inside the container (nsenter into its
// namespaces and root), as its user, killed after timeoutSeconds.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import type { ISecret } from 'kubernetes-models/v1/Secret';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import { followLog, type LogLine } from '../../src/server-process.js';
import { secretFiles } from './k8s-manifests.js';

const COMMANDS = ['ip', 'unshare', 'nsenter', 'setpriv', 'chroot', 'mount', 'hostname'];

/** Why pods cannot run here, or null when they can. */
export function podSandboxUnavailable(): string | null {
  if (process.platform !== 'linux') return 'needs Linux network and mount namespaces';
  if (process.getuid?.() !== 0) return 'needs root to create network and mount namespaces';
  const absent = COMMANDS.filter(
    (c) => spawnSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' }).status !== 0,
  );
  if (absent.length > 0) return `needs ${absent.join(', ')} (iproute2, util-linux)`;
  const probe = spawnSync('unshare', ['--net', '--mount', '--uts', 'true']);
  if (probe.status !== 0)
    return `cannot create namespaces here (unshare: ${probe.stderr.toString().trim()})`;
  return null;
}

/** What the image provides, read from the Dockerfile, with the host paths that stand in for it. */
export interface ImageView {
  workdir: string;
  env: Record<string, string>;
  entrypoint: string[];
  cmd: string[];
  user: { uid: number; gid: number } | null;
  /** Host folder shown at WORKDIR (the build output, proto/, package.json). */
  appDir: string;
  /** Host folder shown at WORKDIR/node_modules. */
  nodeModules: string;
  /** Files the image adds outside WORKDIR: image path -> host file. */
  files: Record<string, string>;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

/** Resolves with `p`, or rejects naming `what` after `ms`. */
export async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function sh(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.trim() || r.status}`);
}

/** Kubernetes quantities as bytes: 16Mi, 1G, 512k. */
export function quantityBytes(q: string): number {
  const m = /^(\d+)(Ki|Mi|Gi|k|M|G)?$/.exec(q);
  if (!m) throw new Error(`unsupported quantity ${q}`);
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

/** Printed on stderr by the container's shell once it is inside its root, as its user, just before exec. */
const STARTED = 'k8s-pods: container started\n';

export class ContainerProcess {
  readonly lines: LogLine[];
  /** Settles once the command is about to run in its final namespaces, root and user. */
  readonly started: Promise<void>;
  readonly waitForLog: (match: (l: LogLine) => boolean) => Promise<LogLine>;
  readonly exited: Promise<number | null>;
  private errText = '';

  constructor(
    readonly pod: Pod,
    readonly spec: IContainer,
    readonly child: ChildProcess,
    readonly env: Record<string, string>,
    readonly user: { uid: number; gid: number; groups: number[] },
  ) {
    let markSeen: () => void;
    const seen = new Promise<void>((resolve) => (markSeen = resolve));
    child.stderr?.on('data', (d: Buffer) => {
      this.errText += d.toString();
      if (this.errText.includes(STARTED)) {
        this.errText = this.errText.replace(STARTED, '');
        markSeen();
      }
    });
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
    this.started = Promise.race([
      seen,
      this.exited.then((code): never => {
        throw new Error(
          `${pod.name}/${spec.name}: the sandbox failed to start it (exit ${code}): ${this.errText.trim()}`,
        );
      }),
    ]);
    ({ lines: this.lines, waitForLog: this.waitForLog } = followLog(child));
  }

  stderr(): string {
    return this.errText;
  }

  /** Waits for a JSON line on standard output; fails early, with stderr, if the process exits. */
  async waitFor(what: string, match: (l: LogLine) => boolean, ms: number): Promise<LogLine> {
    return within(
      ms,
      `${this.pod.name}/${this.spec.name}: ${what}`,
      Promise.race([
        this.waitForLog(match),
        this.exited.then((code): never => {
          throw new Error(
            `${this.pod.name}/${this.spec.name} exited with ${code} before ${what}: ${this.errText.trim()}`,
          );
        }),
      ]),
    );
  }

  /** Runs a command inside this container, as the kubelet runs exec probes. */
  async exec(command: string[], timeoutMs: number): Promise<ExecResult> {
    const pid = this.child.pid;
    if (pid === undefined || this.child.exitCode !== null)
      throw new Error(`${this.pod.name}/${this.spec.name} is not running`);
    const { uid, gid, groups } = this.user;
    const started = performance.now();
    const child = spawn(
      'nsenter',
      [
        `--target=${pid}`,
        '--mount',
        '--net',
        '--uts',
        '--root',
        '--wd',
        '--',
        '/usr/bin/setpriv',
        ...dropPrivileges(uid, gid, groups),
        '--',
        ...command,
      ],
      { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(timer);
    return { code, stdout, stderr, ms: performance.now() - started, timedOut };
  }

  /** Runs one of the container's exec probes exactly as written, bounded by its timeoutSeconds. */
  probe(kind: 'startupProbe' | 'readinessProbe' | 'livenessProbe'): Promise<ExecResult> {
    const probe: IProbe | undefined = this.spec[kind];
    const command = probe?.exec?.command;
    if (!command) throw new Error(`${this.pod.name}/${this.spec.name} has no exec ${kind}`);
    return this.exec(command, (probe.timeoutSeconds ?? 1) * 1000);
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }
}

function dropPrivileges(uid: number, gid: number, groups: number[]): string[] {
  return [
    `--reuid=${uid}`,
    `--regid=${gid}`,
    groups.length > 0 ? `--groups=${groups.join(',')}` : '--clear-groups',
    // allowPrivilegeEscalation: false, and capabilities: drop ALL
    '--no-new-privs',
    '--bounding-set=-all',
    '--inh-caps=-all',
  ];
}

export class Pod {
  readonly containers = new Map<string, ContainerProcess>();
  constructor(
    readonly name: string,
    readonly ip: string,
    readonly netns: string,
    readonly template: IPodTemplateSpec,
  ) {}

  container(name?: string): ContainerProcess {
    const c = name ? this.containers.get(name) : [...this.containers.values()][0];
    if (!c) throw new Error(`pod ${this.name} has no container ${name ?? ''}`);
    return c;
  }
}

/**
 * A throw-away "cluster": a bridge, pods on it, Secrets to mount. Everything it creates
 * (namespaces, /etc/netns/NAME folders, processes) is removed by destroy(), also after
 * a failure half-way.
 */
export class PodSandbox {
  readonly id = `gmk${randomBytes(3).toString('hex')}`;
  readonly pods: Pod[] = [];
  private readonly bridgeNs = `${this.id}-br`;
  private readonly namespaces: string[] = [];
  private readonly processes: ChildProcess[] = [];
  private nextHost = 10;
  /** Whether /etc/netns had to be made (then it is removed again when empty). */
  private madeEtcNetns = false;

  constructor(
    private readonly workDir: string,
    private readonly image: ImageView,
    private readonly secrets: ISecret[],
    private readonly namespace: string,
    /** The first three octets of the pods' /24, inside namespaces this sandbox owns. */
    private readonly subnet = '10.213.0',
  ) {}

  start(): void {
    this.madeEtcNetns = !existsSync('/etc/netns');
    run('ip', ['netns', 'add', this.bridgeNs]);
    this.namespaces.push(this.bridgeNs);
    run('ip', ['-n', this.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
    run('ip', ['-n', this.bridgeNs, 'link', 'set', 'br0', 'up']);
  }

  /** Creates the pod's network namespace and IP; containers start with runPod(). */
  addPod(name: string, template: IPodTemplateSpec): Pod {
    const n = this.nextHost++;
    const ns = `${this.id}-${n}`;
    const ip = `${this.subnet}.${n}`;
    run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    const host = `h${n}`;
    const peer = `p${n}`;
    run('ip', ['-n', this.bridgeNs, 'link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
    run('ip', ['-n', this.bridgeNs, 'link', 'set', peer, 'netns', ns]);
    run('ip', ['-n', ns, 'link', 'set', peer, 'name', 'eth0']);
    run('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    run('ip', ['-n', this.bridgeNs, 'link', 'set', host, 'master', 'br0']);
    run('ip', ['-n', this.bridgeNs, 'link', 'set', host, 'up']);
    const pod = new Pod(name, ip, ns, template);
    this.pods.push(pod);
    return pod;
  }

  /**
   * Writes each pod's /etc/hosts as the kubelet does (localhost, its own name) plus
   * the cluster DNS answers for `services`: a headless Service name resolves to every
   * pod it selects, a ClusterIP name to the first (a stand-in for the virtual IP,
   * as there is no kube-proxy here). Nothing else resolves, and no query leaves the
   * pod: the name server is the pod's own loopback, where nothing listens.
   */
  async writeDns(services: IService[], clusterDomain = 'cluster.local') {
    const namespace = this.namespace;
    const records: string[] = [];
    for (const svc of services) {
      const selector = svc.spec?.selector ?? {};
      const targets = this.pods.filter((p) =>
        Object.entries(selector).every(([k, v]) => p.template.metadata?.labels?.[k] === v),
      );
      const name = svc.metadata!.name!;
      const names = [
        `${name}.${namespace}.svc.${clusterDomain}`,
        `${name}.${namespace}.svc`,
        `${name}.${namespace}`,
        name,
      ].join(' ');
      const headless = svc.spec?.clusterIP === 'None';
      for (const p of headless ? targets : targets.slice(0, 1)) records.push(`${p.ip}\t${names}`);
    }
    for (const pod of this.pods) {
      const dir = join('/etc/netns', pod.netns);
      await mkdir(dir, { recursive: true });
      await writeFile(
        join(dir, 'hosts'),
        [
          '# Written by test/helpers/k8s-pods.ts for one test pod; removed with it.',
          '127.0.0.1\tlocalhost',
          '::1\tlocalhost ip6-localhost ip6-loopback',
          `${pod.ip}\t${pod.name}`,
          ...records,
          '',
        ].join('\n'),
      );
      await writeFile(
        join(dir, 'resolv.conf'),
        `nameserver 127.0.0.1\nsearch ${namespace}.svc.${clusterDomain} svc.${clusterDomain} ${clusterDomain}\noptions ndots:5\n`,
      );
    }
  }

  /** Starts every container of the pod, as the manifest writes it. */
  async runPod(pod: Pod) {
    const spec = pod.template.spec!;
    const podDir = join(this.workDir, 'pods', pod.name);
    const volumes = new Map<string, VolumeSource>();
    for (const v of spec.volumes ?? [])
      volumes.set(v.name, await this.prepareVolume(podDir, v, pod));
    for (const c of spec.containers) {
      const sc = c.securityContext ?? {};
      const podSc = spec.securityContext ?? {};
      const uid = sc.runAsUser ?? podSc.runAsUser ?? this.image.user?.uid ?? 0;
      const gid = sc.runAsGroup ?? podSc.runAsGroup ?? this.image.user?.gid ?? 0;
      const groups = [
        ...new Set([gid, ...(podSc.fsGroup !== undefined ? [podSc.fsGroup] : [])]),
        ...(podSc.supplementalGroups ?? []),
      ];
      const root = join(podDir, c.name, 'root');
      await mkdir(root, { recursive: true });
      const command = c.command
        ? [...c.command, ...(c.args ?? [])]
        : [...this.image.entrypoint, ...(c.args ?? this.image.cmd)];
      const env = {
        ...this.image.env,
        HOSTNAME: pod.name,
        ...containerEnv(c, pod, this.namespace),
      };
      const script = this.containerScript(pod, c, root, volumes, { uid, gid, groups });
      const child = spawn(
        'ip',
        [
          'netns',
          'exec',
          pod.netns,
          'unshare',
          '--mount',
          '--uts',
          '--propagation',
          'private',
          'sh',
          '-c',
          script,
          'pod',
          ...command,
        ],
        { env, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      this.processes.push(child);
      const container = new ContainerProcess(pod, c, child, env, { uid, gid, groups });
      pod.containers.set(c.name, container);
      await within(15_000, `${pod.name}/${c.name}: start`, container.started);
    }
  }

  private async prepareVolume(podDir: string, v: IVolume, pod: Pod): Promise<VolumeSource> {
    if (v.emptyDir) {
      return { kind: 'tmpfs', bytes: quantityBytes(String(v.emptyDir.sizeLimit ?? '64Mi')) };
    }
    if (v.secret) {
      const name = v.secret.secretName;
      const secret = this.secrets.find((s) => s.metadata?.name === name);
      if (!secret) {
        throw new Error(
          `pod ${pod.name}: Secret ${name} (volume ${v.name}) does not exist; the kubelet would wait for it`,
        );
      }
      const files = secretFiles(secret);
      const items: { key: string; path: string; mode?: number }[] =
        v.secret.items ?? [...files.keys()].map((key) => ({ key, path: key }));
      const fsGroup = pod.template.spec?.securityContext?.fsGroup ?? 0;
      // The kubelet's atomic writer: files in a timestamped folder, `..data` pointing at
      // it, and one symlink per key through `..data`; rotation swaps `..data` at once.
      const dir = join(podDir, 'volumes', v.name);
      const stamp = `..${new Date().toISOString().replace(/[-:T.Z]/g, '_')}`;
      await mkdir(join(dir, stamp), { recursive: true });
      for (const item of items) {
        const bytes = files.get(item.key);
        if (!bytes) throw new Error(`Secret ${name} has no key ${item.key}`);
        const file = join(dir, stamp, item.path);
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, bytes);
        await chown(file, 0, fsGroup);
        await chmod(file, item.mode ?? v.secret.defaultMode ?? 0o644);
        await symlink(join('..data', item.path), join(dir, item.path));
      }
      await symlink(stamp, join(dir, '..data'));
      await chmod(dir, 0o755);
      return { kind: 'bind', source: dir };
    }
    throw new Error(`volume ${v.name}: only secret and emptyDir volumes are supported here`);
  }

  private containerScript(
    pod: Pod,
    c: IContainer,
    root: string,
    volumes: Map<string, VolumeSource>,
    user: { uid: number; gid: number; groups: number[] },
  ): string {
    const R = sh(root);
    const lines = [
      'set -eu',
      `hostname ${sh(pod.name)}`,
      // The container's root: a tmpfs private to this mount namespace, so nothing made
      // below touches the host's file system.
      `mount -t tmpfs -o mode=0755 pod-root ${R}`,
      // The image's OS layers, read-only: the host's own, as the sandbox has no image store.
      `for d in usr etc dev proc sys; do mkdir ${R}/"$d"; mount --rbind "/$d" ${R}/"$d"; done`,
      `mount -o remount,bind,ro ${R}/usr`,
      `mount -o remount,bind,ro ${R}/etc`,
      `for l in bin sbin lib lib32 lib64 libx32; do
         if [ -L "/$l" ]; then ln -s "$(readlink "/$l")" ${R}/"$l";
         elif [ -d "/$l" ]; then mkdir ${R}/"$l"; mount --rbind "/$l" ${R}/"$l"; mount -o remount,bind,ro ${R}/"$l"; fi
       done`,
    ];
    // Files the image adds (grpc_health_probe): a tmpfs over their folder (so nothing is
    // created on the host; under the read-only /usr a missing folder fails), then the file.
    const covered = new Set<string>();
    for (const [imagePath, hostPath] of Object.entries(this.image.files)) {
      const dir = `${root}${dirname(imagePath)}`;
      if (!covered.has(dir)) {
        lines.push(`mkdir -p ${sh(dir)}`, `mount -t tmpfs -o mode=0755 image-files ${sh(dir)}`);
        covered.add(dir);
      }
      lines.push(
        `touch ${sh(root + imagePath)}`,
        `mount --bind -o ro ${sh(hostPath)} ${sh(root + imagePath)}`,
      );
    }
    const workdir = c.workingDir ?? this.image.workdir;
    lines.push(
      `mkdir -p ${sh(root + workdir)}`,
      `mount --bind ${sh(this.image.appDir)} ${sh(root + workdir)}`,
      `mount -o remount,bind,ro ${sh(root + workdir)}`,
      `mount --bind -o ro ${sh(this.image.nodeModules)} ${sh(`${root}${workdir}/node_modules`)}`,
    );
    for (const m of c.volumeMounts ?? []) {
      const source = volumes.get(m.name);
      if (!source) throw new Error(`${pod.name}/${c.name}: no volume ${m.name}`);
      if (m.subPath)
        throw new Error(`${pod.name}/${c.name}: subPath mounts are not supported here`);
      const target = sh(root + m.mountPath);
      lines.push(`mkdir -p ${target}`);
      if (source.kind === 'bind') {
        lines.push(`mount --bind ${m.readOnly ? '-o ro ' : ''}${sh(source.source)} ${target}`);
      } else {
        lines.push(`mount -t tmpfs -o size=${source.bytes},mode=1777 ${sh(m.name)} ${target}`);
      }
    }
    if (c.securityContext?.readOnlyRootFilesystem) lines.push(`mount -o remount,bind,ro ${R}`);
    lines.push(
      `exec chroot ${R} /usr/bin/setpriv ${dropPrivileges(user.uid, user.gid, user.groups).join(' ')} -- /bin/sh -c 'cd "$0" && printf "${STARTED.trim()}\\n" >&2 && exec "$@"' ${sh(workdir)} "$@"`,
    );
    return lines.join('\n');
  }

  /** Kills every process and removes every namespace and file the sandbox made; safe to call twice. */
  async destroy(): Promise<void> {
    for (const child of this.processes.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = once(child, 'exit');
        child.kill('SIGKILL');
        await gone;
      }
    }
    const errors: string[] = [];
    for (const ns of this.namespaces.splice(0).reverse()) {
      const r = spawnSync('ip', ['netns', 'del', ns], { encoding: 'utf8' });
      if (r.status !== 0) errors.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
      await rm(join('/etc/netns', ns), { recursive: true, force: true });
    }
    if (this.madeEtcNetns) await rmdir('/etc/netns').catch(() => undefined);
    if (errors.length > 0) throw new Error(errors.join('; '));
  }
}

type VolumeSource = { kind: 'bind'; source: string } | { kind: 'tmpfs'; bytes: number };

/** The container's variables as the kubelet sets them (downward API for the pod's own fields). */
function containerEnv(c: IContainer, pod: Pod, namespace: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef) {
      const field = e.valueFrom.fieldRef.fieldPath;
      const value = {
        'metadata.name': pod.name,
        'metadata.namespace': namespace,
        'status.podIP': pod.ip,
      }[field];
      if (value === undefined)
        throw new Error(`env ${e.name}: fieldRef ${field} not supported here`);
      env[e.name] = value;
    } else throw new Error(`env ${e.name}: only value and fieldRef are supported here`);
  }
  return env;
}
