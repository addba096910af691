// Every pod template meets the Pod Security Standards "restricted" profile and this
// project's hardening (test/helpers/k8s-policy.ts), and each rule is shown to fire
// on a template that breaks it, so a rule that checks nothing cannot pass unseen.
import { describe, expect, it } from 'vitest';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import { byName, namespaces, podTemplates, projectManifests } from './helpers/k8s-manifests.js';
import { checkPodTemplate, imagePinned, type RuleId } from './helpers/k8s-policy.js';

const manifests = projectManifests();
const templates = podTemplates(manifests);
const server = () => structuredClone(templates.find((t) => t.name === 'grpc-server')!.template);
type Spec = NonNullable<IPodTemplateSpec['spec']>;
const first = (t: IPodTemplateSpec) => t.spec!.containers[0]!;

describe('pod security', () => {
  it('has a pod template for the server and the client', () => {
    expect(templates.map((t) => t.name).sort()).toEqual(['grpc-client', 'grpc-server']);
  });

  it.each(templates.map((t) => [t.name, t.template] as const))(
    'passes every rule for %s',
    (name, template) => {
      expect(checkPodTemplate(name, template)).toEqual([]);
    },
  );

  it('enforces the restricted profile on the namespace, pinned for enforcement', () => {
    const labels = byName(namespaces(manifests), 'grpc-mtls').metadata!.labels!;
    expect(labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'restricted',
      'pod-security.kubernetes.io/enforce-version': 'v1.30',
      'pod-security.kubernetes.io/audit': 'restricted',
      'pod-security.kubernetes.io/warn': 'restricted',
    });
  });

  it('accepts pinned image references and refuses latest or untagged ones', () => {
    expect(imagePinned('grpc-mtls-service:0.1.0')).toBe(true);
    expect(imagePinned('registry.example:5000/team/grpc-mtls-service:0.1.0')).toBe(true);
    expect(imagePinned(`grpc-mtls-service@sha256:${'a'.repeat(64)}`)).toBe(true);
    expect(imagePinned('grpc-mtls-service:latest')).toBe(false);
    expect(imagePinned('grpc-mtls-service')).toBe(false);
    expect(imagePinned('registry.example:5000/grpc-mtls-service')).toBe(false);
  });

  const breaks: [string, RuleId | RuleId[], (s: Spec) => void][] = [
    ['uses the host network', 'host-namespaces', (s) => (s.hostNetwork = true)],
    ['shares the host PID namespace', 'host-namespaces', (s) => (s.hostPID = true)],
    [
      'runs a privileged container',
      'privileged',
      (s) => (s.containers[0]!.securityContext!.privileged = true),
    ],
    [
      'mounts a hostPath volume',
      ['host-path-volumes', 'volume-types'],
      (s) => s.volumes!.push({ name: 'host', hostPath: { path: '/' } }),
    ],
    [
      'mounts a volume type outside the restricted list',
      'volume-types',
      (s) => s.volumes!.push({ name: 'nfs', nfs: { server: 'nfs', path: '/' } }),
    ],
    ['binds a host port', 'host-ports', (s) => (s.containers[0]!.ports![0]!.hostPort = 50051)],
    [
      'turns AppArmor off',
      'apparmor',
      (s) => (s.securityContext!.appArmorProfile = { type: 'Unconfined' }),
    ],
    [
      'sets an SELinux user',
      'selinux',
      (s) => (s.securityContext!.seLinuxOptions = { user: 'system_u' }),
    ],
    [
      'unmasks /proc',
      'proc-mount',
      (s) => (s.containers[0]!.securityContext!.procMount = 'Unmasked'),
    ],
    [
      'sets an unsafe sysctl',
      'sysctls',
      (s) => (s.securityContext!.sysctls = [{ name: 'kernel.msgmax', value: '1' }]),
    ],
    [
      'asks for a Windows host process',
      'windows-host-process',
      (s) => (s.securityContext!.windowsOptions = { hostProcess: true }),
    ],
    [
      'allows privilege escalation',
      'privilege-escalation',
      (s) => delete s.containers[0]!.securityContext!.allowPrivilegeEscalation,
    ],
    ['may run as root', 'run-as-non-root', (s) => delete s.securityContext!.runAsNonRoot],
    [
      'overrides runAsNonRoot in the container',
      'run-as-non-root',
      (s) => (s.containers[0]!.securityContext!.runAsNonRoot = false),
    ],
    [
      'runs as user 0',
      ['run-as-user', 'user-above-10000'],
      (s) => (s.containers[0]!.securityContext!.runAsUser = 0),
    ],
    ['runs as a low user id', 'user-above-10000', (s) => (s.securityContext!.runAsUser = 1000)],
    ['has no seccomp profile', 'seccomp', (s) => delete s.securityContext!.seccompProfile],
    [
      'runs a container unconfined by seccomp',
      'seccomp',
      (s) => (s.containers[0]!.securityContext!.seccompProfile = { type: 'Unconfined' }),
    ],
    [
      'keeps the default capabilities',
      'capabilities',
      (s) => delete s.containers[0]!.securityContext!.capabilities,
    ],
    [
      'adds NET_RAW',
      'capabilities',
      (s) => (s.containers[0]!.securityContext!.capabilities!.add = ['NET_RAW']),
    ],
    [
      'has a writable root file system',
      'read-only-root',
      (s) => (s.containers[0]!.securityContext!.readOnlyRootFilesystem = false),
    ],
    [
      'uses the latest tag',
      'image-pinned',
      (s) => (s.containers[0]!.image = 'grpc-mtls-service:latest'),
    ],
    ['uses no tag', 'image-pinned', (s) => (s.containers[0]!.image = 'grpc-mtls-service')],
    ['has no readiness probe', 'probes', (s) => delete s.containers[0]!.readinessProbe],
    ['has no startup probe', 'probes', (s) => delete s.containers[0]!.startupProbe],
    ['has no liveness probe', 'probes', (s) => delete s.containers[0]!.livenessProbe],
    ['has no memory limit', 'resources', (s) => delete s.containers[0]!.resources!.limits!.memory],
    ['has no CPU request', 'resources', (s) => delete s.containers[0]!.resources!.requests!.cpu],
    ['mounts an API token', 'service-account', (s) => delete s.automountServiceAccountToken],
    ['runs as the default service account', 'service-account', (s) => delete s.serviceAccountName],
    [
      'adds an init container that breaks the rules',
      'privilege-escalation',
      (s) =>
        (s.initContainers = [
          {
            ...structuredClone(s.containers[0]!),
            name: 'init',
            securityContext: { capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true },
          },
        ]),
    ],
  ];

  it.each(breaks)('flags a pod template that %s (rule %s)', (_, rules, mutate) => {
    const t = server();
    mutate(t.spec!);
    const violations = checkPodTemplate('grpc-server', t);
    // Exactly the rules named: each case changes one thing, so nothing else may fire.
    expect(new Set(violations.map((v) => v.rule))).toEqual(new Set([rules].flat()));
  });

  it('names the workload and container in each violation', () => {
    const t = server();
    first(t).securityContext!.readOnlyRootFilesystem = false;
    expect(checkPodTemplate('grpc-server', t)).toEqual([
      {
        rule: 'read-only-root',
        where: 'grpc-server/server',
        message: 'readOnlyRootFilesystem must be true',
      },
    ]);
  });
});
