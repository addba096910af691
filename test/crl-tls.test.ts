import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { copyFile, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EchoClient } from '../src/client/client.js';
import { generateBundle } from '../src/pki/cert-bundle.js';
import { buildCrl } from '../src/pki/crl-build.js';
import { revoke } from '../src/pki/crl-revoke.js';
import * as exit from '../src/shared/exit-codes.js';
import { loadTlsMaterial } from '../src/tls/material.js';
import { TlsReloader } from '../src/tls/reloader.js';
import type { EchoServer } from '../src/server/server.js';
import { CLIENT_ID, bundleOptions, loadCa, makePki, tempDir, writeLeaf } from './helpers/pki.js';
import { clientFor, pkiEnv, runTs, startInProcess, type LogCapture } from './helpers/server.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let pki: string;
let servedCrl: string;
let server: EchoServer;
let port: number;
let logs: LogCapture;
const clients: EchoClient[] = [];

const REFUSED = 'refused new TLS files; still using the last good credentials';
const RELOADED = 'reloaded TLS credentials; new connections use them';

/** The next log line (after now) that matches. */
function nextLine(match: (l: Record<string, unknown>) => boolean) {
  const from = logs.lines.length;
  return logs.waitFor((l) => logs.lines.indexOf(l) >= from && match(l));
}

/** Replaces the served CRL in one rename, as a Secret volume swap does. */
async function serve(pem: string): Promise<void> {
  const tmp = `${servedCrl}.tmp`;
  await writeFile(tmp, pem);
  await rename(tmp, servedCrl);
}

const client = (who: 'client' | 'probe', extra = {}) => {
  const c = clientFor(pki, `127.0.0.1:${port}`, who, { serverName: 'localhost', ...extra });
  clients.push(c);
  return c;
};
const tlsFiles = () => ({
  certFile: join(pki, 'server.crt'),
  keyFile: join(pki, 'server.key'),
  caFile: join(pki, 'ca.crt'),
});
const serialOf = async (file: string) =>
  new X509Certificate(await readFile(join(pki, file))).serialNumber;

beforeAll(async () => {
  dir = await tempDir();
  pki = join(dir.path, 'pki');
  await makePki(pki);
  servedCrl = join(dir.path, 'served.crl');
  await copyFile(join(pki, 'ca.crl'), servedCrl);
  ({ server, port, logs } = await startInProcess(pki, {
    TLS_CRL_FILE: servedCrl,
    TLS_RELOAD_INTERVAL_MS: '100',
  }));
});
afterAll(async () => {
  for (const c of clients) c.close();
  await server.shutdown();
  await dir.remove();
});

describe('revocation at the TLS handshake', () => {
  it('refuses a revoked client from the next reload while another client keeps calling', async () => {
    expect((await client('client').echo('before')).message).toBe('before');
    // A second certificate for the same identity, with its own serial.
    const second = await writeLeaf(dir.path, 'client-2', await loadCa(pki), {
      commonName: 'grpc-client',
      spiffeId: CLIENT_ID,
    });
    const other = client('client', { certFile: second.certFile, keyFile: second.keyFile });
    await other.echo('warm');
    let stop = false;
    let calls = 0;
    const failures: unknown[] = [];
    const loop = (async () => {
      while (!stop && calls < 10_000) {
        calls++;
        await other.echo(`call ${calls}`).catch((e: unknown) => failures.push(e));
      }
    })();

    const serial = await serialOf('client.crt');
    await revoke(bundleOptions(pki), 'grpc-client');
    const reloaded = nextLine((l) => l.msg === RELOADED);
    await serve(await readFile(join(pki, 'ca.crl'), 'utf8'));
    expect(await reloaded).toMatchObject({ crl: { revoked: 1 } });

    const refusal = nextLine((l) => String(l.msg).startsWith('TLS handshake refused'));
    await expect(client('client').echo('after')).rejects.toThrow();
    expect(await refusal).toMatchObject({
      msg: 'TLS handshake refused: certificate revoked',
      code: 'CERT_REVOKED',
      reason: 'certificate revoked',
      serial,
    });
    stop = true;
    await loop;
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(1);
  });

  it('refuses a CRL signed by another CA, logs why, and keeps refusing the revoked client', async () => {
    const other = await tempDir();
    try {
      await generateBundle(bundleOptions(other.path));
      const refused = nextLine((l) => l.msg === REFUSED);
      await serve(await readFile(join(other.path, 'ca.crl'), 'utf8'));
      const line = await refused;
      expect(String(line.err)).toMatch(
        /TLS_CRL_FILE \(.*served\.crl\) is refused: it is not signed by the trusted CA; re-sign it/,
      );
      const refusal = nextLine((l) => String(l.msg).startsWith('TLS handshake refused'));
      await expect(client('client').echo('still revoked')).rejects.toThrow();
      expect(await refusal).toMatchObject({ code: 'CERT_REVOKED' });
      expect(await client('probe').checkHealth()).toBe('SERVING');
    } finally {
      await other.remove();
    }
  });

  it('refuses an expired CRL and keeps the last good one', async () => {
    const expired = buildCrl({
      caCertPem: await readFile(join(pki, 'ca.crt'), 'utf8'),
      caKeyPem: await readFile(join(pki, 'ca.key'), 'utf8'),
      entries: [],
      number: 99n,
      days: 1,
      now: new Date(Date.now() - 2 * 86_400_000),
    });
    const refused = nextLine((l) => l.msg === REFUSED);
    await serve(expired);
    expect(String((await refused).err)).toMatch(/is refused: it expired on .* \(its nextUpdate\)/);
    const refusal = nextLine((l) => String(l.msg).startsWith('TLS handshake refused'));
    await expect(client('client').echo('still revoked')).rejects.toThrow();
    expect(await refusal).toMatchObject({ code: 'CERT_REVOKED' });
  });

  it('lets the workload in again once gen-certs re-issues its certificate', async () => {
    await serve(await readFile(join(pki, 'ca.crl'), 'utf8'));
    await generateBundle(bundleOptions(pki));
    const reloaded = nextLine((l) => l.msg === RELOADED);
    await serve(await readFile(join(pki, 'ca.crl'), 'utf8'));
    await reloaded;
    expect((await client('client').echo('back')).message).toBe('back');
  });
});

