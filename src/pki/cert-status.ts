// `gen-certs --status`: every certificate in the folder with its subject, SANs,
// issuer and days left, so an operator sees what expires before it does; and
// the CRL: what it revokes and when its nextUpdate passes.
import { X509Certificate } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CRL_WARN_DAYS, crlDaysLeft, crlOf } from '../tls/crl.js';
import { readIfPresent } from './ca-store.js';
import { crlPath, readCrls, workloadSerials } from './crl-store.js';
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
  /** The CA that signed it, by subject (several CRLs during a rollover). */
  issuer: string;
  number: bigint;
  nextUpdate: Date;
  daysLeft: number;
  /** `invalid`: not signed by a CA in the folder's ca.crt. */
  state: 'ok' | 'expiring' | 'expired' | 'invalid';
  revoked: { serial: string; workload: string | null; revokedAt: Date }[];
}

/**
 * The CRLs beside the CA (one per CA in ca.crt; none when there is no file):
 * what each revokes and when it must be re-signed; plus the CAs of ca.crt
 * that have no CRL, which peers checking CRLs would refuse.
 */
export async function crlStatus(
  dir: string,
  now: Date = new Date(),
): Promise<{ crls: CrlStatus[]; casWithout: string[] } | null> {
  const crls = await readCrls(dir);
  if (crls.length === 0) return null;
  const names = await workloadSerials(dir);
  const caPem = (await readIfPresent(join(dir, 'ca.crt'))) ?? '';
  const cas = splitPemCertificates(caPem).map((p) => new X509Certificate(p));
  const rows = crls.map((crl): CrlStatus => {
    const signer = cas.find((ca) => crlOf([crl], ca) !== undefined);
    const left = crlDaysLeft(crl, now);
    return {
      file: crlPath(dir),
      issuer: signer === undefined ? '-' : subjectOf(signer),
      number: crl.number,
      nextUpdate: crl.nextUpdate,
      daysLeft: Math.floor(left),
      state:
        signer === undefined
          ? 'invalid'
          : left <= 0
            ? 'expired'
            : left <= CRL_WARN_DAYS
              ? 'expiring'
              : 'ok',
      revoked: crl.entries.map((e) => ({ ...e, workload: names.get(e.serial) ?? null })),
    };
  });
  const casWithout = cas.filter((ca) => crlOf(crls, ca) === undefined).map(subjectOf);
  return { crls: rows, casWithout };
}

const subjectOf = (c: X509Certificate): string => c.subject.replaceAll('\n', ', ');
