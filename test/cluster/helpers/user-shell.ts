// The user's side of the test: a shell in a work folder with kubectl on PATH, the
// docs' own commands, and gen-certs writing into the work folder, not the checkout.
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pods, userEnv } from './kubectl.js';
import { progress, run, waitFor } from './run.js';
import { NS, clientPod, reloadedAt, serverPods } from './workload-logs.js';

export const repo = resolve(fileURLToPath(import.meta.url), '../../../..');

let work = '';

/** A copy of k8s/ without any Secret of the checkout: gen-certs writes the test's own. */
export function makeWorkFolder(): string {
  work = mkdtempSync(join(tmpdir(), 'grpc-mtls-deploy-'));
  cpSync(join(repo, 'k8s'), join(work, 'k8s'), {
    recursive: true,
    filter: (src) => !/secret-.*\.yaml$/.test(src),
  });
  return work;
}

export function removeWorkFolder(): void {
  if (work) rmSync(work, { recursive: true, force: true });
}

/** A command as a user types it, in the work folder (which holds `k8s/`). */
export const sh = (command: string, timeoutMs = 60_000) =>
  run('sh', ['-c', command], { cwd: work, env: userEnv(), timeoutMs });

/** `npm run gen-certs` with its output in the work folder. */
export const genCerts = (extra = '') =>
  sh(`cd ${repo} && npm run -s gen-certs -- --out ${work}/certs --k8s-dir ${work}/k8s ${extra}`);

/** The rotation step of docs/kubernetes.md. */
export const applySecrets =
  'kubectl apply -f k8s/secret-grpc-server-tls.yaml -f k8s/secret-grpc-client-tls.yaml -f k8s/secret-grpc-probe-tls.yaml';

/** The command of docs/kubernetes.md (the walk-through) starting with `start`, with its `\` continuations. */
export function readmeCommand(start: string): string {
  const lines = readFileSync(join(repo, 'docs/kubernetes.md'), 'utf8').split('\n');
  const first = lines.findIndex((l) => l.startsWith(start));
  if (first < 0) throw new Error(`docs/kubernetes.md has no line starting with ${start}`);
  const cmd: string[] = [];
  for (const l of lines.slice(first)) {
    cmd.push(l);
    if (!l.trimEnd().endsWith('\\')) break;
  }
  return cmd.join('\n');
}

export const measured = (what: string, value: string) => progress(`measured: ${what}: ${value}`);
export const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until every server and the client logged a reload after `t`; returns the slowest pick-up in ms. */
export async function waitForReloads(t: number, what: string): Promise<number> {
  const names = [...serverPods().map((p) => p.metadata.name), clientPod()];
  let slowest = 0;
  for (const pod of names) {
    const at = await waitFor(
      `${pod} to log the reload (${what})`,
      () => reloadedAt(pod, t),
      180_000,
      2000,
    );
    slowest = Math.max(slowest, at - t);
  }
  return slowest;
}

/** Every container's restart count in the namespace. */
export const restarts = () =>
  pods(NS).flatMap((p) => (p.status.containerStatuses ?? []).map((c) => c.restartCount));
