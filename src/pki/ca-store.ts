// The CA and certificates on disk, under the fixed names docs and manifests
// rely on: finding them, and refusing a CA that is half there, unreadable,
// mismatched or expired rather than silently replacing it.
import { X509Certificate } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { keyMismatch } from '../tls/material.js';
import { KitError } from '../shared/errors.js';
import { CA_KEY_INVALID } from '../shared/exit-codes.js';
import { parseCaForSigning, type IssuedCertificate } from './certificates.js';

export type FileName = 'server' | 'client' | 'probe' | 'ca' | 'ca-next';

/** The CA on disk is unusable; never silently replaced. */
export class CaKeyError extends KitError {
  override name = 'CaKeyError';
  readonly exitCode = CA_KEY_INVALID;
}
export const certPath = (dir: string, w: FileName): string => join(dir, `${w}.crt`);
export const keyPath = (dir: string, w: FileName): string => join(dir, `${w}.key`);

/** A rollover leaves `ca-next.crt` until its last step. */
export async function rolloverInProgress(dir: string): Promise<boolean> {
  return (await readIfPresent(certPath(dir, 'ca-next'))) !== null;
}

/** A new CA ends any rollover that was under way. */
export async function removeRolloverFiles(dir: string): Promise<void> {
  await Promise.all([
    rm(certPath(dir, 'ca-next'), { force: true }),
    rm(keyPath(dir, 'ca-next'), { force: true }),
  ]);
}

export async function readIfPresent(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CaKeyError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Loads the existing CA, or returns null when there is none. A half-present or mismatched CA is an error. */
export async function loadExistingCa(
  dir: string,
  now: Date,
  name: 'ca' | 'ca-next' = 'ca',
): Promise<IssuedCertificate | null> {
  const [certPem, keyPem] = await Promise.all([
    readIfPresent(certPath(dir, name)),
    readIfPresent(keyPath(dir, name)),
  ]);
  if (certPem === null && keyPem === null) return null;
  const fix =
    'restore it from your backup, or pass --new-ca to replace the CA (every workload must then get new certificates)';
  if (certPem === null)
    throw new CaKeyError(
      `${keyPath(dir, name)} exists but ${certPath(dir, name)} is missing: ${fix}`,
    );
  if (keyPem === null)
    throw new CaKeyError(
      `${certPath(dir, name)} exists but ${keyPath(dir, name)} is missing: ${fix}`,
    );
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch (err) {
    throw new CaKeyError(
      `${certPath(dir, name)} is not a PEM certificate (${(err as Error).message}): ${fix}`,
      { cause: err },
    );
  }
  const keyProblem = keyMismatch(x509, keyPem);
  if (keyProblem?.unreadable !== undefined)
    throw new CaKeyError(
      `${keyPath(dir, name)} is not a readable private key (${keyProblem.unreadable}): ${fix}`,
    );
  if (keyProblem !== null)
    throw new CaKeyError(`${keyPath(dir, name)} does not match ${certPath(dir, name)}: ${fix}`);
  if (new Date(x509.validTo) <= now) {
    throw new CaKeyError(
      `${certPath(dir, name)} expired on ${x509.validTo}: pass --new-ca to create a new CA`,
    );
  }
  try {
    const { cert, privateKey } = parseCaForSigning(certPem, keyPem);
    return { cert, keys: { privateKey, publicKey: cert.publicKey as never }, certPem, keyPem };
  } catch (err) {
    throw new CaKeyError(
      `${keyPath(dir, name)} cannot sign with node-forge, which needs an RSA key (${(err as Error).message})`,
      { cause: err },
    );
  }
}
