// `gen-certs --status`: every certificate in the folder with its subject, SANs,
// issuer and days left, so an operator sees what expires before it does; and
// the CRL: what it revokes and when its nextUpdate passes.
import { X509Certificate } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CRL_WARN_DAYS, CrlError, checkCrl, crlDaysLeft } from '../tls/crl.js';
import { crlPath, readCrl, workloadSerials } from './crl-store.js';
import {
  daysLeft,
  describeCertificate,
  splitPemCertificates,
  type CertificateSummary,
} from '../tls/material.js';

export interface CertificateStatus extends CertificateSummary {
  file: string;
  state: 'ok' | 'expiring' | 'expired';
}

/** Reads every `*.crt` in `dir`; a bundle (ca.crt during a rollover) lists each of its certificates. */
export async function certificateStatus(
  dir: string,
  warnDays: number,
  now: Date = new Date(),
): Promise<CertificateStatus[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.crt')).sort();
  const rows: CertificateStatus[] = [];
  for (const name of names) {
    const pem = await readFile(join(dir, name), 'utf8');
    for (const block of splitPemCertificates(pem)) {
      const cert = new X509Certificate(block);
      const left = daysLeft(cert, now);
      rows.push({
        file: join(dir, name),
        ...describeCertificate(cert, now),
        state: left <= 0 ? 'expired' : left <= warnDays ? 'expiring' : 'ok',
      });
    }
  }
  return rows;
}

export interface CrlStatus {
  file: string;
  number: bigint;
  nextUpdate: Date;
  daysLeft: number;
  /** `invalid`: not signed by the CA in the folder. */
  state: 'ok' | 'expiring' | 'expired' | 'invalid';
  revoked: { serial: string; workload: string | null; revokedAt: Date }[];
}

/** The CRL beside the CA (null when there is none): what it revokes and when it must be re-signed. */
export async function crlStatus(dir: string, now: Date = new Date()): Promise<CrlStatus | null> {
  const crl = await readCrl(dir);
  if (crl === null) return null;
  const names = await workloadSerials(dir);
  let state: CrlStatus['state'];
  try {
    const caPem = await readFile(join(dir, 'ca.crt'), 'utf8');
    checkCrl(
      crl,
      splitPemCertificates(caPem).map((p) => new X509Certificate(p)),
      new Date(0),
    );
    const left = crlDaysLeft(crl, now);
    state = left <= 0 ? 'expired' : left <= CRL_WARN_DAYS ? 'expiring' : 'ok';
  } catch (err) {
    if (!(err instanceof CrlError)) throw err;
    state = 'invalid';
  }
  return {
    file: crlPath(dir),
    number: crl.number,
    nextUpdate: crl.nextUpdate,
    daysLeft: Math.floor(crlDaysLeft(crl, now)),
    state,
    revoked: crl.entries.map((e) => ({ ...e, workload: names.get(e.serial) ?? null })),
  };
}
