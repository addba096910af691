// The manifests' pods, run for real without a cluster (see test/helpers/k8s-pods.ts):
// each server and client pod in its own network namespace with its own IP, Secrets
// from the generated Secret manifests at the mountPaths, command, args and env as
// written, the built dist/ at the image's WORKDIR, and every probe run exactly as
// written with the real grpc_health_probe. Not covered: NetworkPolicy enforcement
// (that needs a CNI) and the kubelet's own scheduling of probes.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ISecret } from 'kubernetes-models/v1/Secret';
import { SECRET_NAMES } from '../src/k8s-secrets.js';
import { buildApp, imageView } from './helpers/k8s-image.js';
import {
  NAMESPACE,
  byName,
  deployments,
  envValue,
  flagValue,
  generateSecrets,
  projectManifests,
  secrets as secretsOf,
  services,
  type IPodTemplateSpec,
} from './helpers/k8s-manifests.js';
import {
  PodSandbox,
  podSandboxUnavailable,
  within,
  type ContainerProcess,
  type Pod,
} from './helpers/k8s-pods.js';
import { tempDir } from './helpers/pki.js';
import { INSTALL_HINT, REQUIRED, requireTools, toolPath } from './helpers/tools.js';

function unavailable(): string | null {
  const sandbox = podSandboxUnavailable();
  if (sandbox && REQUIRED) throw new Error(`REQUIRE_INTEROP=1 but pods cannot run: ${sandbox}`);
  requireTools('grpc-health-probe');
  return sandbox;
}
const skipReason = unavailable();
if (skipReason) console.warn(`k8s pods: skipped: ${skipReason} (the probe: ${INSTALL_HINT})`);

const manifests = projectManifests();
const serverDeployment = byName(deployments(manifests), 'grpc-server');
const clientDeployment = byName(deployments(manifests), 'grpc-client');
const serverContainer = serverDeployment.spec!.template.spec!.containers[0]!;
const drainMs = Number(envValue(serverContainer, 'SHUTDOWN_DRAIN_DELAY_MS'));
const shutdownMs = Number(envValue(serverContainer, 'SHUTDOWN_TIMEOUT_MS'));
// No environment overrides: the manifests' own values (5 s drain delay, 10 s shutdown
// deadline, 200 ms between calls) keep this file well under a minute.
/** Bounds for waits that normally take well under a second. */
const STEP_MS = 15_000;

let dir: Awaited<ReturnType<typeof tempDir>> | undefined;
let sandbox: PodSandbox | undefined;
const servers: Pod[] = [];
let client: Pod;
let intruder: Pod;

/** A pod that has the CA but no client certificate: the client's template, that one volume swapped. */
function intruderTemplate(caOnly: string): IPodTemplateSpec {
  const t = structuredClone(clientDeployment.spec!.template);
  t.metadata = { labels: { app: 'intruder' } };
  const spec = t.spec!;
  spec.volumes = spec.volumes!.map((v) =>
    v.secret ? { name: v.name, secret: { ...v.secret, secretName: caOnly } } : v,
  );
  // Something to exec into, like `kubectl run intruder --image=... -- sleep`.
  spec.containers[0]!.command = ['sleep', '120'];
  spec.containers[0]!.args = [];
  return t;
}

async function cleanup(): Promise<void> {
  try {
    await sandbox?.destroy();
  } finally {
    await dir?.remove();
  }
}

