// Reading the project's pods' logs on the cluster: the client's one line per call, and
// the reload lines of servers and clients after a certificate rotation.
import { kubectl, pods } from './kubectl.js';

export const NS = 'grpc-mtls';

export interface CallLine {
  time: number;
  status: 'OK' | 'FAILED';
  server?: string;
  code?: number;
  details?: string;
}

interface Line {
  time?: string | number;
  status?: string;
  server?: string;
  event?: string;
  msg?: string;
  code?: number;
  details?: string;
}

function lines(pod: string, namespace = NS): Line[] {
  return kubectl(['logs', '-n', namespace, pod], { timeoutMs: 30_000 })
    .stdout.split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);
}

const timeOf = (l: Line): number =>
  typeof l.time === 'number' ? l.time : Date.parse(l.time ?? '');

/** The client's calls, oldest first. */
export function calls(pod: string): CallLine[] {
  return lines(pod)
    .filter((l) => l.status === 'OK' || l.status === 'FAILED')
    .map((l) => ({
      time: timeOf(l),
      status: l.status as 'OK' | 'FAILED',
      ...(l.server !== undefined ? { server: l.server } : {}),
      ...(l.code !== undefined ? { code: l.code } : {}),
      ...(l.details !== undefined ? { details: l.details } : {}),
    }));
}

export const since = (c: CallLine[], t: number) => c.filter((l) => l.time >= t);
export const failed = (c: CallLine[]) => c.filter((l) => l.status === 'FAILED');
export const answeredBy = (c: CallLine[]) =>
  new Set(c.filter((l) => l.status === 'OK').map((l) => l.server!));

/** Seconds from the first to the last failed call (0 when none or one failed). */
export function failureWindowS(c: CallLine[]): number {
  const f = failed(c);
  return f.length < 2 ? 0 : (f[f.length - 1]!.time - f[0]!.time) / 1000;
}

const RELOADED = 'reloaded TLS credentials; new connections use them';

/** When a pod logged its certificate reload after `t`, or undefined. */
export function reloadedAt(pod: string, t: number): number | undefined {
  const hit = lines(pod).find(
    (l) => (l.msg === RELOADED || l.event === RELOADED) && timeOf(l) >= t,
  );
  return hit ? timeOf(hit) : undefined;
}

export const serverPods = () =>
  pods(NS, 'app=grpc-server').filter((p) => !p.metadata.deletionTimestamp);
export const clientPods = () =>
  pods(NS, 'app=grpc-client').filter((p) => !p.metadata.deletionTimestamp);

/** The one client pod of the Deployment. */
export function clientPod(): string {
  const found = clientPods().filter(
    (p) => p.metadata.name.startsWith('grpc-client-') && p.metadata.labels?.['pod-template-hash'],
  );
  if (found.length !== 1) throw new Error(`expected one grpc-client pod, found ${found.length}`);
  return found[0]!.metadata.name;
}
