// A CA rollover with revocation checks on: the trust bundle holds two CAs for
// two of the three steps, so the CRL file holds one CRL per CA, and calls keep
// working while revoked certificates stay refused.
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EchoClient } from '../src/client/client.js';
import { rotateCa } from '../src/pki/ca-rollover.js';
import { loadExistingCa } from '../src/pki/ca-store.js';
import { revoke } from '../src/pki/crl-revoke.js';
import type { EchoServer } from '../src/server/server.js';
import { parseCrls } from '../src/tls/crl.js';
import { buildCrl } from '../src/pki/crl-build.js';
import { loadTlsMaterial, splitPemCertificates } from '../src/tls/material.js';
import { TlsReloader } from '../src/tls/reloader.js';
import { CLIENT_ID, bundleOptions, loadCa, makePki, tempDir, writeLeaf } from './helpers/pki.js';
import { clientFor, startInProcess, type LogCapture } from './helpers/server.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let pki: string;
let server: EchoServer;
let port: number;
let logs: LogCapture;
const clients: EchoClient[] = [];

const RELOADED = 'reloaded TLS credentials; new connections use them';

function nextLine(match: (l: Record<string, unknown>) => boolean) {
  const from = logs.lines.length;
  return logs.waitFor((l) => logs.lines.indexOf(l) >= from && match(l));
}

/** A client of the folder's files, or of another leaf, checking the server against the CRLs. */
function client(files: { certFile: string; keyFile: string } | null = null) {
  const c = clientFor(pki, `127.0.0.1:${port}`, 'client', {
    serverName: 'localhost',
    crlFile: join(pki, 'ca.crl'),
    reloadIntervalMs: 100,
    ...(files ?? {}),
  });
  clients.push(c);
  return c;
}

/**
 * The server's refusal of the next connection from `files`, as logged. Matched by
 * serial, and the client closed, since a refused channel keeps reconnecting.
 */
async function refusalOf(files: { certFile: string; keyFile: string }) {
  const serial = await serialOf(files.certFile);
  const refusal = nextLine(
    (l) => String(l.msg).startsWith('TLS handshake refused') && l.serial === serial,
  );
  const c = client(files);
  await expect(c.echo('refused')).rejects.toThrow();
  c.close();
  return refusal;
}

const serialOf = async (file: string) => new X509Certificate(await readFile(file)).serialNumber;
const parseCrlsFile = async (file: string) => parseCrls(await readFile(file, 'utf8'));
const crlsOnDisk = () => parseCrlsFile(join(pki, 'ca.crl'));

beforeAll(async () => {
  dir = await tempDir();
  pki = join(dir.path, 'pki');
  await makePki(pki);
  ({ server, port, logs } = await startInProcess(pki, {
    TLS_CRL_FILE: join(pki, 'ca.crl'),
    TLS_RELOAD_INTERVAL_MS: '100',
  }));
});
afterAll(async () => {
  for (const c of clients) c.close();
  await server.shutdown();
  await dir.remove();
});

