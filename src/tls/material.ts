// Loading and checking TLS material (certificate, key, CA bundle) before it is
// used: at start-up, and again for every rotation, so that a bad update is
// refused rather than served.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { KitError } from '../shared/errors.js';
import * as exit from '../shared/exit-codes.js';
import { certificateProblem } from './cert-policy.js';
import { CrlError, checkCrlBundle, parseCrls, type CrlInfo } from './crl.js';

export const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
/** Warn this long before expiry: a week leaves time to rotate by hand if automation failed. */
export const EXPIRY_WARNING_DAYS = 7;
const DAY_MS = 86_400_000;

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
  /**
   * CRLs (PEM), one per CA in the bundle (two during a CA rollover); undefined
   * or '' checks no revocation, as before CRLs existed.
   */
  crlFile?: string | undefined;
  /** Names the settings in messages, e.g. `TLS_CERT_FILE`. */
  labels?: { cert: string; key: string; ca: string; crl?: string };
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
  leaf: X509Certificate;
  cas: X509Certificate[];
  /** The CRL file as read, when one is configured, and what each of its CRLs says. */
  crl?: Buffer;
  crls?: CrlInfo[];
}

/** A file is missing or unreadable. */
export class TlsFileError extends KitError {
  override name = 'TlsFileError';
  readonly exitCode = exit.FILE_UNREADABLE;
}
/** The material was read but cannot be used. */
export class TlsInvalidError extends KitError {
  override name = 'TlsInvalidError';
  readonly exitCode = exit.TLS_INVALID;
}

const DEFAULT_LABELS = {
  cert: 'TLS_CERT_FILE',
  key: 'TLS_KEY_FILE',
  ca: 'TLS_CA_FILE',
  crl: 'TLS_CRL_FILE',
};

async function readInput(label: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist; run `npm run gen-certs` or point the setting at your file'
        : code === 'EACCES'
          ? 'is not readable by this user; fix its owner or mode'
          : (err as Error).message;
    throw new TlsFileError(`${label} (${path}) ${why}`, { cause: err });
  }
}

/** Every certificate in a PEM bundle; a bundle may hold several CAs during a rollover. */
export function splitPemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function parseBundle(label: string, path: string, pem: Buffer): X509Certificate[] {
  const blocks = splitPemCertificates(pem.toString('utf8'));
  if (blocks.length === 0) throw new TlsInvalidError(`${label} (${path}) holds no PEM certificate`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new TlsInvalidError(
        `${label} (${path}) certificate #${i + 1} cannot be parsed: ${(err as Error).message}`,
        { cause: err },
      );
    }
  });
}

/** True when `cert` is signed by one of `cas` (signature and issuer name both checked). */
export function chainsTo(cert: X509Certificate, cas: X509Certificate[]): boolean {
  return cas.some((ca) => ca.ca && cert.checkIssued(ca) && cert.verify(ca.publicKey));
}

export function daysLeft(cert: X509Certificate, now: Date = new Date()): number {
  return (new Date(cert.validTo).getTime() - now.getTime()) / DAY_MS;
}

/**
 * Whether `key` (PEM) is the private key of `cert`: null when it is, else
 * `{ unreadable }` with the parser's reason, or `{}` for a readable key of
 * another certificate. Callers name their own files in the message.
 */
export function keyMismatch(
  cert: X509Certificate,
  key: string | Buffer,
): { unreadable?: string } | null {
  try {
    return cert.checkPrivateKey(createPrivateKey(key)) ? null : {};
  } catch (err) {
    return { unreadable: (err as Error).message };
  }
}

/**
 * Reads the three files and checks them as a unit: the key matches the
 * certificate, the certificate is valid now, chains to the bundle and carries
 * the usage this side of the connection needs.
 */
