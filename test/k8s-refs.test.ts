// The manifests agree with each other, with the Secrets and certificates gen-certs
// makes, and with the server's settings: the mistakes a schema cannot see (a path one
// letter off, a port that differs, a name missing from the certificate).
import { X509Certificate } from 'node:crypto';
import { posix } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { ISecret } from 'kubernetes-models/v1/Secret';
import { SECRET_NAMES } from '../src/pki/k8s-secrets.js';
import { parsePolicy } from '../src/server/policy-file.js';
import { PolicyMatcher } from '../src/server/policy-match.js';
import { kitMethods } from '../src/server/policy-methods.js';
import { DEFAULT_CLIENT_IDENTITY } from '../src/server/config.js';
import {
  NAMESPACE,
  byName,
  configMaps,
  deployments,
  disruptionBudgets,
  envValue,
  flagValue,
  generateSecrets,
  networkPolicies,
  podTemplates,
  projectManifests,
  secretFiles,
  secrets as secretsOf,
  serviceAccounts,
  services,
  splitHostPort,
  type IPodTemplateSpec,
  type Manifest,
} from './helpers/k8s-manifests.js';
import { tempDir } from './helpers/pki.js';

const manifests = projectManifests();
const server = byName(deployments(manifests), 'grpc-server');
const client = byName(deployments(manifests), 'grpc-client');
const serverTemplate = server.spec!.template;
const clientTemplate = client.spec!.template;
const serverContainer = serverTemplate.spec!.containers[0]!;
const clientContainer = clientTemplate.spec!.containers[0]!;
const PROBES = ['startupProbe', 'readinessProbe', 'livenessProbe'] as const;
const probeCommand = (kind: (typeof PROBES)[number]) => serverContainer[kind]!.exec!.command!;
const METRICS_PORT = 9464;

let dir: Awaited<ReturnType<typeof tempDir>>;
let generated: Manifest[];
let secretList: ISecret[];

beforeAll(async () => {
  dir = await tempDir('grpc-mtls-k8s-refs-');
  generated = (await generateSecrets(dir.path)).secrets;
  secretList = secretsOf(generated);
});
afterAll(() => dir.remove());

/** The Secret and key a file path inside a container comes from, by its volume mounts. */
function fileSource(t: IPodTemplateSpec, c: IContainer, path: string) {
  for (const m of c.volumeMounts ?? []) {
    const rel = posix.relative(m.mountPath, path);
    if (rel.startsWith('..') || posix.isAbsolute(rel) || rel === '') continue;
    const volume = t.spec!.volumes!.find((v) => v.name === m.name);
    if (!volume?.secret) return { volume: m.name, secret: null, key: rel };
    const item = volume.secret.items?.find((i) => i.path === rel);
    return { volume: m.name, secret: volume.secret.secretName!, key: item ? item.key : rel };
  }
  return null;
}

/** The SPIFFE ID (the URI SAN) of the certificate in a Secret. */
function secretCert(name: string): X509Certificate {
  return new X509Certificate(secretFiles(byName(secretList, name)).get('tls.crt')!);
}
const spiffeOf = (cert: X509Certificate) =>
  /URI:(spiffe:\/\/[^,\s]+)/.exec(cert.subjectAltName ?? '')?.[1];

