// Pods of the test's own, from the project image (it has node), to show which
// connections the NetworkPolicies let through: a listener, and `node -e` to connect or
// resolve from inside any pod. They meet Pod Security `restricted`, like the project's.
import { applyText, kubectl } from './kubectl.js';

export const IMAGE = 'grpc-mtls-service:0.1.0';
export const LISTEN_PORT = 8080;

const IDLE = 'setInterval(() => {}, 1 << 30)';
const LISTEN = `require('net').createServer((s) => s.end('hello\\n')).listen(${LISTEN_PORT})`;

/** A restricted pod running `node -e SCRIPT`. */
export function testPod(name: string, namespace: string, app: string, listen = false): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { app } },
    spec: {
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 1,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 10001,
        runAsGroup: 10001,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: 'node',
          image: IMAGE,
          imagePullPolicy: 'Never',
          command: ['node', '-e', listen ? LISTEN : IDLE],
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
          },
          resources: {
            requests: { cpu: '10m', memory: '32Mi' },
            limits: { cpu: '200m', memory: '96Mi' },
          },
        },
      ],
    },
  });
}

export function createPods(...manifests: string[]): void {
  for (const m of manifests) applyText(m);
}

/** What a TCP connection from inside a pod gets: CONNECTED, ECONNREFUSED (a REJECT), TIMEOUT … */
export function connectFrom(namespace: string, pod: string, host: string, port: number): string {
  const script = `const s = require('net').connect({ host: '${host}', port: ${port}, timeout: 3000 });
s.on('connect', () => { console.log('CONNECTED'); process.exit(0); });
s.on('timeout', () => { console.log('TIMEOUT'); process.exit(0); });
s.on('error', (e) => { console.log(e.code || e.message); process.exit(0); });`;
  const r = kubectl(['exec', '-n', namespace, pod, '--', 'node', '-e', script], {
    timeoutMs: 30_000,
    allowFail: true,
  });
  return r.code === 0 ? r.stdout.trim() : `exec failed: ${r.stderr.trim()}`;
}

/** The addresses a name resolves to inside a pod, or the resolver's error code. */
export function resolveFrom(namespace: string, pod: string, name: string): string {
  const script = `require('dns').promises.lookup('${name}', { all: true }).then(
  (a) => console.log(a.map((x) => x.address).sort().join(',')),
  (e) => console.log(e.code || e.message));`;
  const r = kubectl(['exec', '-n', namespace, pod, '--', 'node', '-e', script], {
    timeoutMs: 30_000,
    allowFail: true,
  });
  return r.code === 0 ? r.stdout.trim() : `exec failed: ${r.stderr.trim()}`;
}
