// The server's metrics port across its NetworkPolicy (grpc-server-metrics): a pod
// in the namespace named "monitoring" scrapes it and reads the client's calls in
// it; a pod of another namespace, and one of the server's own namespace, cannot
// connect to it at all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubectl } from '../helpers/kubectl.js';
import { connectFrom, createPods, testPod } from '../helpers/probe-pods.js';
import { waitFor } from '../helpers/run.js';
import { NS, serverPods } from '../helpers/workload-logs.js';

const MONITORING = 'monitoring';
const ELSEWHERE = 'grpc-mtls-elsewhere';
/** k8s/10-grpc-server.yaml, container port `metrics`. */
const METRICS_PORT = 9464;

/** GET /metrics from inside a pod: the status line and the body, or the connection error. */
function scrapeFrom(namespace: string, pod: string, host: string): string {
  const script = `require('http').get({ host: '${host}', port: ${METRICS_PORT}, path: '/metrics', timeout: 3000 }, (res) => {
  let body = ''; res.on('data', (d) => (body += d)); res.on('end', () => { console.log('HTTP ' + res.statusCode + '\\n' + body); process.exit(0); });
}).on('timeout', () => { console.log('TIMEOUT'); process.exit(0); }).on('error', (e) => { console.log(e.code || e.message); process.exit(0); });`;
  const r = kubectl(['exec', '-n', namespace, pod, '--', 'node', '-e', script], {
    timeoutMs: 30_000,
    allowFail: true,
  });
  return r.code === 0 ? r.stdout : `exec failed: ${r.stderr.trim()}`;
}

const handledOk = (text: string): number =>
  [...text.matchAll(/^grpc_server_handled_total\{([^}]*)\} (\S+)$/gm)]
    .filter(([, labels]) => /grpc_method="Echo"/.test(labels!) && /grpc_code="OK"/.test(labels!))
    .reduce((sum, m) => sum + Number(m[2]), 0);

let serverIp = '';

export function metricsTests(): void {
  describe('the metrics port', () => {
    beforeAll(() => {
      kubectl(['create', 'namespace', MONITORING]);
      kubectl(['create', 'namespace', ELSEWHERE]);
      createPods(
        testPod('scraper', MONITORING, 'scraper'),
        testPod('stranger', ELSEWHERE, 'stranger'),
        testPod('neighbour', NS, 'neighbour'),
      );
      for (const [ns, pod] of [
        [MONITORING, 'scraper'],
        [ELSEWHERE, 'stranger'],
        [NS, 'neighbour'],
      ] as const)
        kubectl(['wait', '--for=condition=Ready', '--timeout=120s', '-n', ns, `pod/${pod}`], {
          timeoutMs: 130_000,
        });
      serverIp = serverPods()[0]!.status.podIP!;
    }, 400_000);
    afterAll(() => {
      kubectl(['delete', 'namespace', MONITORING, ELSEWHERE, '--wait=false'], { allowFail: true });
      kubectl(['delete', 'pod', '-n', NS, 'neighbour', '--grace-period=1'], { allowFail: true });
    });

    it("is scraped from the monitoring namespace, and counts the client's Echo calls", async () => {
      const text = await waitFor(
        `${MONITORING}/scraper to scrape ${serverIp}:${METRICS_PORT}`,
        () => {
          const got = scrapeFrom(MONITORING, 'scraper', serverIp);
          if (got.startsWith('exec failed')) throw new Error(got);
          return got.startsWith('HTTP 200') ? got : undefined;
        },
        30_000,
        1000,
      );
      expect(text).toMatch(/^# TYPE grpc_server_handling_seconds histogram$/m);
      expect(text).toMatch(/^grpc_mtls_certificate_expiration_timestamp_seconds\{role="server"/m);
      expect(handledOk(text)).toBeGreaterThan(0);
    });

    it('is closed to a pod of another namespace and to another pod of its own', async () => {
      for (const [ns, pod] of [
        [ELSEWHERE, 'stranger'],
        [NS, 'neighbour'],
      ] as const) {
        // kube-router answers a blocked connection with a REJECT; give it time to program new pods.
        const got = await waitFor(
          `${ns}/${pod} → ${serverIp}:${METRICS_PORT} to be blocked`,
          () => {
            const r = connectFrom(ns, pod, serverIp, METRICS_PORT);
            if (r.startsWith('exec failed')) throw new Error(r);
            return r === 'CONNECTED' ? undefined : r;
          },
          30_000,
          1000,
        );
        expect(got, `${ns}/${pod}`).toBe('ECONNREFUSED');
      }
    });
  });
}
