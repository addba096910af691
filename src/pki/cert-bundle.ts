// The set of certificates this kit runs on: a CA and one leaf per workload
// (server, client, probe), written under fixed names so that docs, manifests
// and tools can rely on them, plus the Kubernetes Secrets that carry them.
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KEY_MODE, PUBLIC_MODE, writeAllAtomically, type PendingFile } from './atomic-files.js';
import { KitError } from '../shared/errors.js';
import { OUTPUT_UNWRITABLE } from '../shared/exit-codes.js';
import { SECRET_NAMES, renderTlsSecret, secretFileName } from './k8s-secrets.js';
import {
  CaKeyError,
  certPath,
  keyPath,
  loadExistingCa,
  removeRolloverFiles,
  rolloverInProgress,
} from './ca-store.js';
import { DEFAULT_CRL_DAYS, type CrlInfo } from '../tls/crl.js';
import { describeCertificate, type CertificateSummary } from '../tls/material.js';
import { crlFile, firstCertificate, nextCrls } from './crl-store.js';
import {
  DEFAULT_CA_DAYS,
  DEFAULT_LEAF_DAYS,
  createCa,
  issueLeaf,
  spiffeId,
  type IssuedCertificate,
  type KeySize,
  type Usage,
} from './certificates.js';

/** The workloads and the identity each gets: CN = workload, SPIFFE service account = workload. */
export const WORKLOADS = {
  server: { name: 'grpc-server', usage: 'server' },
  client: { name: 'grpc-client', usage: 'client' },
  probe: { name: 'grpc-probe', usage: 'client' },
} as const satisfies Record<string, { name: string; usage: Usage }>;
export type Workload = keyof typeof WORKLOADS;

export interface BundleOptions {
  outDir: string;
  /** Where Secret manifests go; null writes none. */
  k8sDir: string | null;
  namespace: string;
  service: string;
  clusterDomain: string;
  trustDomain: string;
  extraDns: string[];
  extraIps: string[];
  keySize: KeySize;
  days: number;
  caDays: number;
  newCa: boolean;
  /** Days until the CRL's nextUpdate; it is re-signed on every run. */
  crlDays?: number;
  now?: Date;
}

/**
 * The options `npm run gen-certs` uses by default, for a folder of files only
 * (no Secrets): what the demo, the soak, the benchmarks and the tests issue.
 */
export function defaultBundleOptions(
  outDir: string,
  overrides: Partial<BundleOptions> = {},
): BundleOptions {
  return {
    outDir,
    k8sDir: null,
    namespace: 'grpc-mtls',
    service: 'grpc-server',
    clusterDomain: 'cluster.local',
    trustDomain: 'cluster.local',
    extraDns: [],
    extraIps: [],
    keySize: 2048,
    days: DEFAULT_LEAF_DAYS,
    caDays: DEFAULT_CA_DAYS,
    newCa: false,
    ...overrides,
  };
}

export interface WrittenCertificate extends CertificateSummary {
  file: string;
}

export interface BundleResult {
  /** True when an existing CA was kept and only the leaves were re-issued (rotation). */
  caKept: boolean;
  certificates: WrittenCertificate[];
  secrets: string[];
  /** The CRLs signed on this run, one per CA in the trust bundle. */
  crls?: CrlInfo[];
}

/** The output folder cannot be created or written. */
export class OutputError extends KitError {
  override name = 'OutputError';
  readonly exitCode = OUTPUT_UNWRITABLE;
}

/** Every name a client in the cluster may dial, for the Service and its headless twin. */
export function serviceDnsNames(service: string, namespace: string, domain: string): string[] {
  return [service, `${service}-headless`].flatMap((svc) => [
    svc,
    `${svc}.${namespace}`,
    `${svc}.${namespace}.svc`,
    `${svc}.${namespace}.svc.${domain}`,
  ]);
}

export function workloadSpiffeId(opts: BundleOptions, workload: Workload): string {
  return spiffeId(opts.trustDomain, opts.namespace, WORKLOADS[workload].name);
}

function leafSpec(opts: BundleOptions, workload: Workload) {
  const { name, usage } = WORKLOADS[workload];
  const server = workload === 'server';
  return {
    commonName: name,
    usage,
    spiffeId: workloadSpiffeId(opts, workload),
    dnsNames: server
      ? [
          'localhost',
          ...serviceDnsNames(opts.service, opts.namespace, opts.clusterDomain),
          ...opts.extraDns,
        ]
      : [],
    ipAddresses: server ? ['127.0.0.1', '::1', ...opts.extraIps] : [],
    days: opts.days,
  };
}

export function describeCert(file: string, pem: string): WrittenCertificate {
  return { file, ...describeCertificate(new X509Certificate(pem)) };
}

