import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoClient } from '../src/client/client.js';
import { SecretVolume } from '../scripts/soak/secret-volume.js';
import type { EchoServer } from '../src/server/server.js';
import { CLIENT_ID, loadCa, makePki, tempDir, writeCa, writeLeaf } from './helpers/pki.js';
import { clientFor, startInProcess, type LogCapture } from './helpers/server.js';

/** The serial of the certificate a new TLS connection is served. */
async function servedSerial(port: number, ca: Buffer, pki: string): Promise<string> {
  const socket = tlsConnect({
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    ca,
    cert: await readFile(join(pki, 'client.crt')),
    key: await readFile(join(pki, 'client.key')),
    ALPNProtocols: ['h2'],
  });
  await once(socket, 'secureConnect');
  const serial = socket.getPeerCertificate().serialNumber;
  socket.destroy();
  return serial;
}

let dir: Awaited<ReturnType<typeof tempDir>>;
let pki: string;
let volume: SecretVolume;
let server: EchoServer;
let port: number;
let logs: LogCapture;
let caPem: string;
const clients: EchoClient[] = [];

async function serverLeaf(name: string) {
  return writeLeaf(dir.path, name, await loadCa(pki), {
    usage: 'server',
    commonName: 'grpc-server',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
}

beforeAll(async () => {
  dir = await tempDir();
  pki = join(dir.path, 'pki');
  await makePki(pki);
  caPem = await readFile(join(pki, 'ca.crt'), 'utf8');
  volume = new SecretVolume(join(dir.path, 'secret'));
  await volume.write({
    'tls.crt': await readFile(join(pki, 'server.crt'), 'utf8'),
    'tls.key': await readFile(join(pki, 'server.key'), 'utf8'),
    'ca.crt': caPem,
  });
  ({ server, port, logs } = await startInProcess(pki, {
    TLS_CERT_FILE: join(volume.path, 'tls.crt'),
    TLS_KEY_FILE: join(volume.path, 'tls.key'),
    TLS_CA_FILE: join(volume.path, 'ca.crt'),
    TLS_RELOAD_INTERVAL_MS: '100',
    LOG_LEVEL: 'warn',
  }));
  // Keep the reload lines even at warn: they are what the tests wait on.
  logs.logger.level = 'info';
});
afterAll(async () => {
  for (const c of clients) c.close();
  await server.shutdown();
  await dir.remove();
});

describe('certificate rotation without restart', () => {
  it('serves a swapped certificate to new connections while an existing channel loses no call', async () => {
    const existing = clientFor(pki, `127.0.0.1:${port}`, 'client', { serverName: 'localhost' });
    clients.push(existing);
    await existing.echo('before');
    let stop = false;
    let calls = 0;
    const failures: unknown[] = [];
    const loop = (async () => {
      while (!stop) {
        calls++;
        await existing.echo(`call ${calls}`).catch((e: unknown) => failures.push(e));
      }
    })();

    const next = await serverLeaf('server-2');
    const reloaded = logs.waitFor(
      (l) => l.msg === 'reloaded TLS credentials; new connections use them',
    );
    await volume.write({
      'tls.crt': await readFile(next.certFile, 'utf8'),
      'tls.key': await readFile(next.keyFile, 'utf8'),
      'ca.crt': caPem,
    });
    await reloaded;
    expect(await servedSerial(port, Buffer.from(caPem), pki)).toBe(
      next.leaf.cert.serialNumber.toUpperCase(),
    );
    const fresh = clientFor(pki, `127.0.0.1:${port}`, 'client', { serverName: 'localhost' });
    clients.push(fresh);
    expect((await fresh.echo('after')).message).toBe('after');

    stop = true;
    await loop;
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(1);
  });

  it('refuses a key that does not match and keeps the last good credentials', async () => {
    const good = await servedSerial(port, Buffer.from(caPem), pki);
    const a = await serverLeaf('server-3');
    const b = await serverLeaf('server-4');
    const refused = logs.waitFor(
      (l) =>
        l.msg === 'refused new TLS files; still using the last good credentials' &&
        String(l.err).includes('does not match'),
    );
    await volume.write({
      'tls.crt': await readFile(a.certFile, 'utf8'),
      'tls.key': await readFile(b.keyFile, 'utf8'),
      'ca.crt': caPem,
    });
    const line = await refused;
    expect(line.level).toBe(50);
    expect(await servedSerial(port, Buffer.from(caPem), pki)).toBe(good);
    const c = clientFor(pki, `127.0.0.1:${port}`, 'client', { serverName: 'localhost' });
    clients.push(c);
    expect((await c.echo('still serving')).message).toBe('still serving');
  });

  it('refuses a half-written certificate and a certificate without serverAuth', async () => {
    const good = await servedSerial(port, Buffer.from(caPem), pki);
    const half = await serverLeaf('server-5');
    const pem = await readFile(half.certFile, 'utf8');
    const truncated = logs.waitFor((l) => String(l.err).includes('holds no PEM certificate'));
    await volume.write({
      'tls.crt': pem.slice(0, pem.length / 2),
      'tls.key': await readFile(half.keyFile, 'utf8'),
      'ca.crt': caPem,
    });
    await truncated;
    const noServerAuth = logs.waitFor((l) =>
      String(l.err).includes('lacks the serverAuth extended key usage'),
    );
    await volume.write({
      'tls.crt': await readFile(join(pki, 'client.crt'), 'utf8'),
      'tls.key': await readFile(join(pki, 'client.key'), 'utf8'),
      'ca.crt': caPem,
    });
    await noServerAuth;
    expect(await servedSerial(port, Buffer.from(caPem), pki)).toBe(good);
  });

  it('refuses a rotation to a certificate the certificate policy refuses, naming why', async () => {
    const good = await servedSerial(port, Buffer.from(caPem), pki);
    const weak = await writeLeaf(
      dir.path,
      'server-weak',
      await loadCa(pki),
      { usage: 'server', commonName: 'grpc-server', dnsNames: ['localhost'] },
      { rsaBits: 1024 },
    );
    const refused = logs.waitFor((l) =>
      String(l.err).includes('is refused by the certificate policy: RSA key of 1024 bits'),
    );
    await volume.write({
      'tls.crt': await readFile(weak.certFile, 'utf8'),
      'tls.key': await readFile(weak.keyFile, 'utf8'),
      'ca.crt': caPem,
    });
    await refused;
    expect(await servedSerial(port, Buffer.from(caPem), pki)).toBe(good);
  });

  it('accepts clients of both CAs when the bundle holds the old and the new CA', async () => {
    const newCa = await writeCa(dir.path, 'new-ca');
    const newClient = await writeLeaf(dir.path, 'new-client', newCa, { spiffeId: CLIENT_ID });
    const current = await serverLeaf('server-6');
    const reloaded = logs.waitFor(
      (l) => l.msg === 'reloaded TLS credentials; new connections use them' && l.caCount === 2,
    );
    await volume.write({
      'tls.crt': await readFile(current.certFile, 'utf8'),
      'tls.key': await readFile(current.keyFile, 'utf8'),
      'ca.crt': caPem + newCa.certPem,
    });
    await reloaded;
    const oldSide = clientFor(pki, `127.0.0.1:${port}`, 'client', { serverName: 'localhost' });
    const newSide = new EchoClient({
      target: `127.0.0.1:${port}`,
      serverName: 'localhost',
      caFile: join(pki, 'ca.crt'),
      certFile: newClient.certFile,
      keyFile: newClient.keyFile,
      deadlineMs: 5000,
    });
    clients.push(oldSide, newSide);
    expect((await oldSide.echo('old CA')).caller).toBe(CLIENT_ID);
    expect((await newSide.echo('new CA')).caller).toBe(CLIENT_ID);
  });

  it('refuses a client of a CA that is not in the bundle', async () => {
    const stranger = await writeCa(dir.path, 'stranger-ca');
    const leaf = await writeLeaf(dir.path, 'stranger', stranger, { spiffeId: CLIENT_ID });
    const c = new EchoClient({
      target: `127.0.0.1:${port}`,
      serverName: 'localhost',
      caFile: join(pki, 'ca.crt'),
      certFile: leaf.certFile,
      keyFile: leaf.keyFile,
      deadlineMs: 2000,
    });
    clients.push(c);
    await expect(c.echo('x')).rejects.toMatchObject({
      code: expect.toSatisfy(
        (code: grpc.status) =>
          code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED,
      ) as unknown,
    });
  });
});
