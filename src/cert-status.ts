// `gen-certs --status`: every certificate in the folder with its subject, SANs,
// issuer and days left, so an operator sees what expires before it does.
import { X509Certificate } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { daysLeft, splitPemCertificates } from './tls-material.js';

export interface CertificateStatus {
  file: string;
  subject: string;
  issuer: string;
  sans: string;
  notAfter: Date;
  daysLeft: number;
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
        subject: cert.subject.replaceAll('\n', ', '),
        issuer: cert.issuer.replaceAll('\n', ', '),
        sans: cert.subjectAltName ?? '',
        notAfter: new Date(cert.validTo),
        daysLeft: Math.floor(left),
        state: left <= 0 ? 'expired' : left <= warnDays ? 'expiring' : 'ok',
      });
    }
  }
  return rows;
}