/** Issues the three workload leaves from `signer`, key generation in parallel. */
export async function issueWorkloadLeaves(
  opts: BundleOptions,
  signer: IssuedCertificate,
  now: Date,
): Promise<Record<Workload, IssuedCertificate>> {
  const workloads = Object.keys(WORKLOADS) as Workload[];
  const signing = { cert: signer.cert, privateKey: signer.keys.privateKey };
  const leaves = await Promise.all(
    workloads.map((w) => issueLeaf(signing, leafSpec(opts, w), opts.keySize, now)),
  );
  return Object.fromEntries(workloads.map((w, i) => [w, leaves[i]])) as Record<
    Workload,
    IssuedCertificate
  >;
}

export interface LeafPems {
  certPem: string;
  keyPem: string;
}

/**
 * The files for a set of leaves and the trust bundle every workload gets:
 * leaf certificates and keys in the output folder (when `writeLeaves`), and one
 * Secret per workload. The CA key is not among them, by construction.
 */
export function workloadFiles(
  opts: BundleOptions,
  leaves: Record<Workload, LeafPems>,
  caBundlePem: string,
  writeLeaves: boolean,
  crlPem?: string,
): { files: PendingFile[]; certificates: WrittenCertificate[]; secrets: string[] } {
  const files: PendingFile[] = [];
  const certificates: WrittenCertificate[] = [];
  const secrets: string[] = [];
  for (const w of Object.keys(WORKLOADS) as Workload[]) {
    const leaf = leaves[w];
    if (writeLeaves) {
      files.push({ path: certPath(opts.outDir, w), contents: leaf.certPem, mode: PUBLIC_MODE });
      files.push({ path: keyPath(opts.outDir, w), contents: leaf.keyPem, mode: KEY_MODE });
    }
    certificates.push(describeCert(certPath(opts.outDir, w), leaf.certPem));
    if (opts.k8sDir !== null) {
      const name = SECRET_NAMES[w];
      const path = join(opts.k8sDir, secretFileName(name));
      const yaml = renderTlsSecret({
        name,
        namespace: opts.namespace,
        certPem: leaf.certPem,
        keyPem: leaf.keyPem,
        caPem: caBundlePem,
        ...(crlPem === undefined ? {} : { crlPem }),
      });
      files.push({ path, contents: yaml, mode: KEY_MODE });
      secrets.push(path);
    }
  }
  return { files, certificates, secrets };
}

export async function ensureOutputDirs(opts: BundleOptions): Promise<void> {
  const dirs = opts.k8sDir === null ? [opts.outDir] : [opts.outDir, opts.k8sDir];
  for (const dir of dirs) {
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw new OutputError(`cannot create ${dir}: ${(err as Error).message}`, { cause: err });
    }
  }
}

export async function writeOrFail(files: PendingFile[], outDir: string): Promise<void> {
  try {
    await writeAllAtomically(files);
  } catch (err) {
    throw new OutputError(
      `cannot write ${(err as NodeJS.ErrnoException).path ?? outDir}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Creates or reuses the CA, issues every leaf, and writes all files at once (or none). */
export async function generateBundle(opts: BundleOptions): Promise<BundleResult> {
  const now = opts.now ?? new Date();
  await ensureOutputDirs(opts);
  if (!opts.newCa && (await rolloverInProgress(opts.outDir))) {
    throw new CaKeyError(
      `a CA rollover is in progress in ${opts.outDir} (ca-next.crt exists): run --rotate-ca to finish it, or --new-ca to start over`,
    );
  }
  const existing = opts.newCa ? null : await loadExistingCa(opts.outDir, now);
  const ca =
    existing ??
    (await createCa({
      commonName: 'grpc-mtls-service CA',
      days: opts.caDays,
      keySize: opts.keySize,
      now,
    }));
  const leaves = await issueWorkloadLeaves(opts, ca, now);
  const bundlePem =
    existing === null ? ca.certPem : await readFile(certPath(opts.outDir, 'ca'), 'utf8');
  const crl = await nextCrls(
    opts.outDir,
    [firstCertificate(ca)],
    opts.crlDays ?? DEFAULT_CRL_DAYS,
    now,
  );
  const { files, certificates, secrets } = workloadFiles(opts, leaves, bundlePem, true, crl.pem);
  files.push(crlFile(opts.outDir, crl.pem));
  if (existing === null) {
    files.push({ path: certPath(opts.outDir, 'ca'), contents: ca.certPem, mode: PUBLIC_MODE });
    files.push({ path: keyPath(opts.outDir, 'ca'), contents: ca.keyPem, mode: KEY_MODE });
  }
  await writeOrFail(files, opts.outDir);
  if (existing === null) await removeRolloverFiles(opts.outDir);
  return {
    caKept: existing !== null,
    certificates: [describeCert(certPath(opts.outDir, 'ca'), ca.certPem), ...certificates],
    secrets,
    crls: crl.infos,
  };
}
