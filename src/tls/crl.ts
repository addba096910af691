// Certificate revocation lists (RFC 5280 section 5): read and checked here, for the
// TLS set of the server and the client and for --status. Building and signing one is
// the certificate tool's part (src/pki/crl-build.ts).
//
// The structure is decoded with @peculiar/asn1-x509's schema; signatures are checked
// with node:crypto, never with node-forge (which the runtime does not ship).
import type * as Asn1Schema from '@peculiar/asn1-schema';
import type * as Asn1X509 from '@peculiar/asn1-x509';
import type { CertificateList, Time } from '@peculiar/asn1-x509';
import { X509Certificate, verify } from 'node:crypto';
import { KitError } from '../shared/errors.js';
import { TLS_INVALID } from '../shared/exit-codes.js';
import { createRequire } from 'node:module';

// The ASN.1 schema is loaded on first use: a server without TLS_CRL_FILE never
// needs it, and loading it cost 55-110 ms of start-up and 8-9 MiB of RSS here.
const load = createRequire(import.meta.url);
let asn1: { AsnConvert: typeof Asn1Schema.AsnConvert; x509: typeof Asn1X509 } | null = null;
function decoder(): NonNullable<typeof asn1> {
  asn1 ??= {
    AsnConvert: (load('@peculiar/asn1-schema') as typeof Asn1Schema).AsnConvert,
    x509: load('@peculiar/asn1-x509') as typeof Asn1X509,
  };
  return asn1;
}

export const OID_SHA256_RSA = '1.2.840.113549.1.1.11';
export const OID_AUTHORITY_KEY_ID = '2.5.29.35';
export const OID_CRL_NUMBER = '2.5.29.20';
export const DAY_MS = 86_400_000;
/** 30 days: room for a monthly re-sign with slack; the warning comes a week before. */
export const DEFAULT_CRL_DAYS = 30;
/** A CRL whose nextUpdate is this close counts as expiring (warned, and exit 8 from --status). */
export const CRL_WARN_DAYS = 7;
/** A year at most: a CRL that old no longer says anything current. */
export const MAX_CRL_DAYS = 365;

export interface RevokedEntry {
  /** Lower-case hex, no leading zeros, as node:crypto prints serials (upper-cased there). */
  serial: string;
  revokedAt: Date;
}

export interface CrlInfo {
  /** DER of the issuer Name, compared byte for byte with the CA's subject. */
  issuerDer: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
  number: bigint;
  entries: RevokedEntry[];
  tbsDer: Buffer;
  signatureOid: string;
  signature: Buffer;
  /** The PEM block it was read from, as Node's `crl` option takes it (one CRL a block). */
  pem: string;
}

/** A CRL that cannot be read, or that fails a check; the message says which. */
export class CrlError extends KitError {
  override name = 'CrlError';
  /** Unusable TLS material, as a refused CRL is wherever it is loaded. */
  readonly exitCode = TLS_INVALID;
}

/** Normalises a serial the way we compare them: lower-case hex without leading zeros. */
export function normaliseSerial(hex: string): string {
  const s = hex.toLowerCase().replace(/^0+/, '');
  return s === '' ? '0' : s;
}

const toBuffer = (b: ArrayBuffer): Buffer => Buffer.from(new Uint8Array(b));
const hex = (b: ArrayBuffer): string => normaliseSerial(toBuffer(b).toString('hex'));
const time = (t: Time): Date => t.getTime();

/** The value of a DER INTEGER (tag, length, big-endian two's complement; ours are positive). */
function derInteger(der: Buffer): bigint {
  if (der[0] !== 0x02) throw new CrlError('its CRL number is not an INTEGER');
  const long = (der[1] ?? 0) & 0x80 ? (der[1] ?? 0) & 0x7f : 0;
  const body = der.subarray(2 + long);
  return body.length === 0 ? 0n : BigInt(`0x${body.toString('hex')}`);
}

const CRL_BLOCK = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/g;

/** Every CRL block of a PEM file; during a CA rollover the file holds one per CA. */
export function splitPemCrls(pem: string): string[] {
  return pem.match(CRL_BLOCK) ?? [];
}

