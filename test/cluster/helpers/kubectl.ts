// kubectl against the test cluster, as its administrator.
import { BIN, bin, paths } from './layout.js';
import { run, runAsync, type RunOptions, type RunResult } from './run.js';

/** The environment of a user at the cluster: kubectl on PATH, its kubeconfig chosen. */
export function userEnv(): Record<string, string> {
  return { PATH: `${BIN}:${process.env.PATH ?? ''}`, KUBECONFIG: paths.admin };
}

export function kubectl(args: string[], opts: RunOptions = {}): RunResult {
  return run(bin('kubectl'), ['--kubeconfig', paths.admin, ...args], opts);
}

export function kubectlAsync(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runAsync(bin('kubectl'), ['--kubeconfig', paths.admin, ...args], opts);
}

/** `kubectl get -o json`, parsed. */
export function getJson<T = unknown>(args: string[]): T {
  return JSON.parse(kubectl(['get', ...args, '-o', 'json']).stdout) as T;
}

/** Applies a manifest given as text. */
export function applyText(yaml: string): void {
  kubectl(['apply', '-f', '-'], { input: yaml });
}

export interface Pod {
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    creationTimestamp: string;
    deletionTimestamp?: string;
  };
  spec: { nodeName?: string };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string; lastTransitionTime?: string }[];
    containerStatuses?: {
      name: string;
      ready: boolean;
      restartCount: number;
      containerID?: string;
      state?: Record<string, unknown>;
    }[];
  };
}

export function pods(namespace: string, selector?: string): Pod[] {
  const args = ['pods', '-n', namespace, ...(selector ? ['-l', selector] : [])];
  return getJson<{ items: Pod[] }>(args).items;
}

export const isReady = (p: Pod): boolean =>
  !p.metadata.deletionTimestamp &&
  (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

export interface KubeEvent {
  reason: string;
  message: string;
  type: string;
  involvedObject: { kind: string; name: string };
  count?: number;
}

export function events(namespace: string): KubeEvent[] {
  return getJson<{ items: KubeEvent[] }>(['events', '-n', namespace]).items;
}
