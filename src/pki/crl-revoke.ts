// `gen-certs --revoke <workload or serial>`: adds a certificate to the CA's CRL
// and writes the re-signed CRL beside the CA and into every Secret, all at once
// (during a CA rollover, the CRL of each CA in the bundle).
// Nothing else changes: a revoked workload works again once gen-certs re-issues
// its leaf, which gets a new serial.
import { ensureOutputDirs, workloadFiles, writeOrFail, type BundleOptions } from './cert-bundle.js';
import { DEFAULT_CRL_DAYS, type CrlInfo } from '../tls/crl.js';
import {
  crlFile,
  leavesOnDisk,
  nextCrls,
  readCrls,
  signingCas,
  resolveRevokeTarget,
  type RevocableName,
} from './crl-store.js';
import { readIfPresent, certPath } from './ca-store.js';

export interface RevokeResult {
  serial: string;
  workload: RevocableName | null;
  alreadyRevoked: boolean;
  /** One CRL per CA of the bundle (two during a rollover). */
  crls: CrlInfo[];
  secrets: string[];
}

export async function revoke(opts: BundleOptions, target: string): Promise<RevokeResult> {
  const now = opts.now ?? new Date();
  const { serial, workload } = await resolveRevokeTarget(opts.outDir, target);
  const cas = await signingCas(opts.outDir, now);
  const current = await readCrls(opts.outDir);
  const alreadyRevoked = current.some((c) => c.entries.some((e) => e.serial === serial));
  // Into the CRL of every CA in the bundle: a serial alone does not say which CA issued it.
  const crl = await nextCrls(opts.outDir, cas, opts.crlDays ?? DEFAULT_CRL_DAYS, now, [
    { serial, revokedAt: now },
  ]);
  const files = [crlFile(opts.outDir, crl.pem)];
  let secrets: string[] = [];
  if (opts.k8sDir !== null) {
    await ensureOutputDirs(opts);
    // The trust bundle as the workloads have it (two CAs during a rollover).
    const bundle = (await readIfPresent(certPath(opts.outDir, 'ca'))) ?? cas[0]?.certPem ?? '';
    const out = workloadFiles(opts, await leavesOnDisk(opts.outDir), bundle, false, crl.pem);
    files.push(...out.files);
    secrets = out.secrets;
  }
  await writeOrFail(files, opts.outDir);
  return { serial, workload, alreadyRevoked, crls: crl.infos, secrets };
}
