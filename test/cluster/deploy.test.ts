// `npm run test:cluster`: the README's Deploy section, typed as a user would, on a real
// single-node Kubernetes that the test builds (once), starts and tears down itself.
// Every figure it measures is printed as a `cluster: measured …` line.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { down, ensureBuilt, ensureImages, skipReason, up } from './helpers/cluster.js';
import { leftovers } from './helpers/host-state.js';
import { events, isReady, kubectl, pods } from './helpers/kubectl.js';
import { waitFor } from './helpers/run.js';
import {
  genCerts,
  makeWorkFolder,
  measured,
  readmeCommand,
  removeWorkFolder,
  repo,
  restarts,
  seconds,
  sh,
  sleep,
} from './helpers/user-shell.js';
import {
  NS,
  answeredBy,
  calls,
  clientPod,
  failed,
  serverPods,
  since,
} from './helpers/workload-logs.js';
import { disruptionTests } from './steps/disruptions.js';
import { metricsTests } from './steps/metrics.js';
import { networkPolicyTests } from './steps/network-policies.js';
import { rotationTests } from './steps/rotation.js';

const reason = skipReason();

if (reason && process.env.CLUSTER_REQUIRED === '1') {
  it('runs on this machine (CLUSTER_REQUIRED=1 makes a skip a failure)', () => {
    throw new Error(`the cluster test cannot run here: ${reason}`);
  });
}

describe.skipIf(reason !== undefined)(
  `the README's Deploy section on a real Kubernetes${reason ? ` (skipped: ${reason})` : ''}`,
  () => {
    let work = '';
    beforeAll(async () => {
      await ensureBuilt(repo);
      await ensureImages(repo);
      work = makeWorkFolder();
      await up();
    });
    afterAll(async () => {
      await down();
      removeWorkFolder();
    });

    it('npm run gen-certs writes the three Secrets', () => {
      genCerts();
      expect(
        readdirSync(join(work, 'k8s'))
          .filter((f) => f.startsWith('secret-'))
          .sort(),
      ).toEqual([
        'secret-grpc-client-tls.yaml',
        'secret-grpc-probe-tls.yaml',
        'secret-grpc-server-tls.yaml',
      ]);
    });

    it('passes a server-side dry run without a warning once the namespace exists', () => {
      sh('kubectl apply -f k8s/00-namespace.yaml');
      const r = sh('kubectl apply --dry-run=server -f k8s');
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/deployment.apps\/grpc-server created \(server dry run\)/);
    });

    it('applies and rolls out: every pod Ready under Pod Security restricted', () => {
      const started = Date.now();
      expect(sh('kubectl apply -f k8s').stderr).toBe('');
      sh('kubectl -n grpc-mtls rollout status deployment/grpc-server --timeout=180s', 200_000);
      sh('kubectl -n grpc-mtls rollout status deployment/grpc-client --timeout=180s', 200_000);
      measured(
        'kubectl apply -f k8s until both Deployments rolled out',
        seconds(Date.now() - started),
      );
      const labels = JSON.parse(kubectl(['get', 'namespace', NS, '-o', 'json']).stdout) as {
        metadata: { labels: Record<string, string> };
      };
      expect(labels.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
      const all = pods(NS);
      expect(all.map((p) => p.metadata.name.replace(/-[a-z0-9]+-[a-z0-9]+$/, '')).sort()).toEqual([
        'grpc-client',
        'grpc-server',
        'grpc-server',
      ]);
      expect(all.every(isReady)).toBe(true);
      expect(restarts()).toEqual([0, 0, 0]);
    });

    it('logs no Unhealthy event while all is well', async () => {
      // Long enough for several runs of every probe (readiness every 2 s, liveness every 10 s).
      await sleep(25_000);
      const unhealthy = events(NS).filter((e) => e.reason === 'Unhealthy');
      expect(unhealthy.map((e) => `${e.involvedObject.name}: ${e.message}`)).toEqual([]);
      expect(
        sh('kubectl -n grpc-mtls get events --field-selector reason=Unhealthy').stderr,
      ).toMatch(/No resources found/);
    });

    it("answers the README's grpc_health_probe with SERVING", () => {
      // grpc_health_probe prints its verdict on standard error.
      expect(sh(readmeCommand('kubectl -n grpc-mtls exec deploy/grpc-server')).stderr).toMatch(
        /status: SERVING/,
      );
    });

    it("shows in the client's log OK calls answered by both replicas", async () => {
      const names = serverPods().map((p) => p.metadata.name);
      const log = await waitFor(
        'the client to reach both replicas',
        () => {
          const c = calls(clientPod());
          return names.every((n) => answeredBy(c).has(n)) ? c : undefined;
        },
        60_000,
        2000,
      );
      const firstOk = log.find((l) => l.status === 'OK')!.time;
      expect(failed(since(log, firstOk))).toEqual([]);
    });

    rotationTests();
    networkPolicyTests();
    metricsTests();
    disruptionTests();

    it('kubectl delete -f k8s removes everything', async () => {
      sh('kubectl delete -f k8s --wait=true --timeout=120s', 150_000);
      await waitFor(
        `namespace ${NS} to be gone`,
        () =>
          kubectl(['get', 'namespace', NS], { allowFail: true }).code !== 0 ? true : undefined,
        120_000,
        1000,
      );
      expect(
        kubectl([
          'get',
          'all,secrets,networkpolicies,pdb',
          '-A',
          '-l',
          'app.kubernetes.io/part-of=grpc-mtls-service',
          '-o',
          'name',
        ]).stdout.trim(),
      ).toBe('');
      expect(
        kubectl(['get', 'pods', '-n', NS, '-o', 'name'], { allowFail: true }).stdout.trim(),
      ).toBe('');
    });

    it('tears down without leaving a process, mount, bridge, route, chain, ipset, cgroup or sysctl', async () => {
      expect(await down()).toEqual([]);
      expect(leftovers()).toEqual([]);
    });
  },
);
