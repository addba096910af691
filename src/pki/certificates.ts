// Issuing the private CA and workload certificates with node-forge.
//
// node-forge only builds and signs here; it never verifies anything (its
// verification code has a CVE history). Checks belong to node:crypto and TLS.
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

const { pki } = forge;

/** RSA sizes we issue; node-forge signs X.509 with RSA keys only. */
export const KEY_SIZES = [2048, 3072, 4096] as const;
export type KeySize = (typeof KEY_SIZES)[number];

/** 2 years: long enough to outlive many leaf rotations, short enough to force a rehearsed rollover. */
export const DEFAULT_CA_DAYS = 730;
/** 90 days, as public CAs issue: short-lived leaves make rotation routine rather than an event. */
export const DEFAULT_LEAF_DAYS = 90;
/** 397 days is the CA/Browser Forum ceiling that TLS clients enforce; nothing of ours lives longer. */
export const MAX_LEAF_DAYS = 397;
/** Back-date notBefore by a minute so a peer whose clock is slightly behind accepts a fresh certificate. */
const CLOCK_SKEW_MS = 60_000;
const DAY_MS = 86_400_000;

export type Usage = 'server' | 'client';

export interface KeyPair {
  privateKey: forge.pki.rsa.PrivateKey;
  publicKey: forge.pki.rsa.PublicKey;
}

export interface IssuedCertificate {
  cert: forge.pki.Certificate;
  keys: KeyPair;
  certPem: string;
  keyPem: string;
}

export interface LeafSpec {
  commonName: string;
  usage: Usage;
  spiffeId: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  days: number;
}

/** Generates an RSA key pair; node-forge uses Node's native (threaded) generator for this call form. */
export function generateKeyPair(bits: KeySize): Promise<KeyPair> {
  return generateRsaKeyPair(bits);
}

function generateRsaKeyPair(bits: number): Promise<KeyPair> {
  return new Promise((resolve, reject) => {
    pki.rsa.generateKeyPair({ bits, e: 0x10001 }, (err, keys) => {
      if (err) reject(err);
      else resolve(keys);
    });
  });
}

/** A random positive 128-bit serial, hex: the high bit is cleared so DER never reads it as negative. */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  if (bytes[0] === 0) bytes[0] = 0x01; // keep the full 128-bit width, no leading zero byte
  return bytes.toString('hex');
}

/** `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`, the Kubernetes SPIFFE ID shape. */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

function validity(cert: forge.pki.Certificate, days: number, now: Date): void {
  cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
}

function toPem(cert: forge.pki.Certificate, keys: KeyPair): IssuedCertificate {
  return {
    cert,
    keys,
    certPem: pki.certificateToPem(cert),
    keyPem: pki.privateKeyToPem(keys.privateKey),
  };
}