describe('a CA rollover with TLS_CRL_FILE set', () => {
  it('keeps calls working at every step while revoked certificates stay refused', async () => {
    // A second client of the old CA, revoked before the rollover starts.
    const oldRevoked = await writeLeaf(dir.path, 'old-revoked', await loadCa(pki), {
      commonName: 'grpc-client',
      spiffeId: CLIENT_ID,
    });
    const reloaded0 = nextLine((l) => l.msg === RELOADED);
    await revoke(bundleOptions(pki), await serialOf(oldRevoked.certFile));
    await reloaded0;
    expect(await refusalOf(oldRevoked)).toMatchObject({ code: 'CERT_REVOKED' });

    const steady = client();
    await steady.echo('warm');
    let stop = false;
    let calls = 0;
    const failures: unknown[] = [];
    const loop = (async () => {
      while (!stop && failures.length < 10) {
        calls++;
        await steady.echo(`call ${calls}`).catch((e: unknown) => failures.push(e));
      }
    })();

    try {
      // Step 1: the bundle trusts both CAs; the CRL file carries a CRL of each.
      let reloaded = nextLine((l) => l.msg === RELOADED && l.caCount === 2);
      expect((await rotateCa(bundleOptions(pki))).step).toBe(1);
      expect(await reloaded).toMatchObject({ crl: { count: 2, revoked: 1 } });
      expect((await crlsOnDisk()).map((c) => c.entries.length)).toEqual([1, 0]);
      expect((await client().echo('step 1')).caller).toBe(CLIENT_ID);
      expect(await refusalOf(oldRevoked)).toMatchObject({ code: 'CERT_REVOKED' });

      // Step 2: every leaf comes from the new CA, which has a CRL of its own.
      const next = await loadExistingCa(pki, new Date(), 'ca-next');
      const nextSubject = new X509Certificate(next?.certPem ?? '').subject.replaceAll('\n', ', ');
      reloaded = nextLine(
        (l) =>
          l.msg === RELOADED &&
          (l.certificate as { issuer: string }).issuer === nextSubject &&
          (l.crl as { count?: number }).count === 2,
      );
      expect((await rotateCa(bundleOptions(pki))).step).toBe(2);
      await reloaded;
      expect((await client().echo('step 2')).caller).toBe(CLIENT_ID);
      expect(await refusalOf(oldRevoked)).toMatchObject({ code: 'CERT_REVOKED' });

      // A client of the new CA revoked mid-rollover: into the new CA's CRL too.
      const newRevoked = await writeLeaf(dir.path, 'new-revoked', next!, {
        commonName: 'grpc-client',
        spiffeId: CLIENT_ID,
      });
      expect((await client(newRevoked).echo('before revoking')).caller).toBe(CLIENT_ID);
      const newSerial = await serialOf(newRevoked.certFile);
      reloaded = nextLine((l) => l.msg === RELOADED);
      await revoke(bundleOptions(pki), newSerial);
      await reloaded;
      expect(await refusalOf(newRevoked)).toMatchObject({
        code: 'CERT_REVOKED',
        serial: newSerial,
      });

      // Step 3: the old CA and its CRL leave; the new CA's CRL keeps its revocation.
      reloaded = nextLine((l) => l.msg === RELOADED && l.caCount === 1);
      expect((await rotateCa(bundleOptions(pki))).step).toBe(3);
      expect(await reloaded).toMatchObject({ crl: { revoked: 1 } });
      expect(await crlsOnDisk()).toHaveLength(1);
      expect((await client().echo('step 3')).caller).toBe(CLIENT_ID);
      expect(await refusalOf(newRevoked)).toMatchObject({
        code: 'CERT_REVOKED',
        serial: newSerial,
      });
      // The old CA's revoked client is now refused as untrusted, the old CA being gone.
      expect(String((await refusalOf(oldRevoked)).code)).toMatch(/^UNABLE_TO_/);
    } finally {
      stop = true;
      await loop;
    }
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(1);
  });
});

describe('the CRL file of a two-CA bundle', () => {
  it('is refused when a CA of the bundle has no CRL, or one CA has two, naming the CA; warns by the first to expire', async () => {
    const other = await tempDir();
    try {
      const root = join(other.path, 'pki');
      await makePki(root);
      await rotateCa(bundleOptions(root));
      const [oldCrl, newCrl] = await parseCrlsFile(join(root, 'ca.crl'));
      const files = {
        certFile: join(root, 'server.crt'),
        keyFile: join(root, 'server.key'),
        caFile: join(root, 'ca.crt'),
        crlFile: join(other.path, 'test.crl'),
      };
      await writeFile(files.crlFile, oldCrl!.pem + newCrl!.pem);
      expect((await loadTlsMaterial(files, 'server')).crls).toHaveLength(2);
      const newCa = new X509Certificate(await readFile(join(root, 'ca-next.crt'))).subject;
      await writeFile(files.crlFile, oldCrl!.pem);
      await expect(loadTlsMaterial(files, 'server')).rejects.toThrow(
        `TLS_CRL_FILE (${files.crlFile}) is refused: it holds no CRL of the CA "${newCa.replaceAll('\n', ', ')}"`,
      );
      await writeFile(files.crlFile, oldCrl!.pem + newCrl!.pem + oldCrl!.pem);
      await expect(loadTlsMaterial(files, 'server')).rejects.toThrow(/holds 2 CRLs of the CA/);

      // The warning follows the CRL that passes its next update first.
      const warnings: string[] = [];
      const log = {
        info: () => {},
        error: () => {},
        warn: (_: object, m: string) => warnings.push(m),
      };
      const soon = buildCrl({
        caCertPem: splitPemCertificates(await readFile(files.caFile, 'utf8'))[0]!,
        caKeyPem: await readFile(join(root, 'ca.key'), 'utf8'),
        entries: [],
        number: 9n,
        days: 3,
      });
      await writeFile(files.crlFile, soon + newCrl!.pem);
      new TlsReloader(files, 'server', await loadTlsMaterial(files, 'server'), log, () => {});
      expect(warnings).toEqual(['CRL expires in 3.0 days; re-sign it with `npm run gen-certs`']);
    } finally {
      await other.remove();
    }
  });
});
