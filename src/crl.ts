// Certificate revocation lists (RFC 5280 section 5), built and read here.
//
// node-forge signs no CRLs, so the TBSCertList is assembled with its ASN.1
// encoder and signed with node:crypto; reading a CRL back (for --status and for
// the TLS set) checks its signature with node:crypto too, never with forge.
import { X509Certificate, sign, verify } from 'node:crypto';
import forge from 'node-forge';

const { asn1 } = forge;
type Asn1 = forge.asn1.Asn1;

const OID_SHA256_RSA = '1.2.840.113549.1.1.11';
const OID_AUTHORITY_KEY_ID = '2.5.29.35';
const OID_CRL_NUMBER = '2.5.29.20';
const DAY_MS = 86_400_000;
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
}

/** A CRL that cannot be read, or that fails a check; the message says which. */
export class CrlError extends Error {
  override name = 'CrlError';
}

const seq = (v: Asn1[]): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, v);
const oid = (o: string): Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(o).getBytes());
const octets = (b: string): Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, b);
const utcTime = (d: Date): Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(d));

/** Normalises a serial the way we compare them: lower-case hex without leading zeros. */
export function normaliseSerial(hex: string): string {
  const s = hex.toLowerCase().replace(/^0+/, '');
  return s === '' ? '0' : s;
}

/** DER INTEGER contents for a non-negative hex value (a 00 byte when the high bit is set). */
function integer(hex: string): Asn1 {
  let h = normaliseSerial(hex);
  if (h.length % 2 === 1) h = `0${h}`;
  if (parseInt(h.slice(0, 2), 16) >= 0x80) h = `00${h}`;
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, forge.util.hexToBytes(h));
}

function extension(id: string, valueDer: string): Asn1 {
  return seq([oid(id), octets(valueDer)]);
}

/** The CA's subject Name as it is encoded in its certificate (tbsCertificate field 6). */
function caSubject(caPem: string): { subject: Asn1; keyId: string } {
  const cert = forge.pki.certificateFromPem(caPem);
  const tbs = asn1.fromDer(forge.pki.pemToDer(caPem)).value as Asn1[];
  const fields = (tbs[0] as Asn1).value as Asn1[];
  // Field 0 is the [0] version for v3 certificates (all of ours), then serial, signature, issuer, validity, subject.
  const subject = fields[5];
  if (subject === undefined) throw new CrlError('the CA certificate has no subject');
  return { subject, keyId: cert.generateSubjectKeyIdentifier().getBytes() };
}

export interface CrlSpec {
  caCertPem: string;
  caKeyPem: string;
  entries: RevokedEntry[];
  number: bigint;
  days: number;
  now?: Date;
}

/** A v2 CRL signed by the CA with SHA-256, PEM. */
export function buildCrl(spec: CrlSpec): string {
  const now = spec.now ?? new Date();
  const { subject, keyId } = caSubject(spec.caCertPem);
  const sigAlg = seq([
    oid(OID_SHA256_RSA),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''),
  ]);
  const revoked = spec.entries.map((e) => seq([integer(e.serial), utcTime(e.revokedAt)]));
  const aki = seq([asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, false, keyId)]);
  const extensions = asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [
    seq([
      extension(OID_AUTHORITY_KEY_ID, asn1.toDer(aki).getBytes()),
      extension(OID_CRL_NUMBER, asn1.toDer(integer(spec.number.toString(16))).getBytes()),
    ]),
  ]);
  const tbs = seq([
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, '\x01'), // v2
    sigAlg,
    subject,
    utcTime(now),
    utcTime(new Date(now.getTime() + spec.days * DAY_MS)),
    ...(revoked.length > 0 ? [seq(revoked)] : []), // RFC 5280: absent, not empty, when none
    extensions,
  ]);
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  const signature = sign('sha256', tbsDer, spec.caKeyPem);
  const crl = seq([
    tbs,
    sigAlg,
    asn1.create(
      asn1.Class.UNIVERSAL,
      asn1.Type.BITSTRING,
      false,
      `\0${signature.toString('binary')}`,
    ),
  ]);
  return forge.pem.encode({ type: 'X509 CRL', body: asn1.toDer(crl).getBytes() });
}

