// Test certificates, made fresh by the project's own PKI code in temporary folders.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  defaultBundleOptions,
  generateBundle,
  type BundleOptions,
} from '../../src/pki/cert-bundle.js';
import {
  createCa,
  issueLeaf,
  parseCaForSigning,
  type IssuedCertificate,
  type LeafSpec,
  type UnsafeLeafOptions,
} from '../../src/pki/certificates.js';

export const NAMESPACE = 'grpc-mtls';
export const CLIENT_ID = 'spiffe://cluster.local/ns/grpc-mtls/sa/grpc-client';
export const PROBE_ID = 'spiffe://cluster.local/ns/grpc-mtls/sa/grpc-probe';

export async function tempDir(
  prefix = 'grpc-mtls-',
): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export const bundleOptions = defaultBundleOptions;

/** A complete dev PKI (ca, server, client, probe) in `dir`. */
export async function makePki(dir: string, overrides: Partial<BundleOptions> = {}) {
  return generateBundle(bundleOptions(dir, overrides));
}

/**
 * A leaf with arbitrary properties, signed by `ca`, written as NAME.crt / NAME.key in `dir`.
 * `unsafe` makes the weak or malformed leaves that peers must refuse; with
 * `publicKeyDer`, `keyPem` is the matching private key.
 */
export async function writeLeaf(
  dir: string,
  name: string,
  ca: IssuedCertificate,
  spec: Partial<LeafSpec> & { now?: Date },
  unsafe: UnsafeLeafOptions & { keyPem?: string } = {},
): Promise<{ certFile: string; keyFile: string; leaf: IssuedCertificate }> {
  const leaf = await issueLeaf(
    { cert: ca.cert, privateKey: ca.keys.privateKey },
    {
      commonName: name,
      usage: 'client',
      spiffeId: `spiffe://cluster.local/ns/test/sa/${name}`,
      days: 30,
      ...spec,
    },
    2048,
    spec.now ?? new Date(),
    undefined,
    unsafe,
  );
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await writeFile(certFile, leaf.certPem);
  await writeFile(keyFile, unsafe.keyPem ?? leaf.keyPem, { mode: 0o600 });
  return { certFile, keyFile, leaf };
}

export async function writeCa(
  dir: string,
  name: string,
  now?: Date,
): Promise<IssuedCertificate & { certFile: string }> {
  const ca = await createCa({
    commonName: name,
    days: 365,
    keySize: 2048,
    ...(now ? { now } : {}),
  });
  const certFile = join(dir, `${name}.crt`);
  await writeFile(certFile, ca.certPem);
  return { ...ca, certFile };
}

/** The CA of a PKI folder, ready to sign more leaves. */
export async function loadCa(dir: string): Promise<IssuedCertificate> {
  const certPem = await readFile(join(dir, 'ca.crt'), 'utf8');
  const keyPem = await readFile(join(dir, 'ca.key'), 'utf8');
  const { cert, privateKey } = parseCaForSigning(certPem, keyPem);
  return { cert, keys: { privateKey, publicKey: cert.publicKey as never }, certPem, keyPem };
}
