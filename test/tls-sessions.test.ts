// TLS sessions are never resumed (src/tls/server-credentials.ts): a client that
// offers the session of its last connection, on TLS 1.3 or 1.2, gets a full
// handshake, in which it must present its certificate again; so does one after
// a rotation, whose new secure context is made by the same code. The TLS 1.2
// case also fails if anything gives the server a session store (a 'newSession'
// and 'resumeSession' listener would resume TLS 1.2 sessions by ID).
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type SecureVersion } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretVolume } from '../scripts/soak/secret-volume.js';
import type { EchoServer } from '../src/server/server.js';
import { loadCa, makePki, tempDir, writeLeaf } from './helpers/pki.js';
import { startInProcess, type LogCapture } from './helpers/server.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let pki: string;
let volume: SecretVolume;
let server: EchoServer;
let port: number;
let logs: LogCapture;

/** The server's files as a Secret volume, so that a test can rotate them as the kubelet does. */
async function serveFrom(cert: string, key: string): Promise<void> {
  await volume.write({
    'tls.crt': await readFile(cert, 'utf8'),
    'tls.key': await readFile(key, 'utf8'),
    'ca.crt': await readFile(join(pki, 'ca.crt'), 'utf8'),
  });
}

beforeAll(async () => {
  dir = await tempDir('tls-sessions-');
  pki = join(dir.path, 'pki');
  await makePki(pki);
  volume = new SecretVolume(join(dir.path, 'secret'));
  await serveFrom(join(pki, 'server.crt'), join(pki, 'server.key'));
  ({ server, port, logs } = await startInProcess(pki, {
    TLS_CERT_FILE: volume.file('tls.crt'),
    TLS_KEY_FILE: volume.file('tls.key'),
    TLS_CA_FILE: volume.file('ca.crt'),
    TLS_RELOAD_INTERVAL_MS: '100',
  }));
});
afterAll(async () => {
  await server.shutdown();
  await dir.remove();
});

interface Handshake {
  /** Whether the handshake resumed the offered session. */
  reused: boolean;
  /** The first session the server sends to resume with (TLS 1.3 sends it after the handshake). */
  session: Promise<Buffer>;
  /** The error that ended the connection; null if it closed without one. */
  ended: Promise<Error | null>;
  close: () => void;
}

/**
 * One TLS connection as a client, up to the end of its handshake, offering
 * `session` and presenting the client certificate unless `certificate` is false.
 */
async function handshake(
  version: SecureVersion,
  session?: Buffer,
  certificate = true,
): Promise<Handshake> {
  const file = (name: string) => readFile(join(pki, name));
  const socket = connect({
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    ALPNProtocols: ['h2'],
    minVersion: version,
    maxVersion: version,
    ca: await file('ca.crt'),
    ...(certificate ? { cert: await file('client.crt'), key: await file('client.key') } : {}),
    ...(session === undefined ? {} : { session }),
  });
  const sent = new Promise<Buffer>((resolve) => socket.once('session', resolve));
  const ended = new Promise<Error | null>((resolve) => {
    socket.once('error', resolve);
    socket.once('close', () => resolve(null));
  });
  await once(socket, 'secureConnect');
  return { reused: socket.isSessionReused(), session: sent, ended, close: () => socket.destroy() };
}

/** What a client keeps from a full handshake to resume with. */
async function lastSession(version: SecureVersion): Promise<Buffer> {
  const first = await handshake(version);
  const session = await first.session;
  first.close();
  expect(first.reused).toBe(false);
  return session;
}

describe('TLS sessions', () => {
  it.each(['TLSv1.3', 'TLSv1.2'] as const)(
    'are not resumed: a client that offers its last one gets a full handshake (%s)',
    async (version) => {
      const second = await handshake(version, await lastSession(version));
      second.close();
      expect(second.reused).toBe(false);
    },
  );

  it('are no substitute for a certificate: a client that offers one but presents none is refused for sending none', async () => {
    const session = await lastSession('TLSv1.3');
    const from = logs.lines.length;
    // TLS 1.3: the client's side of the handshake ends before the server has checked it.
    const attempt = await handshake('TLSv1.3', session, false);
    try {
      // First: a resumed session would leave the connection open, and `ended` unsettled.
      expect(attempt.reused).toBe(false);
      expect(await attempt.ended).toMatchObject({
        code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
      });
    } finally {
      attempt.close();
    }
    const line = await logs.waitFor(
      (l) => logs.lines.indexOf(l) >= from && l.msg === 'TLS handshake refused',
    );
    expect(line.code).toBe('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE');
  });

  it('are not resumed after a rotation either', async () => {
    const next = await writeLeaf(dir.path, 'server-2', await loadCa(pki), {
      usage: 'server',
      commonName: 'grpc-server',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    const reloaded = logs.waitFor(
      (l) => l.msg === 'reloaded TLS credentials; new connections use them',
    );
    await serveFrom(next.certFile, next.keyFile);
    await reloaded;
    for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
      const second = await handshake(version, await lastSession(version));
      second.close();
      expect(second.reused, version).toBe(false);
    }
  });
});
