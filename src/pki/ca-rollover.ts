// CA rollover without downtime, one `gen-certs --rotate-ca` per step:
//   1. trust:  a new CA is created and added to the trust bundle (ca.crt holds both);
//   2. issue:  every leaf is re-issued from the new CA (the bundle still trusts both);
//   3. retire: the old CA leaves the bundle; ca.crt and ca.key become the new CA.
// Between steps, the new files are deployed and every workload reloads them
// (servers and clients follow their files), so no connection ever meets a peer
// it does not trust. Every step also re-signs ca.crl with one CRL per CA in
// the bundle it writes (the old CA's keeps its revocations; the new CA's starts
// empty), since a peer checking CRLs refuses a certificate whose CA has none.
// The state lives in the files: `ca-next.*` exist from step
// 1 to step 3, and whom server.crt chains to tells step 2 from step 3.
import { X509Certificate, randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { CaKeyError, certPath, keyPath, loadExistingCa } from './ca-store.js';
import {
  WORKLOADS,
  describeCert,
  ensureOutputDirs,
  issueWorkloadLeaves,
  workloadFiles,
  writeOrFail,
  type BundleOptions,
  type BundleResult,
  type LeafPems,
  type Workload,
} from './cert-bundle.js';
import { KEY_MODE, PUBLIC_MODE } from './atomic-files.js';
import { createCa, type IssuedCertificate } from './certificates.js';
import { DEFAULT_CRL_DAYS } from '../tls/crl.js';
import { crlFile, firstCertificate, nextCrls } from './crl-store.js';

export interface RolloverResult extends BundleResult {
  step: 1 | 2 | 3;
  /** What the operator does next, in one sentence. */
  next: string;
}

async function currentLeaves(dir: string): Promise<Record<Workload, LeafPems>> {
  const entries = await Promise.all(
    (Object.keys(WORKLOADS) as Workload[]).map(async (w) => {
      try {
        const [certPem, keyPem] = await Promise.all([
          readFile(certPath(dir, w), 'utf8'),
          readFile(keyPath(dir, w), 'utf8'),
        ]);
        return [w, { certPem, keyPem }] as const;
      } catch (err) {
        throw new CaKeyError(
          `cannot read the current ${w} certificate for the rollover: ${(err as Error).message}; run gen-certs first`,
          { cause: err },
        );
      }
    }),
  );
  return Object.fromEntries(entries) as Record<Workload, LeafPems>;
}

/** The CRLs of `cas` (the bundle's CAs), as the file beside the CA. */
async function signCrls(opts: BundleOptions, cas: IssuedCertificate[], now: Date) {
  const crl = await nextCrls(opts.outDir, cas, opts.crlDays ?? DEFAULT_CRL_DAYS, now);
  return { ...crl, file: crlFile(opts.outDir, crl.pem) };
}

export async function rotateCa(opts: BundleOptions): Promise<RolloverResult> {
  const now = opts.now ?? new Date();
  await ensureOutputDirs(opts);
  const old = await loadExistingCa(opts.outDir, now, 'ca');
  if (old === null) throw new CaKeyError(`no CA in ${opts.outDir} to rotate: run gen-certs first`);
  const next = await loadExistingCa(opts.outDir, now, 'ca-next');
  const leaves = await currentLeaves(opts.outDir);

  if (next === null) {
    const fresh = await createCa({
      // A distinct name, so the two CAs in the bundle never share a subject.
      commonName: `grpc-mtls-service CA ${now.toISOString().slice(0, 10)} ${randomBytes(3).toString('hex')}`,
      days: opts.caDays,
      keySize: opts.keySize,
      now,
    });
    const bundle = old.certPem.trimEnd() + '\n' + fresh.certPem;
    const crl = await signCrls(opts, [firstCertificate(old), fresh], now);
    const out = workloadFiles(opts, leaves, bundle, false, crl.pem);
    out.files.push(
      crl.file,
      { path: certPath(opts.outDir, 'ca'), contents: bundle, mode: PUBLIC_MODE },
      { path: certPath(opts.outDir, 'ca-next'), contents: fresh.certPem, mode: PUBLIC_MODE },
      { path: keyPath(opts.outDir, 'ca-next'), contents: fresh.keyPem, mode: KEY_MODE },
    );
    await writeOrFail(out.files, opts.outDir);
    return {
      step: 1,
      next: 'deploy the new trust bundle to every workload (re-apply the Secrets), wait until all have reloaded it, then run --rotate-ca again',
      caKept: true,
      certificates: [
        describeCert(certPath(opts.outDir, 'ca-next'), fresh.certPem),
        ...out.certificates,
      ],
      secrets: out.secrets,
      crls: crl.infos,
    };
  }

  const bundle = await readFile(certPath(opts.outDir, 'ca'), 'utf8');
  const serverFromNext = new X509Certificate(leaves.server.certPem).verify(
    new X509Certificate(next.certPem).publicKey,
  );
  if (!serverFromNext) {
    const issued = await issueWorkloadLeaves(opts, next, now);
    const crl = await signCrls(opts, [firstCertificate(old), next], now);
    const out = workloadFiles(opts, issued, bundle, true, crl.pem);
    await writeOrFail([...out.files, crl.file], opts.outDir);
    return {
      step: 2,
      next: 'deploy the new certificates (re-apply the Secrets), wait until every workload has reloaded them, then run --rotate-ca again to retire the old CA',
      caKept: true,
      certificates: out.certificates,
      secrets: out.secrets,
      crls: crl.infos,
    };
  }

  // The old CA's CRL goes with it: nothing it issued is trusted any more.
  const crl = await signCrls(opts, [next], now);
  const out = workloadFiles(opts, leaves, next.certPem, false, crl.pem);
  out.files.push(
    crl.file,
    { path: certPath(opts.outDir, 'ca'), contents: next.certPem, mode: PUBLIC_MODE },
    { path: keyPath(opts.outDir, 'ca'), contents: next.keyPem, mode: KEY_MODE },
  );
  await writeOrFail(out.files, opts.outDir);
  await Promise.all([rm(certPath(opts.outDir, 'ca-next')), rm(keyPath(opts.outDir, 'ca-next'))]);
  return {
    step: 3,
    next: 'deploy the bundle without the old CA (re-apply the Secrets); the rollover is complete',
    caKept: false,
    certificates: [describeCert(certPath(opts.outDir, 'ca'), next.certPem), ...out.certificates],
    secrets: out.secrets,
    crls: crl.infos,
  };
}