export async function loadTlsMaterial(
  files: TlsFiles,
  usage: 'server' | 'client',
  now: Date = new Date(),
  /** A client's CA bundle is for the server's chain, which during a CA rollover may differ from its own. */
  requireChain = usage === 'server',
): Promise<TlsMaterial> {
  const labels = files.labels ?? DEFAULT_LABELS;
  const [cert, key, ca] = await Promise.all([
    readInput(labels.cert, files.certFile),
    readInput(labels.key, files.keyFile),
    readInput(labels.ca, files.caFile),
  ]);
  const [leafPem] = splitPemCertificates(cert.toString('utf8'));
  if (leafPem === undefined)
    throw new TlsInvalidError(`${labels.cert} (${files.certFile}) holds no PEM certificate`);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(leafPem);
  } catch (err) {
    throw new TlsInvalidError(
      `${labels.cert} (${files.certFile}) cannot be parsed: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const keyProblem = keyMismatch(leaf, key);
  if (keyProblem?.unreadable !== undefined) {
    throw new TlsInvalidError(
      `${labels.key} (${files.keyFile}) is not a readable PEM private key: ${keyProblem.unreadable}`,
    );
  }
  if (keyProblem !== null) {
    throw new TlsInvalidError(
      `${labels.key} (${files.keyFile}) does not match ${labels.cert} (${files.certFile}); use the key issued with that certificate`,
    );
  }
  if (new Date(leaf.validFrom) > now) {
    throw new TlsInvalidError(
      `${labels.cert} (${files.certFile}) is not valid until ${leaf.validFrom}; check the clock or re-issue it`,
    );
  }
  if (new Date(leaf.validTo) <= now) {
    throw new TlsInvalidError(
      `${labels.cert} (${files.certFile}) expired on ${leaf.validTo}; re-issue it with \`npm run gen-certs\``,
    );
  }
  const cas = parseBundle(labels.ca, files.caFile, ca);
  if (requireChain && !chainsTo(leaf, cas)) {
    throw new TlsInvalidError(
      `${labels.cert} (${files.certFile}) is not signed by a CA in ${labels.ca} (${files.caFile}); issue it from that CA or add its CA to the bundle`,
    );
  }
  const oid = usage === 'server' ? OID_SERVER_AUTH : OID_CLIENT_AUTH;
  const eku = leaf.keyUsage ?? [];
  if (!eku.includes(oid)) {
    throw new TlsInvalidError(
      `${labels.cert} (${files.certFile}) lacks the ${usage === 'server' ? 'serverAuth' : 'clientAuth'} extended key usage; issue a ${usage} certificate`,
    );
  }
  // The policy our peers hold us to (cert-policy.ts): better refused here, by name, than by every peer.
  const problem = certificateProblem(leaf);
  if (problem !== null) {
    throw new TlsInvalidError(
      `${labels.cert} (${files.certFile}) is refused by the certificate policy: ${problem}; re-issue it with \`npm run gen-certs\``,
    );
  }
  if (files.crlFile === undefined || files.crlFile === '') return { cert, key, ca, leaf, cas };
  const label = labels.crl ?? DEFAULT_LABELS.crl;
  const crl = await readInput(label, files.crlFile);
  return {
    cert,
    key,
    ca,
    leaf,
    cas,
    crl,
    crls: checkCrlFile(label, files.crlFile, crl, cas, now),
  };
}

/**
 * With a CRL configured OpenSSL checks every peer against it (Node sets
 * X509_V_FLAG_CRL_CHECK), so a CRL it cannot use would refuse every peer:
 * refuse the set instead, by name, and keep the last good one.
 */
function checkCrlFile(
  label: string,
  path: string,
  pem: Buffer,
  cas: X509Certificate[],
  now: Date,
): CrlInfo[] {
  try {
    const crls = parseCrls(pem.toString('utf8'));
    checkCrlBundle(crls, cas, now);
    return crls;
  } catch (err) {
    if (!(err instanceof CrlError)) throw err;
    throw new TlsInvalidError(
      `${label} (${path}) is refused: ${err.message}; re-sign it with \`npm run gen-certs\` from the CA in the bundle (one CRL per CA)`,
      { cause: err },
    );
  }
}

/** What the logs, `gen-certs` and `--status` say about a certificate: never key material. */
export interface CertificateSummary {
  subject: string;
  issuer: string;
  /** Node's `subjectAltName` string, '' when there is none. */
  sans: string;
  serial: string;
  /** A Date: logged (JSON) as its ISO string. */
  notAfter: Date;
  /** Whole days left, rounded down. */
  daysLeft: number;
}

export function describeCertificate(
  cert: X509Certificate,
  now: Date = new Date(),
): CertificateSummary {
  return {
    subject: cert.subject.replaceAll('\n', ', '),
    issuer: cert.issuer.replaceAll('\n', ', '),
    sans: cert.subjectAltName ?? '',
    serial: cert.serialNumber,
    notAfter: new Date(cert.validTo),
    daysLeft: Math.floor(daysLeft(cert, now)),
  };
}
