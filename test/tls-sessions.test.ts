// TLS sessions are never resumed (src/tls/server-credentials.ts): a client that
// offers the session of its last connection, on TLS 1.3 or 1.2, gets a full
// handshake, in which it must present its certificate again.
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type SecureVersion } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EchoServer } from '../src/server/server.js';
import { makePki, tempDir } from './helpers/pki.js';
import { startInProcess, type LogCapture } from './helpers/server.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let server: EchoServer;
let port: number;
let logs: LogCapture;

beforeAll(async () => {
  dir = await tempDir('tls-sessions-');
  await makePki(dir.path);
  ({ server, port, logs } = await startInProcess(dir.path, { LOG_LEVEL: 'warn' }));
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
  const file = (name: string) => readFile(join(dir.path, name));
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

/** The session a first, full handshake was sent. */
async function lastSession(version: SecureVersion): Promise<Buffer> {
  const first = await handshake(version);
  expect(first.reused).toBe(false);
  const session = await first.session;
  first.close();
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

  it('refuse a client that offers a session but no certificate, for sending none', async () => {
    const session = await lastSession('TLSv1.3');
    const from = logs.lines.length;
    // TLS 1.3: the client's side of the handshake ends before the server has checked it.
    const attempt = await handshake('TLSv1.3', session, false);
    expect(attempt.reused).toBe(false);
    expect(await attempt.ended).toMatchObject({
      code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
    });
    const line = await logs.waitFor(
      (l) => logs.lines.indexOf(l) >= from && l.msg === 'TLS handshake refused',
    );
    expect(line.code).toBe('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE');
  });
});
