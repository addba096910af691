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

/** A leaf for one workload, signed by the CA: one usage, one SPIFFE ID, SHA-256. */
export async function issueLeaf(
  ca: { cert: forge.pki.Certificate; privateKey: forge.pki.rsa.PrivateKey },
  spec: LeafSpec,
  keySize: KeySize,
  now: Date = new Date(),
  keys?: KeyPair,
): Promise<IssuedCertificate> {
  if (spec.days < 1 || spec.days > MAX_LEAF_DAYS) {
    throw new RangeError(`leaf lifetime must be 1 to ${MAX_LEAF_DAYS} days, got ${spec.days}`);
  }
  const pair = keys ?? (await generateKeyPair(keySize));
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
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    spec.usage === 'server'
      ? { name: 'extKeyUsage', serverAuth: true }
      : { name: 'extKeyUsage', clientAuth: true },
    { name: 'subjectKeyIdentifier' },
    {
      name: 'authorityKeyIdentifier',
      keyIdentifier: ca.cert.generateSubjectKeyIdentifier().getBytes(),
    },
    { name: 'subjectAltName', altNames: altNames(spec) },
  ]);
  cert.sign(ca.privateKey, forge.md.sha256.create());
  return toPem(cert, pair);
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
