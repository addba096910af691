// Every manifest, the Secrets gen-certs writes included, against the Kubernetes
// schemas of kubernetes-models, strictly: unknown fields are errors (see
// test/helpers/k8s-schema.ts for how, and why validate() alone is not enough).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET_NAMES } from '../src/pki/k8s-secrets.js';
import {
  generateSecrets,
  parseManifests,
  projectManifests,
  type Manifest,
} from './helpers/k8s-manifests.js';
import { formatProblems, validateStrict } from './helpers/k8s-schema.js';
import { tempDir } from './helpers/pki.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let generated: Manifest[];
const committed = projectManifests();

beforeAll(async () => {
  dir = await tempDir('grpc-mtls-k8s-schema-');
  generated = (await generateSecrets(dir.path)).secrets;
});
afterAll(() => dir.remove());

const deployment = () =>
  structuredClone(committed.find((m) => m.object.kind === 'Deployment')!.object) as unknown as {
    spec: { template: { spec: { containers: Record<string, unknown>[] } } };
  };

describe('manifest schemas', () => {
  it('finds every kind of object the deployment needs in k8s/', () => {
    const kinds = committed.map((m) => `${m.object.kind}/${m.object.metadata.name}`).sort();
    expect(kinds).toEqual([
      'ConfigMap/grpc-server-policy',
      'Deployment/grpc-client',
      'Deployment/grpc-server',
      'Namespace/grpc-mtls',
      'NetworkPolicy/allow-dns',
      'NetworkPolicy/default-deny',
      'NetworkPolicy/grpc-client-egress',
      'NetworkPolicy/grpc-server-ingress',
      'NetworkPolicy/grpc-server-metrics',
      'PodDisruptionBudget/grpc-server',
      'Service/grpc-server',
      'Service/grpc-server-headless',
      'ServiceAccount/grpc-client',
      'ServiceAccount/grpc-server',
    ]);
  });

  it('validates every committed manifest strictly, unknown fields included', () => {
    for (const m of committed) {
      expect(formatProblems(validateStrict(m.object)), m.source).toEqual([]);
    }
  });

  it('validates the three Secrets gen-certs writes, as kubernetes.io/tls with base64 data', () => {
    expect(generated.map((m) => m.object.metadata.name).sort()).toEqual(
      Object.values(SECRET_NAMES).sort(),
    );
    for (const m of generated) {
      expect(formatProblems(validateStrict(m.object)), m.source).toEqual([]);
      expect(m.object).toMatchObject({ type: 'kubernetes.io/tls' });
      expect(Object.keys(m.object.data as object).sort()).toEqual([
        'ca.crl',
        'ca.crt',
        'tls.crt',
        'tls.key',
      ]);
    }
  });

  it('names each object once, so no file silently overrides another', () => {
    const ids = [...committed, ...generated].map(
      (m) => `${m.object.kind}/${m.object.metadata.namespace ?? ''}/${m.object.metadata.name}`,
    );
    expect(ids.length).toBe(new Set(ids).size);
  });

  it('rejects a misspelt field (imagePullPolicyy) that validate() alone lets through', () => {
    const d = deployment();
    d.spec.template.spec.containers[0]!.imagePullPolicyy = 'Always';
    expect(formatProblems(validateStrict(d))).toEqual([
      '/spec/template/spec/containers/0/imagePullPolicyy: unknown field "imagePullPolicyy"',
    ]);
  });

  it('rejects unknown fields at any depth: top level, metadata, probes, security context', () => {
    const d = deployment() as ReturnType<typeof deployment> & Record<string, unknown>;
    d.extra = true;
    const c = d.spec.template.spec.containers[0]! as {
      readinessProbe: { exec: Record<string, unknown> };
      securityContext: Record<string, unknown>;
    };
    c.readinessProbe.exec.timeout = 3;
    c.securityContext.readOnlyRootFileSystem = true; // capital S: not the real field
    expect(formatProblems(validateStrict(d)).sort()).toEqual([
      '/extra: unknown field "extra"',
      '/spec/template/spec/containers/0/readinessProbe/exec/timeout: unknown field "timeout"',
      '/spec/template/spec/containers/0/securityContext/readOnlyRootFileSystem: unknown field "readOnlyRootFileSystem"',
    ]);
  });

  it('rejects wrong types, bad quantities, missing required fields and unknown kinds', () => {
    const d = deployment() as unknown as {
      spec: {
        replicas: unknown;
        selector?: unknown;
        template: { spec: { containers: { resources: { limits: { cpu: string } } }[] } };
      };
    };
    d.spec.replicas = 'two';
    d.spec.template.spec.containers[0]!.resources.limits.cpu = 'lots';
    delete d.spec.selector;
    const problems = formatProblems(validateStrict(d));
    expect(problems).toContain('/spec/replicas: must be integer');
    expect(problems).toContain(
      '/spec/template/spec/containers/0/resources/limits/cpu: must match format "quantity"',
    );
    expect(problems).toContain('/spec: must have required property selector');
    expect(
      formatProblems(validateStrict({ apiVersion: 'policy/v1beta1', kind: 'PodDisruptionBudget' })),
    ).toEqual([
      '/: apiVersion policy/v1beta1 is not one of v1, apps/v1, policy/v1, networking.k8s.io/v1',
    ]);
    expect(formatProblems(validateStrict({ apiVersion: 'v1', kind: 'Container' }))).toEqual([
      '/: v1 has no kind Container',
    ]);
  });

  it('reads YAML as kubectl does: 0440 is octal, and a duplicate key is an error', () => {
    const [m] = parseManifests('apiVersion: v1\nkind: X\nmetadata: {name: x}\nmode: 0440\n', 'a');
    expect(m!.object.mode).toBe(0o440);
    expect(() =>
      parseManifests('apiVersion: v1\nkind: X\nkind: Y\nmetadata: {name: x}\n', 'dup.yaml'),
    ).toThrow(/dup\.yaml#1: .*unique/i);
  });
});
