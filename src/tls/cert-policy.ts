// What a peer's certificate must be, beyond chaining to our CA: the policy both
// the server (for client certificates) and the client library (for the
// server's) apply, and the words the logs use when a certificate falls short.
//
// OpenSSL refuses most of this by itself once the security level is 2 (see
// SECURE_CIPHERS), but Node reports only "UNSPECIFIED" for it; naming the
// reason needs the certificate, read here with node:crypto. A leaf marked
// CA:TRUE, which OpenSSL accepts as a client certificate, is refused only here.
import { constants, type X509Certificate } from 'node:crypto';

/**
 * Node's cipher list at OpenSSL security level 2 (112-bit security): peer keys
 * below RSA 2048 and SHA-1 signatures are refused inside the handshake. Node 20
 * runs at level 1, where RSA 1024 passes.
 *
 * The list is node:crypto's copy of tls.DEFAULT_CIPHERS: an ES import of node:tls
 * builds its namespace by reading every export, and `rootCertificates` then parses
 * Node's whole CA bundle (about 1 MiB of resident memory, never used here).
 */
export const SECURE_CIPHERS = `${constants.defaultCipherList}:@SECLEVEL=2`;

/** RSA below this is factorable by well-funded attackers (NIST SP 800-131A: disallowed since 2014). */
export const MIN_RSA_BITS = 2048;
/** Curves of 128-bit security or more; smaller or exotic ones are refused. */
const ALLOWED_CURVES = new Map([
  ['prime256v1', 'P-256'],
  ['secp384r1', 'P-384'],
  ['secp521r1', 'P-521'],
]);

/** Signature algorithms by OID: the ones we accept, and the weak ones we name. */
const STRONG_SIGNATURES = new Set([
  '1.2.840.113549.1.1.11', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12', // sha384WithRSAEncryption
  '1.2.840.113549.1.1.13', // sha512WithRSAEncryption
  '1.2.840.10045.4.3.2', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3', // ecdsa-with-SHA384
  '1.2.840.10045.4.3.4', // ecdsa-with-SHA512
  '1.3.101.112', // Ed25519
  '1.3.101.113', // Ed448
]);
const WEAK_SIGNATURES = new Map([
  ['1.2.840.113549.1.1.5', 'SHA-1 signature (sha1WithRSAEncryption)'],
  ['1.2.840.10045.4.1', 'SHA-1 signature (ecdsa-with-SHA1)'],
  ['1.2.840.10040.4.3', 'SHA-1 signature (dsa-with-sha1)'],
  ['1.3.14.3.2.29', 'SHA-1 signature (sha1WithRSASignature)'],
  ['1.2.840.113549.1.1.4', 'MD5 signature (md5WithRSAEncryption)'],
  ['1.2.840.113549.1.1.2', 'MD2 signature (md2WithRSAEncryption)'],
]);
const OID_BASIC_CONSTRAINTS = '2.5.29.19';

interface Der {
  tag: number;
  /** The contents, without tag and length. */
  body: Buffer;
}

/** The DER elements one after another in `buf`; enough DER for the fields read here. */
function derElements(buf: Buffer): Der[] {
  const out: Der[] = [];
  let i = 0;
  while (i < buf.length) {
    const tag = buf[i++] ?? 0;
    let len = buf[i++] ?? 0;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n < 1 || n > 4) throw new RangeError('unsupported DER length');
      len = 0;
      for (let k = 0; k < n; k++) len = len * 256 + (buf[i++] ?? 0);
    }
    if (i + len > buf.length) throw new RangeError('truncated DER');
    out.push({ tag, body: buf.subarray(i, i + len) });
    i += len;
  }
  return out;
}

function oid(body: Buffer): string {
  const first = body[0] ?? 0;
  const parts = [Math.floor(first / 40), first % 40];
  let value = 0;
  for (const byte of body.subarray(1)) {
    value = value * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

const SEQUENCE = 0x30;
const OID = 0x06;
const BOOLEAN = 0x01;
const EXTENSIONS = 0xa3;

/** The signature algorithm OID and whether basicConstraints says CA:TRUE, read from the DER. */
function readStructure(raw: Buffer): { signatureOid: string; caTrue: boolean } {
  const [cert] = derElements(raw);
  const [tbs, sigAlg] = derElements(cert?.body ?? Buffer.alloc(0));
  const algOid = derElements(sigAlg?.body ?? Buffer.alloc(0))[0];
  if (tbs?.tag !== SEQUENCE || algOid?.tag !== OID)
    throw new RangeError('not an X.509 certificate');
  let caTrue = false;
  const extensions = derElements(tbs.body).find((e) => e.tag === EXTENSIONS);
  const list = derElements(
    derElements(extensions?.body ?? Buffer.alloc(0))[0]?.body ?? Buffer.alloc(0),
  );
  for (const ext of list) {
    const parts = derElements(ext.body);
    if (parts[0]?.tag !== OID || oid(parts[0].body) !== OID_BASIC_CONSTRAINTS) continue;
    const value = parts.at(-1)?.body ?? Buffer.alloc(0); // the OCTET STRING's contents
    const fields = derElements(derElements(value)[0]?.body ?? Buffer.alloc(0));
    caTrue = fields[0]?.tag === BOOLEAN && (fields[0].body[0] ?? 0) !== 0;
  }
  return { signatureOid: oid(algOid.body), caTrue };
}

function keyProblem(cert: X509Certificate): string | null {
  const key = cert.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss': {
      const bits = details.modulusLength ?? 0;
      return bits >= MIN_RSA_BITS
        ? null
        : `RSA key of ${bits} bits (at least ${MIN_RSA_BITS} required)`;
    }
    case 'ec': {
      const curve = details.namedCurve ?? 'an unnamed curve';
      return ALLOWED_CURVES.has(curve)
        ? null
        : `EC key on ${curve} (P-256, P-384 or P-521 required)`;
    }
    case 'ed25519':
    case 'ed448':
      return null;
    default:
      return `${key.asymmetricKeyType ?? 'unknown'} key (RSA, EC or EdDSA required)`;
  }
}

/**
 * Why `cert` may not identify a peer, or null when it may. Checks the key, the
 * signature its issuer made, and that it is an end-entity certificate (SPIFFE
 * X.509-SVID leaves are CA:FALSE; a CA certificate could sign its own "peers").
 */
export function certificateProblem(cert: X509Certificate): string | null {
  const problems: string[] = [];
  const key = keyProblem(cert);
  if (key !== null) problems.push(key);
  let structure: { signatureOid: string; caTrue: boolean };
  try {
    structure = readStructure(cert.raw);
  } catch (err) {
    return `unreadable certificate structure (${(err as Error).message})`;
  }
  const { signatureOid, caTrue } = structure;
  if (!STRONG_SIGNATURES.has(signatureOid)) {
    problems.push(WEAK_SIGNATURES.get(signatureOid) ?? `signature algorithm ${signatureOid}`);
  }
  // X509Certificate.ca is false for a CA:TRUE leaf without keyCertSign, so read the extension itself.
  if (caTrue || cert.ca) problems.push('a CA certificate (basicConstraints CA:TRUE), not a leaf');
  return problems.length === 0 ? null : problems.join('; ');
}
