// Builds and signs certificate revocation lists (RFC 5280 section 5) for the CA.
//
// node-forge signs no CRLs, so the TBSCertList is assembled with its ASN.1 encoder
// and signed with node:crypto. Reading one back is src/tls/crl.ts.
import { sign } from 'node:crypto';
import forge from 'node-forge';
import {
  CrlError,
  DAY_MS,
  OID_AUTHORITY_KEY_ID,
  OID_CRL_NUMBER,
  OID_SHA256_RSA,
  normaliseSerial,
  type RevokedEntry,
} from '../tls/crl.js';

const { asn1 } = forge;
type Asn1 = forge.asn1.Asn1;

const seq = (v: Asn1[]): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, v);
const oid = (o: string): Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(o).getBytes());
const octets = (b: string): Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, b);
const utcTime = (d: Date): Asn1 =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(d));

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