/** Reads the first CRL of a PEM file; checks its shape only (see checkCrl for signature and dates). */
export function parseCrl(pem: string): CrlInfo {
  const m = new RegExp(CRL_BLOCK.source).exec(pem);
  if (m === null) throw new CrlError('no "-----BEGIN X509 CRL-----" block');
  const { AsnConvert, x509 } = decoder();
  let list: CertificateList;
  try {
    list = AsnConvert.parse(Buffer.from(m[1] ?? '', 'base64'), x509.CertificateList);
  } catch (err) {
    throw new CrlError(`it is not a readable CRL (${(err as Error).message})`, { cause: err });
  }
  const tbs = list.tbsCertList;
  if (tbs.nextUpdate === undefined) throw new CrlError('it has no nextUpdate');
  if (list.tbsCertListRaw === undefined)
    throw new CrlError('it is not a readable CRL (no TBSCertList)');
  const numberExt = tbs.crlExtensions?.find((e) => e.extnID === OID_CRL_NUMBER);
  return {
    issuerDer: toBuffer(AsnConvert.serialize(tbs.issuer)),
    thisUpdate: time(tbs.thisUpdate),
    nextUpdate: time(tbs.nextUpdate),
    number: numberExt === undefined ? 0n : derInteger(toBuffer(numberExt.extnValue.buffer)),
    entries: (tbs.revokedCertificates ?? []).map((e) => ({
      serial: hex(e.userCertificate),
      revokedAt: time(e.revocationDate),
    })),
    tbsDer: toBuffer(list.tbsCertListRaw),
    signatureOid: list.signatureAlgorithm.algorithm,
    // A BIT STRING's unused-bits byte is not part of the signature.
    signature: toBuffer(list.signature),
    pem: m[0],
  };
}

/** Every CRL of a PEM file, each read as parseCrl does; the message numbers the one that fails. */
export function parseCrls(pem: string): CrlInfo[] {
  const blocks = splitPemCrls(pem);
  if (blocks.length === 0) throw new CrlError('no "-----BEGIN X509 CRL-----" block');
  return blocks.map((block, i) => {
    try {
      return parseCrl(block);
    } catch (err) {
      if (!(err instanceof CrlError) || blocks.length === 1) throw err;
      throw new CrlError(`CRL #${i + 1} of ${blocks.length}: ${err.message}`, { cause: err });
    }
  });
}

/** The subject Name DER of a CA, to compare with a CRL's issuer. */
function subjectDer(ca: X509Certificate): Buffer {
  const { AsnConvert, x509 } = decoder();
  const cert = AsnConvert.parse(ca.raw, x509.Certificate);
  return toBuffer(AsnConvert.serialize(cert.tbsCertificate.subject));
}

/**
 * Refuses a CRL not issued and signed by one of `cas`, or past its nextUpdate.
 * Returns the CA that signed it.
 */
export function checkCrl(
  crl: CrlInfo,
  cas: X509Certificate[],
  now: Date = new Date(),
): X509Certificate {
  if (crl.signatureOid !== OID_SHA256_RSA) {
    throw new CrlError(`it is signed with ${crl.signatureOid}, not sha256WithRSAEncryption`);
  }
  const signer = cas.find((ca) => {
    return (
      subjectDer(ca).equals(crl.issuerDer) &&
      verify('sha256', crl.tbsDer, ca.publicKey, crl.signature)
    );
  });
  if (signer === undefined) throw new CrlError('it is not signed by the trusted CA');
  if (crl.nextUpdate <= now) {
    throw new CrlError(`it expired on ${crl.nextUpdate.toISOString()} (its nextUpdate)`);
  }
  return signer;
}

export const crlDaysLeft = (crl: CrlInfo, now: Date = new Date()): number =>
  (crl.nextUpdate.getTime() - now.getTime()) / DAY_MS;

const caName = (ca: X509Certificate): string => ca.subject.replaceAll('\n', ', ');

/**
 * The rule for a CRL file (a bundle during a CA rollover): each CRL is checked
 * as checkCrl does, and every CA in `cas` has exactly one. OpenSSL checks a
 * peer against the CRL of the CA that issued it and refuses the peer when that
 * CA has none (UNABLE_TO_GET_CRL), so a CA without a CRL would shut out every
 * peer it certified: refused here, by name, instead. Two CRLs of one CA would
 * leave OpenSSL to choose between them, so that is refused too.
 */
export function checkCrlBundle(
  crls: CrlInfo[],
  cas: X509Certificate[],
  now: Date = new Date(),
): void {
  const signers = crls.map((crl, i) => {
    try {
      return checkCrl(crl, cas, now);
    } catch (err) {
      if (!(err instanceof CrlError) || crls.length === 1) throw err;
      throw new CrlError(`CRL #${i + 1} of ${crls.length}: ${err.message}`, { cause: err });
    }
  });
  for (const ca of cas) {
    const count = signers.filter((s) => s === ca).length;
    if (count === 0) throw new CrlError(`it holds no CRL of the CA "${caName(ca)}"`);
    if (count > 1) throw new CrlError(`it holds ${count} CRLs of the CA "${caName(ca)}"; keep one`);
  }
}

/** The CRL that `ca` signed, among those checked by checkCrlBundle. */
export function crlOf(crls: CrlInfo[], ca: X509Certificate): CrlInfo | undefined {
  return crls.find((crl) => {
    try {
      return checkCrl(crl, [ca], new Date(0)) === ca;
    } catch (err) {
      if (err instanceof CrlError) return false;
      throw err;
    }
  });
}
