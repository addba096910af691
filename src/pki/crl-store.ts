// The CRL on disk (certs/ca.crl, beside the CA): the next one to sign on every
// gen-certs run, and `gen-certs --revoke` adding a certificate to it.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PUBLIC_MODE, type PendingFile } from './atomic-files.js';
import { CaKeyError, certPath, keyPath, loadExistingCa, readIfPresent } from './ca-store.js';
import { crlOf, normaliseSerial, parseCrls, type CrlInfo, type RevokedEntry } from '../tls/crl.js';
import type { IssuedCertificate } from './certificates.js';
import { buildCrl } from './crl-build.js';
import { UsageError } from '../shared/options.js';
import { splitPemCertificates } from '../tls/material.js';

export const crlPath = (dir: string): string => join(dir, 'ca.crl');

/** The workload certificates whose serials --revoke and --status know by name. */
export const REVOCABLE = {
  'grpc-server': 'server',
  'grpc-client': 'client',
  'grpc-probe': 'probe',
} as const;
export type RevocableName = keyof typeof REVOCABLE;

/** The CRLs in `dir` (one per CA; two during a rollover), or [] when there is none. An unreadable one is an error, never replaced silently. */
export async function readCrls(dir: string): Promise<CrlInfo[]> {
  const pem = await readIfPresent(crlPath(dir));
  if (pem === null) return [];
  try {
    return parseCrls(pem);
  } catch (err) {
    throw new CaKeyError(
      `${crlPath(dir)}: ${(err as Error).message}: restore it from your backup, or delete it to start an empty CRL (every revocation in it is then lost)`,
      { cause: err },
    );
  }
}

/**
 * The CRLs signed next, one by each of `cas` (the trust bundle's CAs, in its
 * order), as one PEM file: each keeps the entries of the current CRL signed by
 * the same CA (a new CA starts empty) and adds `add`; cRLNumber + 1 for each.
 * A serial added to every CA's CRL is harmless: serials are random per CA.
 */
export async function nextCrls(
  dir: string,
  cas: IssuedCertificate[],
  days: number,
  now: Date,
  add: RevokedEntry[] = [],
): Promise<{ pem: string; infos: CrlInfo[] }> {
  const current = await readCrls(dir);
  const highest = current.reduce((n, c) => (c.number > n ? c.number : n), 0n);
  const pems = cas.map((ca) => {
    const own = crlOf(current, new X509Certificate(ca.certPem));
    const entries = own?.entries ?? [];
    const known = new Set(entries.map((e) => e.serial));
    return buildCrl({
      caCertPem: ca.certPem,
      caKeyPem: ca.keyPem,
      entries: [...entries, ...add.filter((e) => !known.has(e.serial))],
      // A CA's own CRL counts on; a new CA's first continues the folder's numbering.
      number: (own?.number ?? highest) + 1n,
      days,
      now,
    });
  });
  const pem = pems.join('');
  return { pem, infos: parseCrls(pem) };
}

export function crlFile(dir: string, pem: string): PendingFile {
  return { path: crlPath(dir), contents: pem, mode: PUBLIC_MODE };
}

/** Serial of each workload certificate currently in `dir`, for naming CRL entries. */
export async function workloadSerials(dir: string): Promise<Map<string, RevocableName>> {
  const map = new Map<string, RevocableName>();
  for (const [name, file] of Object.entries(REVOCABLE) as [RevocableName, string][]) {
    const pem = await readIfPresent(join(dir, `${file}.crt`));
    if (pem !== null) map.set(normaliseSerial(new X509Certificate(pem).serialNumber), name);
  }
  return map;
}

/** `--revoke` takes a workload name (grpc-client) or a hex serial (colons allowed). */
export async function resolveRevokeTarget(
  dir: string,
  target: string,
): Promise<{ serial: string; workload: RevocableName | null }> {
  if (target in REVOCABLE) {
    const name = target as RevocableName;
    const file = join(dir, `${REVOCABLE[name]}.crt`);
    const pem = await readIfPresent(file);
    if (pem === null) throw new CaKeyError(`${file} is missing: nothing to revoke for ${name}`);
    return { serial: normaliseSerial(new X509Certificate(pem).serialNumber), workload: name };
  }
  if (/^[0-9a-f]{2}(:?[0-9a-f]{2})*$/i.test(target) || /^[0-9a-f]+$/i.test(target)) {
    const serial = normaliseSerial(target.replaceAll(':', ''));
    return { serial, workload: (await workloadSerials(dir)).get(serial) ?? null };
  }
  throw new UsageError(
    `--revoke ${JSON.stringify(target)}: give a workload (${Object.keys(REVOCABLE).join(', ')}) or a certificate serial in hex`,
  );
}

/**
 * The CAs that sign the folder's CRLs, in the trust bundle's order: the CA, and
 * during a rollover (ca-next.* present, ca.crt holding both) the new one too.
 */
export async function signingCas(dir: string, now: Date): Promise<IssuedCertificate[]> {
  const ca = await loadExistingCa(dir, now);
  if (ca === null) {
    throw new CaKeyError(
      `no CA in ${dir} (${certPath(dir, 'ca')}, ${keyPath(dir, 'ca')}): run gen-certs first`,
    );
  }
  const next = await loadExistingCa(dir, now, 'ca-next');
  return [firstCertificate(ca), ...(next === null ? [] : [firstCertificate(next)])];
}

/** A CA whose certPem is its own certificate only (ca.crt holds the bundle during a rollover). */
export function firstCertificate(ca: IssuedCertificate): IssuedCertificate {
  return { ...ca, certPem: splitPemCertificates(ca.certPem)[0] ?? ca.certPem };
}

/** The leaf files of each workload as on disk, to re-render the Secrets with a new CRL. */
export async function leavesOnDisk(
  dir: string,
): Promise<Record<'server' | 'client' | 'probe', { certPem: string; keyPem: string }>> {
  const read = async (w: 'server' | 'client' | 'probe') => ({
    certPem: await readFile(certPath(dir, w), 'utf8'),
    keyPem: await readFile(keyPath(dir, w), 'utf8'),
  });
  const [server, client, probe] = await Promise.all([
    read('server'),
    read('client'),
    read('probe'),
  ]);
  return { server, client, probe };
}
