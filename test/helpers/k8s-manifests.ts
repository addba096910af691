// The Kubernetes manifests in k8s/, read the way kubectl reads them, plus the
// Secrets gen-certs writes, generated fresh into a temporary folder.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { INamespace } from 'kubernetes-models/v1/Namespace';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { ISecret } from 'kubernetes-models/v1/Secret';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { parseAllDocuments } from 'yaml';
import { generateBundle } from '../../src/pki/cert-bundle.js';
import { PROJECT_ROOT } from '../../src/shared/proto.js';
import { bundleOptions } from './pki.js';

export const K8S_DIR = join(PROJECT_ROOT, 'k8s');
export const NAMESPACE = 'grpc-mtls';

export type { IContainer, IPodTemplateSpec };

/** Any Kubernetes object, before its schema is checked. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

export interface Manifest {
  /** `file#n`, n counting the file's YAML documents from 1. */
  source: string;
  object: KubeObject;
}

/**
 * Parses a multi-document YAML file as kubectl does: YAML 1.1 (so `0440` is octal
 * and `on` is a boolean, exactly as the API server will see them), and a duplicate
 * key is an error. Empty documents are skipped, as kubectl skips them.
 */
export function parseManifests(text: string, file: string): Manifest[] {
  const out: Manifest[] = [];
  parseAllDocuments(text, { version: '1.1', uniqueKeys: true }).forEach((doc, i) => {
    const source = `${file}#${i + 1}`;
    if ('errors' in doc && doc.errors.length > 0) {
      throw new Error(`${source}: ${doc.errors.map((e) => e.message).join('; ')}`);
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    const o = value as Partial<KubeObject>;
    if (typeof o !== 'object' || typeof o.apiVersion !== 'string' || typeof o.kind !== 'string') {
      throw new Error(`${source}: not a Kubernetes object (apiVersion and kind are required)`);
    }
    if (typeof o.metadata?.name !== 'string') throw new Error(`${source}: metadata.name missing`);
    out.push({ source, object: o as KubeObject });
  });
  return out;
}

/** Every `.yaml`/`.yml` file of a folder, in the order `kubectl apply -f DIR` applies them. */
export function loadManifestDir(dir: string, keep: (file: string) => boolean = () => true) {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f) && keep(f))
    .sort()
    .flatMap((f) => parseManifests(readFileSync(join(dir, f), 'utf8'), `${dir}/${f}`));
}

/** The committed manifests: k8s/*.yaml except the generated (git-ignored) Secrets. */
export function projectManifests(): Manifest[] {
  return loadManifestDir(K8S_DIR, (f) => !f.startsWith('secret-'));
}

/** Runs gen-certs' library with its defaults into `dir` (certs in dir/pki, Secrets in dir/k8s). */
export async function generateSecrets(dir: string): Promise<{ pki: string; secrets: Manifest[] }> {
  const pki = join(dir, 'pki');
  const k8sDir = join(dir, 'k8s');
  await generateBundle(bundleOptions(pki, { k8sDir }));
  return { pki, secrets: loadManifestDir(k8sDir) };
}

const ofKind =
  <T>(kind: string) =>
  (ms: Manifest[]): T[] =>
    ms.filter((m) => m.object.kind === kind).map((m) => m.object as unknown as T);

export const namespaces = ofKind<INamespace>('Namespace');
export const serviceAccounts = ofKind<IServiceAccount>('ServiceAccount');
export const deployments = ofKind<IDeployment>('Deployment');
export const services = ofKind<IService>('Service');
export const secrets = ofKind<ISecret>('Secret');
export const configMaps = ofKind<IConfigMap>('ConfigMap');
export const networkPolicies = ofKind<INetworkPolicy>('NetworkPolicy');
export const disruptionBudgets = ofKind<IPodDisruptionBudget>('PodDisruptionBudget');

export function byName<T extends { metadata?: { name?: string } }>(list: T[], name: string): T {
  const found = list.find((o) => o.metadata?.name === name);
  if (!found) throw new Error(`no object named ${name}`);
  return found;
}

/** Each workload's pod template (only Deployments here), named by the workload. */
export function podTemplates(ms: Manifest[]): { name: string; template: IPodTemplateSpec }[] {
  return deployments(ms).map((d) => ({
    name: d.metadata?.name ?? '?',
    template: d.spec!.template,
  }));
}

export function allContainers(t: IPodTemplateSpec): IContainer[] {
  const s = t.spec;
  return [
    ...(s?.initContainers ?? []),
    ...(s?.containers ?? []),
    ...((s?.ephemeralContainers ?? []) as IContainer[]),
  ];
}

/** The literal value of an environment variable (undefined when unset or taken from a source). */
export function envValue(c: IContainer, name: string): string | undefined {
  return c.env?.find((e) => e.name === name)?.value;
}

/** The value of `-flag=value` or `-flag value` (Go flag syntax) in a command line. */
export function flagValue(command: string[], flag: string): string | undefined {
  for (let i = 0; i < command.length; i++) {
    const arg = command[i]!.replace(/^--/, '-');
    if (arg === `-${flag}`) return command[i + 1];
    if (arg.startsWith(`-${flag}=`)) return arg.slice(flag.length + 2);
  }
  return undefined;
}

/** `host:port` split, IPv6 brackets removed. */
export function splitHostPort(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  if (!m) throw new Error(`not HOST:PORT: ${address}`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** The files a Secret volume shows: key -> decoded bytes. */
export function secretFiles(secret: ISecret): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(secret.data ?? {})) files.set(k, Buffer.from(v, 'base64'));
  for (const [k, v] of Object.entries(secret.stringData ?? {})) files.set(k, Buffer.from(v));
  return files;
}

/** A file of the repository, as text (Dockerfile, .dockerignore, docs). */
export function readProjectFile(path: string): string {
  return readFileSync(join(PROJECT_ROOT, path), 'utf8');
}
