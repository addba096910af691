// The CRL on disk (certs/ca.crl, beside the CA): the next one to sign on every
// gen-certs run, and `gen-certs --revoke` adding a certificate to it.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PUBLIC_MODE, type PendingFile } from './atomic-files.js';
import { CaKeyError, certPath, keyPath, loadExistingCa, readIfPresent } from './ca-store.js';
import {
  CrlError,
  checkCrl,
  normaliseSerial,
  parseCrl,
  type CrlInfo,
  type RevokedEntry,
} from '../tls/crl.js';
import type { IssuedCertificate } from './certificates.js';
import { buildCrl } from './crl-build.js';

export const crlPath = (dir: string): string => join(dir, 'ca.crl');

/** The workload certificates whose serials --revoke and --status know by name. */
export const REVOCABLE = {
  'grpc-server': 'server',
  'grpc-client': 'client',
  'grpc-probe': 'probe',
} as const;
export type RevocableName = keyof typeof REVOCABLE;

/** The CRL in `dir`, or null when there is none. An unreadable one is an error, never replaced silently. */
export async function readCrl(dir: string): Promise<CrlInfo | null> {
  const pem = await readIfPresent(crlPath(dir));
  if (pem === null) return null;
  try {
    return parseCrl(pem);
  } catch (err) {
    throw new CaKeyError(
      `${crlPath(dir)}: ${(err as Error).message}: restore it from your backup, or delete it to start an empty CRL (every revocation in it is then lost)`,
    );
  }
}

/**
 * The CRL signed next by `ca`: the entries of the current one when that was
 * signed by the same CA (a new CA starts empty), plus `add`, cRLNumber + 1.
 */
export async function nextCrl(
  dir: string,
  ca: IssuedCertificate,
  days: number,
  now: Date,
  add: RevokedEntry[] = [],
): Promise<{ pem: string; info: CrlInfo }> {
  const current = await readCrl(dir);
  let entries: RevokedEntry[] = [];
  let number = 1n;
  if (current !== null) {
    number = current.number + 1n;
    try {
      checkCrl(current, [new X509Certificate(ca.certPem)], new Date(0));
      entries = current.entries;
    } catch (err) {
      if (!(err instanceof CrlError)) throw err;
    }
  }
  const known = new Set(entries.map((e) => e.serial));
  const all = [...entries, ...add.filter((e) => !known.has(e.serial))];
  const pem = buildCrl({
    caCertPem: ca.certPem,
    caKeyPem: ca.keyPem,
    entries: all,
    number,
    days,
    now,
  });
  return { pem, info: parseCrl(pem) };
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
  throw new CrlError(
    `--revoke ${JSON.stringify(target)}: give a workload (${Object.keys(REVOCABLE).join(', ')}) or a certificate serial in hex`,
  );
}

/** Loads the CA for re-signing the CRL; there must be one. */
export async function requireCa(dir: string, now: Date): Promise<IssuedCertificate> {
  const ca = await loadExistingCa(dir, now);
  if (ca === null) {
    throw new CaKeyError(
      `no CA in ${dir} (${certPath(dir, 'ca')}, ${keyPath(dir, 'ca')}): run gen-certs first`,
    );
  }
  return ca;
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
