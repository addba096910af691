// "The server refused, for this reason": a refusal test shows the server's own
// log line and code, not only that the client failed, so a wrong reason fails it.
import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createSecureServer } from 'node:http2';
import { createSecureContext } from 'node:tls';
import { expect } from 'vitest';
import { loadEchoProto } from '../../src/shared/proto.js';

/** Where a server's log lines are: an in-process LogCapture, or a child's ({ lines, waitFor: waitForLog }). */
export interface LogSource {
  lines: Record<string, unknown>[];
  waitFor(match: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}

/**
 * Channel credentials that present whatever they are given and check nothing
 * of their own: OpenSSL security level 0 (Node would otherwise refuse to load a
 * SHA-1 certificate) and no checks of dates or usage (the client library's
 * TlsReloader refuses a not-yet-valid certificate before connecting).
 */
export async function presentingCredentials(files: {
  caFile: string;
  certFile?: string;
  keyFile?: string;
}): Promise<grpc.ChannelCredentials> {
  const context = createSecureContext({
    ca: await readFile(files.caFile),
    ...(files.certFile !== undefined ? { cert: await readFile(files.certFile) } : {}),
    ...(files.keyFile !== undefined ? { key: await readFile(files.keyFile) } : {}),
    ciphers: 'DEFAULT@SECLEVEL=0',
  });
  return grpc.credentials.createFromSecureContext(context);
}

/** One Echo to `target` (its certificate names `localhost`); the error, or null when answered. */
export function echoOnce(
  target: string,
  creds: grpc.ChannelCredentials,
  deadlineMs = 3000,
): Promise<grpc.ServiceError | null> {
  const Ctor = loadEchoProto().echo.v1.EchoService;
  const client = new Ctor(target, creds, { 'grpc.ssl_target_name_override': 'localhost' });
  return new Promise((resolve) => {
    client.Echo({ message: 'x' }, { deadline: Date.now() + deadlineMs }, (err) => {
      client.close();
      resolve(err);
    });
  });
}

export interface ExpectedRefusal {
  /** The `code` field of the server's "TLS handshake refused" line. */
  code: string | RegExp;
  /** What its `reason` field must say. */
  reason: RegExp;
  /**
   * The CN of the certificate presented, which the line names: it tells this
   * attempt's line from a late one of an earlier test (grpc-js reconnects).
   * Omitted: the line of a handshake without a certificate.
   */
  commonName?: string;
}

/**
 * Runs `attempt` and checks that the server refused it at the handshake: the
 * client sees UNAVAILABLE (never an answer, never a deadline), and the server
 * logged "TLS handshake refused" with the code and reason expected.
 */
export async function expectHandshakeRefused(
  logs: LogSource,
  attempt: () => Promise<grpc.ServiceError | null>,
  expected: ExpectedRefusal,
): Promise<Record<string, unknown>> {
  const from = logs.lines.length;
  const err = await attempt();
  expect(err?.code, `client saw ${err?.details ?? 'an answer'}`).toBe(grpc.status.UNAVAILABLE);
  const ours = (l: Record<string, unknown>) =>
    expected.commonName === undefined
      ? l.subject === undefined
      : String(l.subject).split(', ').includes(`CN=${expected.commonName}`);
  const line = await logs.waitFor(
    (l) => logs.lines.indexOf(l) >= from && l.msg === 'TLS handshake refused' && ours(l),
  );
  // A warning: pino's number in process, the label the server's own formatter writes.
  expect([40, 'warn']).toContain(line.level);
  if (typeof expected.code === 'string') expect(line.code).toBe(expected.code);
  else expect(String(line.code)).toMatch(expected.code);
  expect(String(line.reason)).toMatch(expected.reason);
  return line;
}

/**
 * A bare HTTP/2 server presenting `leaf` at OpenSSL security level 0, so that
 * it can present a weak certificate at all; it answers any stream with OK and
 * counts them, so a test can show the client never sent one.
 */
export async function startPresentingServer(leaf: { certFile: string; keyFile: string }) {
  const server = createSecureServer({
    cert: await readFile(leaf.certFile),
    key: await readFile(leaf.keyFile),
    ciphers: 'DEFAULT@SECLEVEL=0',
  });
  const state = { streams: 0 };
  server.on('stream', (stream) => {
    state.streams += 1;
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '0' });
    stream.end();
  });
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as { port: number }).port,
    streams: () => state.streams,
    close: () => server.close(),
  };
}