describe('revocation on the client side', () => {
  it('refuses a revoked server certificate, naming the serial', async () => {
    const serial = await serialOf('server.crt');
    const ok = client('client', { crlFile: join(pki, 'ca.crl') });
    expect((await ok.echo('trusted')).message).toBe('trusted');
    await revoke(bundleOptions(pki), 'grpc-server');
    const refused = client('client', { crlFile: join(pki, 'ca.crl') });
    await expect(refused.echo('revoked')).rejects.toThrow(
      `the server certificate is revoked (serial ${serial})`,
    );
    const without = client('client');
    expect((await without.echo('no crl configured')).message).toBe('no crl configured');
  });

  it('makes the client command exit 19 naming the CRL and the serial', async () => {
    const crlFile = join(pki, 'ca.crl');
    const r = await runTs('src/bin/client.ts', ['echo', 'revoked'], {
      GRPC_TARGET: `127.0.0.1:${port}`,
      TLS_SERVER_NAME: 'localhost',
      TLS_CA_FILE: join(pki, 'ca.crt'),
      TLS_CERT_FILE: join(pki, 'client.crt'),
      TLS_KEY_FILE: join(pki, 'client.key'),
      TLS_CRL_FILE: crlFile,
    });
    expect(r.stderr).toContain(
      `the server certificate at 127.0.0.1:${port} is revoked: TLS_CRL_FILE (${crlFile}) lists its serial ${await serialOf('server.crt')}`,
    );
    expect(r.code).toBe(exit.SERVER_CERT_REVOKED);
  });
});

describe('start-up with a bad CRL', () => {
  it('exits 4 naming TLS_CRL_FILE when the CRL is signed by another CA', async () => {
    const other = await tempDir();
    try {
      await generateBundle(bundleOptions(other.path));
      const r = await runTs('src/bin/server.ts', [], {
        GRPC_ADDRESS: '127.0.0.1:0',
        ...pkiEnv(pki),
        TLS_CRL_FILE: join(other.path, 'ca.crl'),
      });
      expect(r.stderr).toMatch(
        /TLS_CRL_FILE \(.*ca\.crl\) is refused: it is not signed by the trusted CA; re-sign it with `npm run gen-certs`/,
      );
      expect(r.code).toBe(exit.TLS_INVALID);
    } finally {
      await other.remove();
    }
  });
});

describe('the CRL expiry warning', () => {
  it('warns at load when the CRL passes its nextUpdate within a week, and not otherwise', async () => {
    const warnings: { obj: object; msg: string }[] = [];
    const log = {
      info: () => {},
      error: () => {},
      warn: (obj: object, msg: string) => warnings.push({ obj, msg }),
    };
    const files = { ...tlsFiles(), crlFile: join(dir.path, 'soon.crl') };
    const sign = (days: number) =>
      buildCrl({
        caCertPem: readFileSync(join(pki, 'ca.crt'), 'utf8'),
        caKeyPem: readFileSync(join(pki, 'ca.key'), 'utf8'),
        entries: [],
        number: 1n,
        days,
      });
    await writeFile(files.crlFile, sign(30));
    new TlsReloader(files, 'server', await loadTlsMaterial(files, 'server'), log, () => {});
    expect(warnings).toEqual([]);
    await writeFile(files.crlFile, sign(3));
    new TlsReloader(files, 'server', await loadTlsMaterial(files, 'server'), log, () => {});
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toMatch(
      /^CRL expires in 3\.0 days; re-sign it with `npm run gen-certs`$/,
    );
    expect(warnings[0]?.obj).toMatchObject({ crlFile: files.crlFile });
  });
});