/** A self-signed CA that may sign end-entity certificates only (pathlen 0). */
export async function createCa(opts: {
  commonName: string;
  days: number;
  keySize: KeySize;
  now?: Date;
}): Promise<IssuedCertificate> {
  const keys = await generateKeyPair(opts.keySize);
  const cert = pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = randomSerial();
  validity(cert, opts.days, opts.now ?? new Date());
  const subject = [
    { name: 'organizationName', value: 'grpc-mtls-service' },
    { name: 'commonName', value: opts.commonName },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return toPem(cert, keys);
}

/** SANs sorted into DNS (2), IP (7) and URI (6) entries, as RFC 5280 types them. */
function altNames(spec: LeafSpec): object[] {
  const names: object[] = [];
  for (const dns of spec.dnsNames ?? []) names.push({ type: 2, value: dns });
  for (const ip of spec.ipAddresses ?? []) {
    if (isIP(ip) === 0) throw new TypeError(`not an IP address: ${ip}`);
    names.push({ type: 7, ip });
  }
  names.push({ type: 6, value: spec.spiffeId });
  return names;
}

/**
 * Departures from what we issue, so that tests can show peers refusing them.
 * Nothing outside the tests sets these: gen-certs and the bundle code offer
 * only KEY_SIZES, SHA-256, CA:FALSE leaves and exactly one SPIFFE URI SAN.
 */
export interface UnsafeLeafOptions {
  /** An RSA key of this many bits instead of the key size asked for (e.g. 1024). */
  rsaBits?: number;
  /** Sign with SHA-1 instead of SHA-256. */
  sha1?: boolean;
  /** Mark the leaf basicConstraints CA:TRUE. */
  caTrue?: boolean;
  /** Leave out the URI SAN: the SPIFFE ID is then only what the CN may say. */
  noUriSan?: boolean;
  /**
   * Certify this public key (a DER SubjectPublicKeyInfo, e.g. an EC key made by
   * node:crypto) instead of an RSA key; the returned keyPem is then the caller's to supply.
   */
  publicKeyDer?: Buffer;
}

/** A leaf for one workload, signed by the CA: one usage, one SPIFFE ID, SHA-256. */
export async function issueLeaf(
  ca: { cert: forge.pki.Certificate; privateKey: forge.pki.rsa.PrivateKey },
  spec: LeafSpec,
  keySize: KeySize,
  now: Date = new Date(),
  keys?: KeyPair,
  unsafe: UnsafeLeafOptions = {},
): Promise<IssuedCertificate> {
  if (spec.days < 1 || spec.days > MAX_LEAF_DAYS) {
    throw new RangeError(`leaf lifetime must be 1 to ${MAX_LEAF_DAYS} days, got ${spec.days}`);
  }
  const pair = keys ?? (await generateRsaKeyPair(unsafe.rsaBits ?? keySize));
  const cert = pki.createCertificate();
  cert.publicKey = pair.publicKey;
  cert.serialNumber = randomSerial();
  validity(cert, spec.days, now);
  cert.setSubject([
    { name: 'organizationName', value: 'grpc-mtls-service' },
    { name: 'commonName', value: spec.commonName },
  ]);
  cert.setIssuer(ca.cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: unsafe.caTrue === true, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    spec.usage === 'server'
      ? { name: 'extKeyUsage', serverAuth: true }
      : { name: 'extKeyUsage', clientAuth: true },
    { name: 'subjectKeyIdentifier' },
    {
      name: 'authorityKeyIdentifier',
      keyIdentifier: ca.cert.generateSubjectKeyIdentifier().getBytes(),
    },
    ...(unsafe.noUriSan === true ? [] : [{ name: 'subjectAltName', altNames: altNames(spec) }]),
  ]);
  const md = unsafe.sha1 === true ? forge.md.sha1.create() : forge.md.sha256.create();
  cert.sign(ca.privateKey, md);
  if (unsafe.publicKeyDer === undefined) return toPem(cert, pair);
  return {
    cert,
    keys: pair,
    certPem: resignWithKey(cert, unsafe.publicKeyDer, ca.privateKey, md),
    keyPem: '',
  };
}

/**
 * The certificate with its SubjectPublicKeyInfo replaced by `spkiDer`, signed
 * again: node-forge can only encode RSA keys, so a test's EC key goes in here.
 */
function resignWithKey(
  cert: forge.pki.Certificate,
  spkiDer: Buffer,
  caKey: forge.pki.rsa.PrivateKey,
  md: forge.md.MessageDigest,
): string {
  const { asn1 } = forge;
  // Typed by @types/node-forge only as a field the signer sets; the function is public.
  const tbs = (
    pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }
  ).getTBSCertificate(cert);
  // TBSCertificate: version, serial, signature, issuer, validity, subject, subjectPublicKeyInfo, …
  (tbs.value as forge.asn1.Asn1[])[6] = asn1.fromDer(spkiDer.toString('binary'));
  const digest = md.algorithm === 'sha1' ? forge.md.sha1.create() : forge.md.sha256.create();
  digest.update(asn1.toDer(tbs).getBytes());
  const signature = caKey.sign(digest);
  const certificate = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    // The signatureAlgorithm, as forge wrote it into the TBSCertificate.
    (tbs.value as forge.asn1.Asn1[])[2] as forge.asn1.Asn1,
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\0${signature}`),
  ]);
  // PEM by hand: forge's certificateFromAsn1 would try to read the key as RSA.
  return forge.pem.encode({ type: 'CERTIFICATE', body: asn1.toDer(certificate).getBytes() });
}

/** Parses a CA for signing; throws when the key is not RSA (node-forge signs with RSA only). */
export function parseCaForSigning(
  certPem: string,
  keyPem: string,
): {
  cert: forge.pki.Certificate;
  privateKey: forge.pki.rsa.PrivateKey;
} {
  const cert = pki.certificateFromPem(certPem);
  const privateKey = pki.privateKeyFromPem(keyPem);
  return { cert, privateKey };
}
