// What a user does to a running deployment, and what the client's log shows meanwhile:
// a rolling restart (for a client of any age), scaling up and down, deleting a pod and
// killing one without a graceful stop.
import { describe, expect, it } from 'vitest';
import { applyText, events, getJson, isReady, kubectl } from '../helpers/kubectl.js';
import { paths } from '../helpers/layout.js';
import { run, waitFor } from '../helpers/run.js';
import { measured, seconds, sh, sleep } from '../helpers/user-shell.js';
import {
  NS,
  answeredBy,
  calls,
  clientPod,
  failed,
  failureWindowS,
  serverPods,
  since,
} from '../helpers/workload-logs.js';

/** Bounds the README states: every new replica answers within this after `kubectl scale`. */
export const SCALE_BOUND_S = 60;
/** Failed calls after losing a pod (deleted or killed) fall within this many seconds. */
export const POD_LOSS_BOUND_S = 5;

const YOUNG = 'grpc-client-young';

/** A second client, started just before the restart: a copy of the client Deployment's pod. */
function startYoungClient(): void {
  const d = getJson<{
    spec: { template: { metadata: { labels: Record<string, string> }; spec: unknown } };
  }>(['deployment', '-n', NS, 'grpc-client']);
  applyText(
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: YOUNG, namespace: NS, labels: d.spec.template.metadata.labels },
      spec: d.spec.template.spec,
    }),
  );
}

/** Waits until the pods of the server Deployment are `n`, all Ready, and each answered the client after `t`. */
async function allAnswering(n: number, t: number, timeoutMs: number): Promise<number> {
  return waitFor(
    `${n} ready server pods, each answering the client`,
    () => {
      const ready = serverPods().filter(isReady);
      if (ready.length !== n) return undefined;
      const by = answeredBy(since(calls(clientPod()), t));
      return ready.every((p) => by.has(p.metadata.name)) ? Date.now() : undefined;
    },
    timeoutMs,
    2000,
  );
}

export function disruptionTests(): void {
  describe('disruptions while the client calls', () => {
    it('restarts the servers with no failed call, for a client started just before and an older one', async () => {
      startYoungClient();
      await waitFor(
        'the young client to make its first call',
        () => (calls(YOUNG).some((l) => l.status === 'OK') ? true : undefined),
        90_000,
        1000,
      );
      const young = getJson<{ status: { startTime: string } }>(['pod', '-n', NS, YOUNG]);
      const t = Date.now();
      measured('young client age at the restart', seconds(t - Date.parse(young.status.startTime)));
      sh('kubectl -n grpc-mtls rollout restart deployment/grpc-server');
      sh('kubectl -n grpc-mtls rollout status deployment/grpc-server --timeout=180s', 200_000);
      measured('rollout restart to rolled out', seconds(Date.now() - t));
      const done = await allAnswering(2, Date.now(), 90_000);
      await sleep(5000);
      for (const pod of [YOUNG, clientPod()]) {
        const c = since(calls(pod), t);
        expect(failed(c), pod).toEqual([]);
        expect(c.length, pod).toBeGreaterThan(10);
      }
      measured('rollout restart to both new replicas answering', seconds(done - t));
      kubectl(['delete', 'pod', '-n', NS, YOUNG, '--grace-period=1']);
    });

    it(`scales to 4 replicas, each answering within ${SCALE_BOUND_S} s, and back to 2 with no failed call`, async () => {
      const t = Date.now();
      sh('kubectl -n grpc-mtls scale deployment/grpc-server --replicas=4');
      const done = await allAnswering(4, t, SCALE_BOUND_S * 1000);
      measured('scale to 4 until every replica answered', seconds(done - t));
      const down = Date.now();
      sh('kubectl -n grpc-mtls scale deployment/grpc-server --replicas=2');
      await waitFor(
        'two server pods left',
        () =>
          kubectl(['get', 'pods', '-n', NS, '-l', 'app=grpc-server', '-o', 'name'])
            .stdout.trim()
            .split('\n').length === 2
            ? true
            : undefined,
        90_000,
        1000,
      );
      await sleep(5000);
      expect(failed(since(calls(clientPod()), down))).toEqual([]);
      expect(failed(since(calls(clientPod()), t))).toEqual([]);
    });

    it(`loses a deleted pod with failed calls only within ${POD_LOSS_BOUND_S} s`, async () => {
      const t = Date.now();
      const victim = serverPods()[0]!.metadata.name;
      sh(`kubectl -n grpc-mtls delete pod ${victim} --wait=true --timeout=60s`, 90_000);
      const done = await allAnswering(2, Date.now(), 90_000);
      const c = since(calls(clientPod()), t);
      measured('pod deleted: failed calls', `${failed(c).length} over ${failureWindowS(c)} s`);
      expect(failureWindowS(c)).toBeLessThanOrEqual(POD_LOSS_BOUND_S);
      measured('pod deleted until its replacement answered', seconds(done - t));
    });

    it(`loses a server killed with SIGKILL (containerd task kill) with failed calls only within ${POD_LOSS_BOUND_S} s`, async () => {
      const victim = serverPods()[0]!;
      const id = victim.status.containerStatuses![0]!.containerID!.replace(/^containerd:\/\//, '');
      const t = Date.now();
      run('ctr', [
        '-a',
        paths.containerdSock,
        '-n',
        'k8s.io',
        'tasks',
        'kill',
        '-s',
        'SIGKILL',
        id,
      ]);
      await waitFor(
        'the killed server to be restarted and Ready',
        () => {
          const p = serverPods().find((s) => s.metadata.name === victim.metadata.name);
          return p && isReady(p) && p.status.containerStatuses![0]!.restartCount === 1
            ? true
            : undefined;
        },
        120_000,
        1000,
      );
      const done = await allAnswering(2, Date.now(), 90_000);
      await sleep(3000);
      const c = since(calls(clientPod()), t);
      measured('server killed: failed calls', `${failed(c).length} over ${failureWindowS(c)} s`);
      expect(failureWindowS(c)).toBeLessThanOrEqual(POD_LOSS_BOUND_S);
      measured('server killed until it answered again', seconds(done - t));
    });

    it('starts every server pod of those rollouts without a startup-probe failure', () => {
      const started = events(NS).filter(
        (e) => e.reason === 'Started' && e.involvedObject.name.startsWith('grpc-server-'),
      );
      const failures = events(NS).filter(
        (e) => e.reason === 'Unhealthy' && e.message.startsWith('Startup probe failed'),
      );
      // Events of one kind repeat as one event with a count (the killed container's restart).
      const starts = started.reduce((n, e) => n + (e.count ?? 1), 0);
      measured('server containers started, none with a startup-probe failure', String(starts));
      // 2 at apply, 2 in the restart, 2 scaling up, 1 replacing the deleted pod, 1 after the kill.
      expect(starts).toBeGreaterThanOrEqual(8);
      expect(failures.map((e) => `${e.involvedObject.name}: ${e.message}`)).toEqual([]);
    });
  });
}