describe.skipIf(skipReason !== null)(
  `pods of k8s/*.yaml in network namespaces${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    beforeAll(async () => {
      dir = await tempDir('grpc-mtls-k8s-pods-');
      try {
        const { secrets: generated } = await generateSecrets(dir.path);
        const secretList = secretsOf(generated);
        // The intruder's Secret: only the CA certificate of the client's Secret.
        const clientSecret = byName(secretList, SECRET_NAMES.client);
        const caOnly: ISecret = {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'ca-only', namespace: NAMESPACE },
          data: { 'ca.crt': clientSecret.data!['ca.crt']! },
        };
        const app = await buildApp(dir.path);
        const image = imageView(app, { probe: toolPath('grpc-health-probe') });
        sandbox = new PodSandbox(dir.path, image, [...secretList, caOnly], NAMESPACE);
        sandbox.start();
        for (let i = 0; i < serverDeployment.spec!.replicas!; i++) {
          servers.push(sandbox.addPod(`grpc-server-${i}`, serverDeployment.spec!.template));
        }
        client = sandbox.addPod('grpc-client-0', clientDeployment.spec!.template);
        intruder = sandbox.addPod('intruder', intruderTemplate('ca-only'));
        await sandbox.writeDns(services(manifests));
        for (const pod of servers) await sandbox.runPod(pod);
        await Promise.all(
          servers.map((p) =>
            p.container().waitFor('"serving"', (l) => l.msg === 'serving', STEP_MS),
          ),
        );
      } catch (err) {
        await cleanup();
        throw err;
      }
    });
    afterAll(cleanup);

    const serving = (r: { stdout: string; stderr: string }) =>
      expect(r.stdout + r.stderr).toContain('status: SERVING');

    it('starts both server pods, whose startup, readiness and liveness probes pass as written', async () => {
      for (const pod of servers) {
        const server = pod.container('server');
        for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
          const r = await server.probe(kind);
          expect(r, `${pod.name} ${kind}: ${r.stderr}`).toMatchObject({ code: 0, timedOut: false });
          serving(r);
        }
        const started = server.lines.find((l) => l.msg === 'serving')!;
        expect(started.address).toBe('0.0.0.0:50051');
        expect(started.policy).toMatchObject({ source: 'AUTHZ_ALLOWED_IDENTITIES' });
      }
    });

    it('runs the server as user 10001 without capabilities, on a read-only root with only /tmp writable', async () => {
      const server = servers[0]!.container('server');
      const status = await readFile(`/proc/${server.child.pid}/status`, 'utf8');
      expect(status).toMatch(/^Uid:\s+10001\s+10001\s+10001\s+10001$/m);
      expect(status).toMatch(/^Gid:\s+10001\s/m);
      expect(status).toMatch(/^CapEff:\s+0+$/m);
      expect(status).toMatch(/^CapBnd:\s+0+$/m);
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
      const root = await server.exec(['/bin/sh', '-c', 'touch /app/x || touch /x'], 5000);
      expect(root.code).not.toBe(0);
      expect(root.stderr).toContain('Read-only file system');
      const secret = await server.exec(
        ['/bin/sh', '-c', 'touch /var/run/secrets/grpc-mtls/tls/x'],
        5000,
      );
      expect(secret.stderr).toContain('Read-only file system');
      const tmp = await server.exec(['/bin/sh', '-c', 'echo ok > /tmp/x && cat /tmp/x'], 5000);
      expect(tmp).toMatchObject({ code: 0, stdout: 'ok\n' });
    });

    it("spreads the client pod's calls over both server pods through the headless Service name", async () => {
      await sandbox!.runPod(client);
      const loop = client.container('client');
      const answered = new Set<unknown>();
      await loop.waitFor(
        'calls answered by both server pods',
        (l) => (l.status === 'OK' && answered.add(l.server), answered.size === servers.length),
        STEP_MS,
      );
      expect([...answered].sort()).toEqual(servers.map((p) => p.name).sort());
      expect(loop.lines.filter((l) => l.status === 'FAILED')).toEqual([]);
    });

    it('refuses a pod that has no client certificate, even on the right network', async () => {
      await sandbox!.runPod(intruder);
      const shell = intruder.container();
      const target = servers[1]!;
      const probeLike = serverContainer.readinessProbe!.exec!.command!;
      const r = await shell.exec(
        [
          probeLike[0]!,
          `-addr=${target.ip}:50051`,
          '-tls',
          '-tls-ca-cert=/var/run/secrets/grpc-mtls/tls/ca.crt',
          '-tls-server-name=grpc-server-headless.grpc-mtls.svc.cluster.local',
          '-connect-timeout=1s',
          '-rpc-timeout=1s',
        ],
        5000,
      );
      // grpc_health_probe's exit 2: no connection could be made (the handshake is refused).
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('failed to connect');
      const refused = await target
        .container()
        .waitFor(
          'the refused handshake in the server log',
          (l) => l.msg === 'TLS handshake refused' && String(l.peer).endsWith(intruder.ip),
          STEP_MS,
        );
      expect(refused.code).toBe('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE');
    });

    it('lets the probe identity, mounted in the server pod, check health but not call EchoService', async () => {
      const server = servers[0]!.container('server');
      const probeFlags = serverContainer.livenessProbe!.exec!.command!;
      const asProbe = (command: string[]) =>
        server.exec(
          [
            'node',
            'dist/src/bin/client.js',
            ...command,
            // The Service's own name: it is in the server certificate.
            '--target=grpc-server.grpc-mtls.svc:50051',
            `--tls-ca-file=${flagValue(probeFlags, 'tls-ca-cert')!}`,
            `--tls-cert-file=${flagValue(probeFlags, 'tls-client-cert')!}`,
            `--tls-key-file=${flagValue(probeFlags, 'tls-client-key')!}`,
          ],
          STEP_MS,
        );
      const health = await asProbe(['health', '--service=echo.v1.EchoService']);
      expect(health.code, health.stderr).toBe(0);
      expect(health.stdout).toContain('"SERVING"');
      const r = await asProbe(['echo', 'hello']);
      // The client's exit code for PERMISSION_DENIED, naming the identity refused.
      expect(r.code, r.stderr).toBe(15);
      expect(r.stderr).toContain('grpc-probe');
    });

    it('after SIGTERM, fails readiness within the drain delay while the client keeps succeeding on the other pod, then exits 0', async () => {
      const [victim, survivor] = servers as [Pod, Pod];
      const victimServer = victim.container('server');
      const loop: ContainerProcess = client.container('client');
      const sigterm = performance.now();
      const sigtermAt = Date.now();
      victimServer.signal('SIGTERM');
      await victimServer.waitFor(
        'NOT_SERVING after SIGTERM',
        (l) => l.msg === 'shutting down: NOT_SERVING, draining',
        STEP_MS,
      );
      const ready = await victimServer.probe('readinessProbe');
      const notReadyAfter = performance.now() - sigterm;
      expect(ready.code, ready.stderr).toBe(4); // grpc_health_probe: the service is not SERVING
      expect(ready.stdout + ready.stderr).toContain('NOT_SERVING');
      expect(notReadyAfter).toBeLessThan(drainMs);
      // The other pod stays ready.
      expect(await survivor.container().probe('readinessProbe')).toMatchObject({ code: 0 });

      const code = await within(drainMs + shutdownMs + STEP_MS, 'exit', victimServer.exited);
      expect(code).toBe(0);
      expect(victimServer.lines.at(-1)).toMatchObject({ msg: 'stopped', outcome: 'graceful' });
      // Through the drain delay the pod went on answering: NOT_SERVING is for the probes only.
      const drained = loop.lines.filter(
        (l) => l.server === victim.name && Date.parse(String(l.time)) > sigtermAt,
      );
      expect(drained.length).toBeGreaterThan(0);

      // Five more calls after the pod is gone, all answered by the survivor.
      const lastSeq = Number(loop.lines.filter((l) => 'seq' in l).at(-1)?.seq ?? 0);
      await loop.waitFor('five calls after the exit', (l) => Number(l.seq) >= lastSeq + 5, STEP_MS);
      loop.signal('SIGTERM');
      const summary = (await loop.waitFor('the summary line', (l) => 'summary' in l, STEP_MS))
        .summary as {
        calls: number;
        ok: number;
        failed: number;
        perServer: Record<string, number>;
      };
      expect(await within(STEP_MS, 'client exit', loop.exited)).toBe(0);
      expect(summary.failed).toBe(0);
      expect(loop.lines.filter((l) => l.status === 'FAILED')).toEqual([]);
      expect(Object.keys(summary.perServer).sort()).toEqual([survivor.name, victim.name].sort());
      const after = loop.lines.filter((l) => Number(l.seq) > lastSeq && l.status === 'OK');
      expect(after.length).toBeGreaterThanOrEqual(5);
      expect(new Set(after.map((l) => l.server))).toEqual(new Set([survivor.name]));
    });
  },
);