/** The exact bytes of the first element inside the outer SEQUENCE (the TBSCertList). */
function firstInnerElement(der: Buffer): Buffer {
  const header = (at: number): { start: number; end: number } => {
    const first = der[at + 1] ?? 0;
    if (first < 0x80) return { start: at + 2, end: at + 2 + first };
    const n = first & 0x7f;
    let len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (der[at + 2 + i] ?? 0);
    return { start: at + 2 + n, end: at + 2 + n + len };
  };
  const outer = header(0);
  const inner = header(outer.start);
  return der.subarray(outer.start, inner.end);
}

function time(a: Asn1 | undefined): Date {
  if (a?.type === asn1.Type.UTCTIME) return asn1.utcTimeToDate(a.value as string);
  if (a?.type === asn1.Type.GENERALIZEDTIME) return asn1.generalizedTimeToDate(a.value as string);
  throw new CrlError('a time field is missing');
}

const hex = (a: Asn1): string => normaliseSerial(forge.util.bytesToHex(a.value as string));

/** Reads a PEM CRL; checks its shape only (see checkCrl for signature and dates). */
export function parseCrl(pem: string): CrlInfo {
  try {
    const block = forge.pem.decode(pem).find((b) => b.type === 'X509 CRL');
    if (block === undefined) throw new CrlError('no "-----BEGIN X509 CRL-----" block');
    const der = Buffer.from(block.body, 'binary');
    const top = asn1.fromDer(block.body).value as Asn1[];
    const tbs = [...((top[0] as Asn1).value as Asn1[])];
    if (tbs[0]?.type === asn1.Type.INTEGER) tbs.shift(); // version
    const [, issuer, thisU, ...rest] = tbs;
    let next: Asn1 | undefined;
    if (rest[0]?.type === asn1.Type.UTCTIME || rest[0]?.type === asn1.Type.GENERALIZEDTIME) {
      next = rest.shift();
    }
    if (next === undefined) throw new CrlError('it has no nextUpdate');
    const list = rest[0]?.tagClass === asn1.Class.UNIVERSAL ? (rest.shift()?.value as Asn1[]) : [];
    const entries = list.map((e) => {
      const [serial, date] = e.value as Asn1[];
      return { serial: hex(serial as Asn1), revokedAt: time(date) };
    });
    let number = 0n;
    for (const ext of ((rest[0]?.value as Asn1[] | undefined)?.[0]?.value as Asn1[]) ?? []) {
      const [id, ...more] = ext.value as Asn1[];
      if (asn1.derToOid(id?.value as string) !== OID_CRL_NUMBER) continue;
      const inner = asn1.fromDer(more[more.length - 1]?.value as string);
      number = BigInt(`0x${hex(inner)}`);
    }
    const sigAlg = (top[1] as Asn1).value as Asn1[];
    return {
      issuerDer: Buffer.from(asn1.toDer(issuer as Asn1).getBytes(), 'binary'),
      thisUpdate: time(thisU),
      nextUpdate: time(next),
      number,
      entries,
      tbsDer: firstInnerElement(der),
      signatureOid: asn1.derToOid(sigAlg[0]?.value as string),
      signature: Buffer.from(((top[2] as Asn1).value as string).slice(1), 'binary'),
    };
  } catch (err) {
    if (err instanceof CrlError) throw err;
    throw new CrlError(`it is not a readable CRL (${(err as Error).message})`, { cause: err });
  }
}

/** The subject Name DER of a CA, to compare with a CRL's issuer. */
function subjectDer(ca: X509Certificate): Buffer {
  const { subject } = caSubject(ca.toString());
  return Buffer.from(asn1.toDer(subject).getBytes(), 'binary');
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