describe('manifest cross-references', () => {
  it('mounts only the Secrets gen-certs writes, and every one of them', () => {
    const mounted = podTemplates(manifests).flatMap(({ template }) =>
      (template.spec!.volumes ?? []).flatMap((v) => (v.secret ? [v.secret.secretName!] : [])),
    );
    expect(new Set(mounted)).toEqual(new Set(Object.values(SECRET_NAMES)));
    expect(secretList.map((s) => s.metadata!.name).sort()).toEqual(
      Object.values(SECRET_NAMES).sort(),
    );
  });

  it('mounts Secrets read-only and whole (no subPath), so a rotated Secret reaches the pod', () => {
    for (const { name, template } of podTemplates(manifests)) {
      for (const c of template.spec!.containers) {
        for (const m of c.volumeMounts ?? []) {
          const v = template.spec!.volumes!.find((x) => x.name === m.name)!;
          if (!v.secret) continue;
          expect(m, `${name}/${c.name} ${m.name}`).toMatchObject({ readOnly: true });
          expect(m.subPath, `${name}/${c.name} ${m.name}`).toBeUndefined();
          expect(v.secret.defaultMode).toBe(0o440);
        }
      }
    }
  });

  it('points every certificate, key, CA and CRL path at the right key of the right Secret', () => {
    const expectFrom = (
      t: IPodTemplateSpec,
      c: IContainer,
      path: string | undefined,
      secret: string,
      key: string,
    ) => {
      expect(path, `${c.name}: ${secret}/${key}`).toBeDefined();
      expect(fileSource(t, c, path!), path).toMatchObject({ secret, key });
      expect(secretFiles(byName(secretList, secret)).has(key), `${secret} has ${key}`).toBe(true);
    };
    const { server: s, client: cl, probe: p } = SECRET_NAMES;
    expectFrom(
      serverTemplate,
      serverContainer,
      envValue(serverContainer, 'TLS_CERT_FILE'),
      s,
      'tls.crt',
    );
    expectFrom(
      serverTemplate,
      serverContainer,
      envValue(serverContainer, 'TLS_KEY_FILE'),
      s,
      'tls.key',
    );
    expectFrom(
      serverTemplate,
      serverContainer,
      envValue(serverContainer, 'TLS_CA_FILE'),
      s,
      'ca.crt',
    );
    expectFrom(
      serverTemplate,
      serverContainer,
      envValue(serverContainer, 'TLS_CRL_FILE'),
      s,
      'ca.crl',
    );
    for (const kind of PROBES) {
      const cmd = probeCommand(kind);
      expect(cmd, kind).toContain('-tls');
      expectFrom(serverTemplate, serverContainer, flagValue(cmd, 'tls-ca-cert'), p, 'ca.crt');
      expectFrom(serverTemplate, serverContainer, flagValue(cmd, 'tls-client-cert'), p, 'tls.crt');
      expectFrom(serverTemplate, serverContainer, flagValue(cmd, 'tls-client-key'), p, 'tls.key');
    }
    expectFrom(
      clientTemplate,
      clientContainer,
      envValue(clientContainer, 'TLS_CERT_FILE'),
      cl,
      'tls.crt',
    );
    expectFrom(
      clientTemplate,
      clientContainer,
      envValue(clientContainer, 'TLS_KEY_FILE'),
      cl,
      'tls.key',
    );
    expectFrom(
      clientTemplate,
      clientContainer,
      envValue(clientContainer, 'TLS_CA_FILE'),
      cl,
      'ca.crt',
    );
    expectFrom(
      clientTemplate,
      clientContainer,
      envValue(clientContainer, 'TLS_CRL_FILE'),
      cl,
      'ca.crl',
    );
  });

  it('agrees on the gRPC port: container, GRPC_ADDRESS, Services, probes, client target, policies', () => {
    const port = serverContainer.ports!.find((p) => p.name === 'grpc')!;
    expect(port).toMatchObject({ containerPort: 50051, protocol: 'TCP' });
    expect(splitHostPort(envValue(serverContainer, 'GRPC_ADDRESS')!).port).toBe(port.containerPort);
    for (const svc of services(manifests)) {
      expect(svc.spec!.selector).toEqual(serverTemplate.metadata!.labels);
      for (const p of svc.spec!.ports!) {
        // A named targetPort resolves through the container's port name.
        const target =
          typeof p.targetPort === 'string'
            ? serverContainer.ports!.find((cp) => cp.name === p.targetPort)?.containerPort
            : (p.targetPort ?? p.port);
        expect(target, svc.metadata!.name).toBe(port.containerPort);
        expect(p.name).toBe('grpc');
      }
    }
    for (const kind of PROBES) {
      expect(splitHostPort(flagValue(probeCommand(kind), 'addr')!).port, kind).toBe(
        port.containerPort,
      );
    }
    const target = envValue(clientContainer, 'GRPC_TARGET')!.replace(/^dns:\/\/\//, '');
    const headless = byName(services(manifests), 'grpc-server-headless');
    expect(splitHostPort(target).port).toBe(headless.spec!.ports![0]!.port);
    const policyPorts = networkPolicies(manifests).flatMap((np) => [
      ...(np.spec!.ingress ?? []).flatMap((r) => r.ports ?? []),
      ...(np.spec!.egress ?? []).flatMap((r) => r.ports ?? []),
    ]);
    const grpcPorts = policyPorts.filter((p) => p.port !== 53 && p.port !== METRICS_PORT);
    expect(grpcPorts.length).toBeGreaterThan(0);
    for (const p of grpcPorts) expect(p).toEqual({ protocol: 'TCP', port: port.containerPort });
  });

  it('serves metrics on their own named port, announced to Prometheus and admitted only from monitoring', () => {
    const port = serverContainer.ports!.find((p) => p.name === 'metrics')!;
    expect(port).toMatchObject({ containerPort: METRICS_PORT, protocol: 'TCP' });
    const address = splitHostPort(envValue(serverContainer, 'METRICS_ADDRESS')!);
    expect(address.port).toBe(METRICS_PORT);
    expect(address.port).not.toBe(splitHostPort(envValue(serverContainer, 'GRPC_ADDRESS')!).port);
    expect(serverTemplate.metadata!.annotations).toEqual({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': String(METRICS_PORT),
      'prometheus.io/path': '/metrics',
    });
    // No Service exposes it: the scraper finds the pods themselves.
    for (const svc of services(manifests))
      expect(svc.spec!.ports!.map((p) => p.port)).not.toContain(METRICS_PORT);
    // Exactly one policy admits the metrics port, and only from the monitoring namespace.
    const admitting = networkPolicies(manifests).filter((np) =>
      (np.spec!.ingress ?? []).some((r) => (r.ports ?? []).some((p) => p.port === METRICS_PORT)),
    );
    expect(admitting.map((np) => np.metadata!.name)).toEqual(['grpc-server-metrics']);
  });

  it('dials only names the server certificate carries, through a headless Service that exists', () => {
    const cert = secretCert(SECRET_NAMES.server);
    const target = envValue(clientContainer, 'GRPC_TARGET')!;
    expect(target).toMatch(/^dns:\/\/\//);
    const host = splitHostPort(target.replace(/^dns:\/\/\//, '')).host;
    const serverName = envValue(clientContainer, 'TLS_SERVER_NAME') ?? host;
    expect(cert.checkHost(serverName), serverName).toBe(serverName);
    // The name is a Service of this namespace, headless, so DNS returns every pod.
    const [svc, ns, svcLabel, domain] = host.split('.', 4);
    expect([ns, svcLabel, domain]).toEqual([NAMESPACE, 'svc', 'cluster']);
    expect(byName(services(manifests), svc!).spec!.clusterIP).toBe('None');
    for (const kind of PROBES) {
      const name = flagValue(probeCommand(kind), 'tls-server-name')!;
      expect(cert.checkHost(name), `${kind}: ${name}`).toBe(name);
      const { host: addr } = splitHostPort(flagValue(probeCommand(kind), 'addr')!);
      // The probe dials its own pod over loopback, where the server listens (0.0.0.0).
      expect(addr).toBe('127.0.0.1');
      expect(cert.checkIP(addr)).toBe(addr);
    }
    // Every Secret carries the CA that signed the server certificate.
    for (const s of secretList) {
      const ca = new X509Certificate(secretFiles(s).get('ca.crt')!);
      expect(cert.verify(ca.publicKey), s.metadata!.name).toBe(true);
    }
  });

  it("allows the client's identity every Echo method, and the probe's none: it stays limited to health", () => {
    // The policy file the server reads is the ConfigMap's, at the path its mount gives.
    const path = envValue(serverContainer, 'AUTHZ_POLICY_FILE')!;
    const volume = serverTemplate.spec!.volumes!.find((v) => v.configMap !== undefined)!;
    const mount = serverContainer.volumeMounts!.find((m) => m.name === volume.name)!;
    const file = posix.relative(mount.mountPath, path);
    expect(posix.dirname(path)).toBe(mount.mountPath);
    const data = byName(configMaps(manifests), volume.configMap!.name!).data![file]!;
    const policy = parsePolicy(JSON.parse(data), `ConfigMap ${file}`, kitMethods());
    const matcher = new PolicyMatcher(policy);
    const clientId = spiffeOf(secretCert(SECRET_NAMES.client))!;
    const probeId = spiffeOf(secretCert(SECRET_NAMES.probe))!;
    expect(clientId).toBe(DEFAULT_CLIENT_IDENTITY);
    expect(probeId).toMatch(/\/sa\/grpc-probe$/);
    const echoMethods = [...kitMethods()].filter((m) => m.startsWith('/echo.v1.EchoService/'));
    expect(echoMethods.length).toBeGreaterThan(0);
    for (const m of echoMethods) {
      expect(matcher.match(m, clientId), m).not.toBeNull();
      expect(matcher.match(m, probeId), m).toBeNull();
    }
    expect(matcher.match('/grpc.health.v1.Health/Check', probeId)).toBe('health');
  });

  it("matches each certificate's SPIFFE ID to its pod's namespace and service account", () => {
    const sas = serviceAccounts(manifests).map((sa) => sa.metadata!.name);
    for (const [deployment, secret] of [
      [server, SECRET_NAMES.server],
      [client, SECRET_NAMES.client],
    ] as const) {
      const sa = deployment.spec!.template.spec!.serviceAccountName!;
      expect(sas).toContain(sa);
      expect(spiffeOf(secretCert(secret))).toBe(`spiffe://cluster.local/ns/${NAMESPACE}/sa/${sa}`);
    }
    for (const sa of serviceAccounts(manifests))
      expect(sa.automountServiceAccountToken).toBe(false);
  });

  it('uses one app label per workload, the same in metadata, selector, template and Services', () => {
    for (const d of deployments(manifests)) {
      const app = { app: d.metadata!.name };
      expect(d.metadata!.labels).toEqual(app);
      expect(d.spec!.selector.matchLabels).toEqual(app);
      expect(d.spec!.template.metadata!.labels).toEqual(app);
    }
    const apps = new Set(deployments(manifests).map((d) => d.metadata!.name));
    for (const svc of services(manifests))
      expect(svc.metadata!.labels).toEqual({ app: 'grpc-server' });
    for (const pdb of disruptionBudgets(manifests)) {
      expect(pdb.spec!.selector!.matchLabels).toEqual({ app: 'grpc-server' });
    }
    for (const np of networkPolicies(manifests)) {
      const selectors = [
        np.spec!.podSelector,
        ...(np.spec!.ingress ?? []).flatMap((r) => (r.from ?? []).map((p) => p.podSelector)),
        ...(np.spec!.egress ?? []).flatMap((r) => (r.to ?? []).map((p) => p.podSelector)),
      ];
      for (const sel of selectors) {
        if (sel?.matchLabels?.app) expect(apps, np.metadata!.name).toContain(sel.matchLabels.app);
      }
    }
  });

  it('keeps every namespaced object, the generated Secrets included, in the namespace', () => {
    for (const m of [...manifests, ...generated]) {
      if (m.object.kind === 'Namespace') expect(m.object.metadata.name).toBe(NAMESPACE);
      else expect(m.object.metadata.namespace, m.source).toBe(NAMESPACE);
    }
  });

  it('times shutdown and probes so that a draining pod is never killed nor restarted', () => {
    const drain = Number(envValue(serverContainer, 'SHUTDOWN_DRAIN_DELAY_MS'));
    const deadline = Number(envValue(serverContainer, 'SHUTDOWN_TIMEOUT_MS'));
    expect(drain).toBeGreaterThan(0);
    expect(deadline).toBeGreaterThan(0);
    expect(serverTemplate.spec!.terminationGracePeriodSeconds! * 1000).toBeGreaterThan(
      drain + deadline,
    );
    const r = serverContainer.readinessProbe!;
    // The kubelet sees NOT_SERVING within period x threshold: inside the drain delay.
    expect(r.periodSeconds! * r.failureThreshold! * 1000).toBeLessThan(drain);
    const l = serverContainer.livenessProbe!;
    expect(l.periodSeconds! * l.failureThreshold! * 1000).toBeGreaterThan(drain + deadline);
    expect(flagValue(probeCommand('readinessProbe'), 'service')).toBe('echo.v1.EchoService');
    expect(flagValue(probeCommand('livenessProbe'), 'service')).toBeUndefined();
    for (const kind of PROBES) {
      const cmd = probeCommand(kind);
      const seconds = (flag: string) =>
        Number(/^(\d+(?:\.\d+)?)s$/.exec(flagValue(cmd, flag) ?? '')?.[1]);
      // The probe gives up, with its own message, before the kubelet's timeout kills it.
      expect(seconds('connect-timeout') + seconds('rpc-timeout'), kind).toBeLessThan(
        serverContainer[kind]!.timeoutSeconds!,
      );
    }
  });

  it('keeps a replica serving through rollouts and voluntary disruptions', () => {
    expect(server.spec!.replicas).toBe(2);
    expect(server.spec!.strategy?.rollingUpdate).toMatchObject({ maxUnavailable: 0 });
    const pdb = byName(disruptionBudgets(manifests), 'grpc-server');
    expect(pdb.spec!.minAvailable).toBe(1);
    expect(serverTemplate.spec!.topologySpreadConstraints).toEqual([
      expect.objectContaining({
        topologyKey: 'kubernetes.io/hostname',
        labelSelector: { matchLabels: { app: 'grpc-server' } },
      }),
    ]);
  });

  it('denies all traffic by default and allows only DNS for the client, client to server, and monitoring to metrics', () => {
    const nps = networkPolicies(manifests);
    const deny = nps.find(
      (np) =>
        Object.keys(np.spec!.podSelector).length === 0 && !np.spec!.ingress && !np.spec!.egress,
    );
    expect(deny?.spec!.policyTypes?.sort()).toEqual(['Egress', 'Ingress']);
    const dns = byName(nps, 'allow-dns').spec!;
    expect(dns.podSelector).toEqual({ matchLabels: { app: 'grpc-client' } });
    expect(dns.egress![0]!.to![0]!.podSelector).toEqual({ matchLabels: { 'k8s-app': 'kube-dns' } });
    expect(dns.egress![0]!.ports).toEqual([
      { protocol: 'UDP', port: 53 },
      { protocol: 'TCP', port: 53 },
    ]);
    const ingress = byName(nps, 'grpc-server-ingress').spec!;
    expect(ingress.podSelector).toEqual({ matchLabels: { app: 'grpc-server' } });
    expect(ingress.ingress).toEqual([
      {
        from: [{ podSelector: { matchLabels: { app: 'grpc-client' } } }],
        ports: [{ protocol: 'TCP', port: 50051 }],
      },
    ]);
    const metrics = byName(nps, 'grpc-server-metrics').spec!;
    expect(metrics.podSelector).toEqual({ matchLabels: { app: 'grpc-server' } });
    expect(metrics.ingress).toEqual([
      {
        from: [
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
        ],
        ports: [{ protocol: 'TCP', port: METRICS_PORT }],
      },
    ]);
    const egress = byName(nps, 'grpc-client-egress').spec!;
    expect(egress.egress).toEqual([
      {
        to: [{ podSelector: { matchLabels: { app: 'grpc-server' } } }],
        ports: [{ protocol: 'TCP', port: 50051 }],
      },
    ]);
    // No policy lets anything else in or out.
    for (const np of nps) {
      for (const rule of [...(np.spec!.ingress ?? []), ...(np.spec!.egress ?? [])]) {
        expect(rule.ports?.length, np.metadata!.name).toBeGreaterThan(0);
      }
    }
  });
});
