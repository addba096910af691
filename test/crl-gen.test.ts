import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateBundle } from '../src/pki/cert-bundle.js';
import { buildCrl } from '../src/pki/crl-build.js';
import { CrlError, checkCrl, normaliseSerial, parseCrl } from '../src/tls/crl.js';
import * as exit from '../src/shared/exit-codes.js';
import { bundleOptions, tempDir } from './helpers/pki.js';
import { runTs } from './helpers/server.js';

const run = promisify(execFile);

let dir: Awaited<ReturnType<typeof tempDir>>;
let certs: string;
let k8s: string;

const serialOf = async (name: string) =>
  normaliseSerial(new X509Certificate(await readFile(join(certs, name))).serialNumber);
const gen = (args: string[]) => runTs('scripts/gen-certs.ts', ['--out', certs, ...args]);
const openssl = async (args: string[]) => {
  try {
    const r = await run('openssl', args, { cwd: certs });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
};
/** `openssl verify` of one certificate against the CA and its CRL, as a relying party checks it. */
const verifyWithCrl = (file: string) =>
  openssl(['verify', '-crl_check', '-CRLfile', 'ca.crl', '-CAfile', 'ca.crt', file]);

beforeAll(async () => {
  dir = await tempDir();
  certs = join(dir.path, 'certs');
  k8s = join(dir.path, 'k8s');
  const first = await gen(['--k8s-dir', k8s]);
  expect(first.code, first.stderr).toBe(0);
});
afterAll(() => dir.remove());

describe('gen-certs --revoke', () => {
  it('signs an empty CRL on a plain run, printed with its next update and the re-sign command', async () => {
    const crl = parseCrl(await readFile(join(certs, 'ca.crl'), 'utf8'));
    expect(crl.entries).toEqual([]);
    expect(crl.number).toBe(1n);
    const days = (crl.nextUpdate.getTime() - crl.thisUpdate.getTime()) / 86_400_000;
    expect(days).toBe(30);
    const v = await openssl(['crl', '-in', 'ca.crl', '-CAfile', 'ca.crt', '-noout']);
    expect(v.out).toContain('verify OK');
  });

  it('revokes the client by workload name: the OpenSSL CLI then refuses it and still accepts the server', async () => {
    const serial = await serialOf('client.crt');
    const r = await gen(['--k8s-dir', k8s, '--revoke', 'grpc-client', '--crl-days', '10']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Revoked serial ${serial} (grpc-client)`);
    expect(r.stdout).toMatch(/next update \d{4}-\d\d-\d\dT.*re-sign it with `npm run gen-certs`/);

    const text = await openssl(['crl', '-in', 'ca.crl', '-CAfile', 'ca.crt', '-noout', '-text']);
    expect(text.out).toContain('verify OK');
    expect(text.out).toContain('Version 2');
    expect(text.out).toContain('X509v3 CRL Number');
    expect(text.out).toContain('X509v3 Authority Key Identifier');
    // OpenSSL prints whole bytes: a serial of an odd number of hex digits gains a leading 0.
    expect(text.out.toLowerCase()).toMatch(new RegExp(`serial number: 0?${serial}\\n`));
    const client = await verifyWithCrl('client.crt');
    expect(client.code).not.toBe(0);
    expect(client.out).toContain('certificate revoked');
    const server = await verifyWithCrl('server.crt');
    expect(server.out).toContain('server.crt: OK');

    const crl = parseCrl(await readFile(join(certs, 'ca.crl'), 'utf8'));
    expect(crl.number).toBe(2n);
    expect((crl.nextUpdate.getTime() - crl.thisUpdate.getTime()) / 86_400_000).toBe(10);
    for (const secret of ['server', 'client', 'probe']) {
      const yaml = await readFile(join(k8s, `secret-grpc-${secret}-tls.yaml`), 'utf8');
      const b64 = /^ {2}ca\.crl: (.+)$/m.exec(yaml)?.[1] ?? '';
      expect(Buffer.from(b64, 'base64').toString()).toBe(
        await readFile(join(certs, 'ca.crl'), 'utf8'),
      );
    }
  });

  it('--status lists what is revoked with its workload and date, and when the CRL expires', async () => {
    const serial = await serialOf('client.crt');
    const r = await gen(['--status']);
    expect(r.code, r.stderr).toBe(exit.OK);
    expect(r.stdout).toMatch(/CRL .*ca\.crl: number 2, next update \S+ \(9 days left\), ok/);
    expect(r.stdout).toMatch(new RegExp(`${serial}\\s+grpc-client\\s+\\d{4}-\\d\\d-\\d\\dT`));
  });

  it('--status exits 8 when the CRL expires within a week', async () => {
    const r0 = await gen(['--revoke', 'grpc-probe', '--crl-days', '3']);
    expect(r0.code, r0.stderr).toBe(0);
    const r = await gen(['--status']);
    expect(r.code).toBe(exit.CERT_EXPIRING);
    expect(r.stdout).toMatch(/\(2 days left\), expiring/);
    expect(r.stderr).toContain('expires within 7 days: re-sign it with `npm run gen-certs`');
  });

  it('re-issuing keeps the revocations, bumps the CRL number, and the new client certificate verifies', async () => {
    const revoked = await serialOf('client.crt');
    const r = await gen([]);
    expect(r.code, r.stderr).toBe(0);
    const crl = parseCrl(await readFile(join(certs, 'ca.crl'), 'utf8'));
    expect(crl.number).toBe(4n);
    expect(crl.entries.map((e) => e.serial)).toContain(revoked);
    expect(await serialOf('client.crt')).not.toBe(revoked);
    const client = await verifyWithCrl('client.crt');
    expect(client.out).toContain('client.crt: OK');
    const status = await gen(['--status']);
    expect(status.stdout).toMatch(new RegExp(`${revoked}\\s+-\\s+`));
  });

  it('revokes by serial, with or without colons, and refuses a target that is neither', async () => {
    const serial = await serialOf('server.crt');
    const colons = (serial.length % 2 ? `0${serial}` : serial)
      .match(/../g)!
      .join(':')
      .toUpperCase();
    const r = await gen(['--revoke', colons]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Revoked serial ${serial} (grpc-server)`);
    const again = await gen(['--revoke', serial]);
    expect(again.stdout).toContain('was already revoked');
    const bad = await gen(['--revoke', 'grpc-nobody']);
    expect(bad.code).toBe(exit.USAGE);
    expect(bad.stderr).toContain(
      '--revoke "grpc-nobody": give a workload (grpc-server, grpc-client, grpc-probe)',
    );
  });

  it('refuses a CRL signed by another CA, and one past its nextUpdate', async () => {
    const other = await tempDir();
    try {
      await generateBundle(bundleOptions(other.path));
      const ours = new X509Certificate(await readFile(join(certs, 'ca.crt')));
      const foreign = buildCrl({
        caCertPem: await readFile(join(other.path, 'ca.crt'), 'utf8'),
        caKeyPem: await readFile(join(other.path, 'ca.key'), 'utf8'),
        entries: [],
        number: 1n,
        days: 30,
      });
      expect(() => checkCrl(parseCrl(foreign), [ours])).toThrow(CrlError);
      expect(() => checkCrl(parseCrl(foreign), [ours])).toThrow('not signed by the trusted CA');
      const pem = await readFile(join(certs, 'ca.crl'), 'utf8');
      expect(checkCrl(parseCrl(pem), [ours]).fingerprint256).toBe(ours.fingerprint256);
      expect(() => checkCrl(parseCrl(pem), [ours], new Date(Date.now() + 40 * 86_400_000))).toThrow(
        /it expired on .* \(its nextUpdate\)/,
      );
      // One flipped byte in the signature.
      const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
      der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0xff;
      const tampered = `-----BEGIN X509 CRL-----\n${der.toString('base64')}\n-----END X509 CRL-----\n`;
      await writeFile(join(other.path, 'tampered.crl'), tampered);
      expect(() => checkCrl(parseCrl(tampered), [ours])).toThrow('not signed by the trusted CA');
    } finally {
      await other.remove();
    }
  });
});
