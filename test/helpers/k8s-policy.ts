// Rules every pod template of this kit must meet: the Pod Security Standards
// "restricted" profile (which includes "baseline"), as of Kubernetes 1.30, and this
// project's own hardening. Each rule has an id, so a test can show that it fires.
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { IPodSecurityContext } from 'kubernetes-models/v1/PodSecurityContext';
import type { ISecurityContext } from 'kubernetes-models/v1/SecurityContext';
import { allContainers } from './k8s-manifests.js';

export interface Violation {
  rule: RuleId;
  /** The workload, and the container where one is concerned. */
  where: string;
  message: string;
}

export type RuleId =
  // Pod Security Standards, baseline
  | 'host-namespaces'
  | 'privileged'
  | 'host-path-volumes'
  | 'host-ports'
  | 'apparmor'
  | 'selinux'
  | 'proc-mount'
  | 'sysctls'
  | 'windows-host-process'
  // Pod Security Standards, restricted
  | 'volume-types'
  | 'privilege-escalation'
  | 'run-as-non-root'
  | 'run-as-user'
  | 'seccomp'
  | 'capabilities'
  // this project
  | 'user-above-10000'
  | 'image-pinned'
  | 'probes'
  | 'resources'
  | 'read-only-root'
  | 'service-account';

/** The volume types the restricted profile allows. */
const RESTRICTED_VOLUMES = [
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
];
/** The sysctls the baseline profile calls safe (1.30). */
const SAFE_SYSCTLS = [
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
];
const SELINUX_TYPES = ['', 'container_t', 'container_init_t', 'container_kvm_t'];

/** The user the image runs as must be above this, so it matches no account on a host. */
export const MIN_UID = 10_001;

/** A container's security setting with the pod-level default applied, as the kubelet does. */
function effective<K extends keyof ISecurityContext & keyof IPodSecurityContext>(
  t: IPodTemplateSpec,
  c: IContainer,
  key: K,
): ISecurityContext[K] | IPodSecurityContext[K] | undefined {
  const own = c.securityContext?.[key];
  if (own !== undefined && own !== null) return own;
  return t.spec?.securityContext?.[key];
}

/** `name:tag` with a tag other than latest, or `name@sha256:...`. */
export function imagePinned(image: string): boolean {
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return true;
  const lastSlash = image.lastIndexOf('/');
  const tag = /:([\w][\w.-]{0,127})$/.exec(image.slice(lastSlash + 1))?.[1];
  return tag !== undefined && tag !== 'latest';
}

export function checkPodTemplate(workload: string, t: IPodTemplateSpec): Violation[] {
  const out: Violation[] = [];
  const add = (rule: RuleId, where: string, message: string) => out.push({ rule, where, message });
  const spec = t.spec;
  if (!spec) return [{ rule: 'resources', where: workload, message: 'pod template has no spec' }];

  for (const f of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
    if (spec[f]) add('host-namespaces', workload, `${f} must not be true`);
  }
  const podSc = spec.securityContext;
  for (const s of podSc?.sysctls ?? []) {
    if (!SAFE_SYSCTLS.includes(s.name)) add('sysctls', workload, `sysctl ${s.name} is not allowed`);
  }
  for (const v of spec.volumes ?? []) {
    const types = Object.keys(v).filter((k) => k !== 'name');
    if (types.includes('hostPath'))
      add('host-path-volumes', workload, `volume ${v.name}: hostPath`);
    for (const type of types.filter((k) => !RESTRICTED_VOLUMES.includes(k)))
      add('volume-types', workload, `volume ${v.name}: type ${type} is not allowed`);
  }
  if (podSc?.runAsNonRoot === false) add('run-as-non-root', workload, 'runAsNonRoot is false');
  if (podSc?.runAsUser === 0) add('run-as-user', workload, 'runAsUser is 0 (root)');
  const podSeccomp = podSc?.seccompProfile?.type;
  if (podSeccomp !== undefined && !['RuntimeDefault', 'Localhost'].includes(podSeccomp))
    add('seccomp', workload, `seccompProfile ${podSeccomp} is not allowed`);
  if (podSc?.appArmorProfile?.type === 'Unconfined')
    add('apparmor', workload, 'appArmorProfile Unconfined');
  if (podSc?.windowsOptions?.hostProcess)
    add('windows-host-process', workload, 'windowsOptions.hostProcess');
  if (!spec.serviceAccountName || spec.serviceAccountName === 'default')
    add('service-account', workload, 'needs its own serviceAccountName, not default');
  if (spec.automountServiceAccountToken !== false)
    add('service-account', workload, 'automountServiceAccountToken must be false');

  for (const c of allContainers(t)) {
    const where = `${workload}/${c.name}`;
    const sc = c.securityContext ?? {};
    if (sc.privileged) add('privileged', where, 'privileged must not be true');
    for (const p of c.ports ?? []) {
      if (p.hostPort) add('host-ports', where, `hostPort ${p.hostPort}`);
    }
    if (sc.appArmorProfile?.type === 'Unconfined')
      add('apparmor', where, 'appArmorProfile Unconfined');
    const se = effective(t, c, 'seLinuxOptions');
    if (se && (!SELINUX_TYPES.includes(se.type ?? '') || se.user || se.role))
      add(
        'selinux',
        where,
        'seLinuxOptions: only type container_t/_init_t/_kvm_t, no user or role',
      );
    if (sc.procMount !== undefined && sc.procMount !== 'Default')
      add('proc-mount', where, `procMount ${sc.procMount}`);
    if (effective(t, c, 'windowsOptions')?.hostProcess)
      add('windows-host-process', where, 'windowsOptions.hostProcess');
    if (sc.allowPrivilegeEscalation !== false)
      add('privilege-escalation', where, 'allowPrivilegeEscalation must be false');
    if (effective(t, c, 'runAsNonRoot') !== true)
      add('run-as-non-root', where, 'runAsNonRoot must be true (pod or container)');
    const uid = effective(t, c, 'runAsUser');
    if (uid === 0) add('run-as-user', where, 'runAsUser is 0 (root)');
    if (uid === undefined || uid < MIN_UID)
      add('user-above-10000', where, `runAsUser must be set and at least ${MIN_UID}`);
    const gid = effective(t, c, 'runAsGroup');
    if (gid === undefined || gid === 0)
      add('user-above-10000', where, 'runAsGroup must be set and not 0');
    const seccomp = effective(t, c, 'seccompProfile')?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost')
      add('seccomp', where, `seccompProfile must be RuntimeDefault or Localhost (is ${seccomp})`);
    const caps = sc.capabilities;
    if (!caps?.drop?.includes('ALL')) add('capabilities', where, 'capabilities must drop ALL');
    for (const cap of caps?.add ?? []) {
      if (cap !== 'NET_BIND_SERVICE') add('capabilities', where, `capability ${cap} added`);
    }
    if (sc.readOnlyRootFilesystem !== true)
      add('read-only-root', where, 'readOnlyRootFilesystem must be true');
    if (!c.image || !imagePinned(c.image))
      add('image-pinned', where, `image ${c.image} needs a tag other than latest, or a digest`);
    for (const kind of ['requests', 'limits'] as const) {
      for (const r of ['cpu', 'memory']) {
        if (c.resources?.[kind]?.[r] === undefined)
          add('resources', where, `resources.${kind}.${r} missing`);
      }
    }
    // A container that listens has something to probe; one that only calls out (the
    // client loop) has no endpoint a probe could ask.
    if ((c.ports ?? []).length > 0) {
      for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
        if (!c[probe]) add('probes', where, `${probe} missing on a container that listens`);
      }
    }
  }
  return out;
}
