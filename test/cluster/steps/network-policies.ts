// The four NetworkPolicies, enforced by kube-router: what they allow gets through, and
// what they block is shown blocked while an allowed peer shows the target listening.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubectl, pods } from '../helpers/kubectl.js';
import {
  LISTEN_PORT,
  connectFrom,
  createPods,
  resolveFrom,
  testPod,
} from '../helpers/probe-pods.js';
import { waitFor } from '../helpers/run.js';
import { NS, clientPod, serverPods } from '../helpers/workload-logs.js';

const OUTSIDE = 'grpc-mtls-outside';
const HEADLESS = 'grpc-server-headless.grpc-mtls.svc.cluster.local';
/** The client's Secret volume (k8s/20-grpc-client.yaml). */
const TLS = '/var/run/secrets/grpc-mtls/tls';

/** Polls until a connection gives `want` (the enforcer programs a new pod within seconds). */
const expectConnect = (
  ns: string,
  pod: string,
  host: string,
  port: number,
  want: 'open' | 'blocked',
) =>
  waitFor(
    `${ns}/${pod} → ${host}:${port} to be ${want}`,
    () => {
      const got = connectFrom(ns, pod, host, port);
      if (got.startsWith('exec failed')) throw new Error(got);
      return (got === 'CONNECTED') === (want === 'open') ? got : undefined;
    },
    30_000,
    1000,
  );

let serverIp = '';
let listenerIp = '';

export function networkPolicyTests(): void {
  describe('the NetworkPolicies', () => {
    beforeAll(() => {
      kubectl(['create', 'namespace', OUTSIDE]);
      createPods(
        testPod('intruder', NS, 'intruder'),
        testPod('outsider', OUTSIDE, 'outsider'),
        testPod('listener', OUTSIDE, 'listener', true),
      );
      kubectl(['wait', '--for=condition=Ready', '--timeout=120s', '-n', NS, 'pod/intruder'], {
        timeoutMs: 130_000,
      });
      kubectl(
        [
          'wait',
          '--for=condition=Ready',
          '--timeout=120s',
          '-n',
          OUTSIDE,
          'pod/outsider',
          'pod/listener',
        ],
        {
          timeoutMs: 130_000,
        },
      );
      serverIp = serverPods()[0]!.status.podIP!;
      listenerIp = pods(OUTSIDE, 'app=listener')[0]!.status.podIP!;
    }, 300_000);
    afterAll(() => {
      kubectl(['delete', 'namespace', OUTSIDE, '--wait=false'], { allowFail: true });
      kubectl(['delete', 'pod', '-n', NS, 'intruder', '--grace-period=1'], { allowFail: true });
    });

    it('lets the client reach a server on 50051 (so the server is listening)', async () => {
      expect(await expectConnect(NS, clientPod(), serverIp, 50051, 'open')).toBe('CONNECTED');
    });

    it('still refuses, where the policies let a connection through, a caller without a client certificate', () => {
      const probe = (withCert: boolean) =>
        kubectl(
          [
            ...['exec', '-n', NS, clientPod(), '--', '/usr/local/bin/grpc_health_probe'],
            ...[`-addr=${serverIp}:50051`, '-tls', `-tls-ca-cert=${TLS}/ca.crt`],
            ...(withCert
              ? [`-tls-client-cert=${TLS}/tls.crt`, `-tls-client-key=${TLS}/tls.key`]
              : []),
            ...[`-tls-server-name=${HEADLESS}`, '-connect-timeout=2s', '-rpc-timeout=2s'],
          ],
          { allowFail: true },
        );
      // grpc_health_probe prints its verdict on standard error.
      const allowed = probe(true);
      expect(allowed.stderr).toMatch(/status: SERVING/);
      expect(allowed.code).toBe(0);
      const refused = probe(false);
      expect(refused.stderr).not.toMatch(/status: SERVING/);
      // Exit 2: the connection failed (the server closed it for want of a certificate).
      expect(refused.code).toBe(2);
    });

    it('lets the client resolve the headless Service through CoreDNS', () => {
      const ips = serverPods()
        .map((p) => p.status.podIP!)
        .sort()
        .join(',');
      expect(resolveFrom(NS, clientPod(), HEADLESS)).toBe(ips);
    });

    it('blocks another pod of the namespace from the server', async () => {
      // kube-router answers a blocked connection with a REJECT.
      expect(await expectConnect(NS, 'intruder', serverIp, 50051, 'blocked')).toBe('ECONNREFUSED');
    });

    it('blocks a pod of another namespace from the server', async () => {
      expect(await expectConnect(OUTSIDE, 'outsider', serverIp, 50051, 'blocked')).toBe(
        'ECONNREFUSED',
      );
    });

    it("blocks the server's egress, to a listener another pod reaches", async () => {
      expect(await expectConnect(OUTSIDE, 'outsider', listenerIp, LISTEN_PORT, 'open')).toBe(
        'CONNECTED',
      );
      const server = serverPods()[0]!.metadata.name;
      expect(await expectConnect(NS, server, listenerIp, LISTEN_PORT, 'blocked')).toBe(
        'ECONNREFUSED',
      );
    });

    it("blocks the client's egress anywhere but the servers and DNS", async () => {
      expect(await expectConnect(NS, clientPod(), listenerIp, LISTEN_PORT, 'blocked')).toBe(
        'ECONNREFUSED',
      );
    });
  });
}
