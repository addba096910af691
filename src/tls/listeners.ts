// What the server adds to grpc-js's TLS listeners:
//  - each client certificate is held to cert-policy.ts at the end of the
//    handshake (key size, signature, CA:TRUE), and refused if it falls short;
//    the answer is kept by the certificate's fingerprint, so a client that
//    reconnects with the same certificate is not parsed and checked again;
//  - refused handshakes (no certificate, wrong CA, expired, wrong usage, weak
//    key or signature, CA:TRUE) are logged as warnings naming the reason, at
//    most 20 a second (log-limiter.ts);
//  - each connection's peer certificate is read once, and only what the server
//    uses of it is made at once (peer-certificate.ts). grpc-js's getAuthContext()
//    calls TLSSocket.getPeerCertificate(), which builds the whole object anew on
//    every call; the authorizer, the RPC log and the handler each ask, and the
//    benchmark profile showed it as 46% of the server's busy time. A connection's
//    certificate cannot change: HTTP/2 forbids TLS renegotiation (RFC 9113
//    9.2.1), and Node disables it on HTTP/2 sockets, so one read per connection
//    is the same answer.
//
// Naming the reason needs the certificate while the socket still has it. When
// OpenSSL or Node refuses (a verification error, security level 2), Node
// destroys the socket before any server event, and reports only "socket hang
// up" (and "UNSPECIFIED" for a weak key). So the first 'keylog' event of each
// connection (emitted during every handshake) is used to put a listener in
// front of Node's own on the socket's 'secure' event, which sees the
// certificate and the verification result first. The keylog line itself
// (traffic secrets) is ignored, never kept or logged.
//
// grpc-js keeps its HTTP/2 servers private; this reaches into the field it has
// held since 1.10. If that field changes, these additions are lost (tests
// notice: the warning tests and the benchmark), never the refusals: OpenSSL's
// security level still refuses weak keys and SHA-1, and the authorizer refuses
// calls from a certificate the policy refuses (authz.ts).
import type * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { DetailedPeerCertificate, PeerCertificate, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { certificateProblem } from './cert-policy.js';
import { peerCertificate } from './peer-certificate.js';
import { LogLimiter } from '../shared/log-limiter.js';

interface Refusal {
  /** Read while the socket is open: Node forgets it once it destroys a refused socket. */
  peer: string;
  code: string;
  reason: string;
  subject?: string;
  serial?: string;
}

/** What the handshake's end found wrong with a connection, if anything. */
const refusals = new WeakMap<TLSSocket, Refusal | null>();

function cachePeerCertificate(socket: TLSSocket): void {
  const read = socket.getPeerCertificate.bind(socket) as (
    detailed?: boolean,
  ) => PeerCertificate | DetailedPeerCertificate;
  let cached: PeerCertificate | undefined;
  socket.getPeerCertificate = ((detailed?: boolean) => {
    if (detailed) return read(true);
    cached ??= peerCertificate(socket, read);
    return cached;
  }) as TLSSocket['getPeerCertificate'];
}

const peerAddress = (socket: TLSSocket): string => socket.remoteAddress ?? 'unix socket';

/** Node's own verification result, read as Node itself reads it (TLSWrap.verifyError). */
function verifyError(socket: TLSSocket): NodeJS.ErrnoException | null {
  const handle = (socket as unknown as { _handle?: { verifyError?: () => unknown } })._handle;
  const err = typeof handle?.verifyError === 'function' ? handle.verifyError() : null;
  return err instanceof Error ? err : null;
}

/** What the policy says of a certificate, and how the logs name it. */
interface Checked {
  problem: string | null;
  subject: string;
  serial: string;
}

/**
 * By SHA-256 fingerprint: parsing and checking a certificate took about 160 µs,
 * on every new connection, for the same few client certificates. A
 * certificate's own bytes decide the policy's answer, so one check per
 * certificate is the same answer. Bounded, so that hostile churn cannot grow it.
 */
const checkedByFingerprint = new Map<string, Checked>();
const CHECKED_LIMIT = 1024;

function checkCertificate(peer: PeerCertificate): Checked {
  const key = peer.fingerprint256;
  const hit = checkedByFingerprint.get(key);
  if (hit !== undefined) return hit;
  const cert = new X509Certificate(peer.raw);
  const checked = {
    problem: certificateProblem(cert),
    subject: cert.subject.replaceAll('\n', ', '),
    serial: cert.serialNumber,
  };
  if (checkedByFingerprint.size >= CHECKED_LIMIT)
    checkedByFingerprint.delete(checkedByFingerprint.keys().next().value as string);
  checkedByFingerprint.set(key, checked);
  return checked;
}

/** Holds the peer certificate to the policy once the handshake is done; null when all is well. */
function inspect(socket: TLSSocket): Refusal | null {
  if (refusals.has(socket)) return refusals.get(socket) ?? null;
  cachePeerCertificate(socket);
  let refusal: Refusal | null = null;
  try {
    const peer = socket.getPeerCertificate();
    if (peer.raw !== undefined) {
      const { problem, subject, serial } = checkCertificate(peer);
      const about = { peer: peerAddress(socket), subject, serial };
      const verify = verifyError(socket);
      // Our reason first: for a weak key or signature OpenSSL's says only "UNSPECIFIED".
      if (problem !== null) refusal = { code: 'CERTIFICATE_POLICY', reason: problem, ...about };
      else if (verify !== null)
        refusal = { code: verify.code ?? 'VERIFY_FAILED', reason: verify.message, ...about };
    }
  } catch (err) {
    // Never let a certificate we cannot read throw inside Node's handshake events: refuse it.
    refusal = {
      peer: peerAddress(socket),
      code: 'CERTIFICATE_UNREADABLE',
      reason: (err as Error).message,
    };
  }
  refusals.set(socket, refusal);
  return refusal;
}

export function instrumentTlsListeners(
  server: grpc.Server,
  log: Logger,
  /** Told the code of every refused handshake, logged or not (the metrics count them). */
  onRefused: (code: string) => void = () => {},
): void {
  const servers = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers;
  if (!(servers instanceof Map)) {
    log.warn(
      'cannot instrument the TLS listeners of this grpc-js version: no handshake warnings, no certificate cache',
    );
    return;
  }
  const limiter = new LogLimiter(log, 'TLS handshake failures not logged');
  const warn = (refusal: Refusal) => {
    onRefused(refusal.code);
    if (!limiter.allow()) return;
    // A revoked certificate says so in the message itself, for operators grepping for it.
    const revoked = refusal.code === 'CERT_REVOKED';
    log.warn(
      refusal,
      revoked ? 'TLS handshake refused: certificate revoked' : 'TLS handshake refused',
    );
  };
  const hooked = new WeakSet<TLSSocket>();
  for (const http2Server of servers.keys()) {
    http2Server.on('keylog', (_line: Buffer, socket: TLSSocket) => {
      if (hooked.has(socket)) return;
      hooked.add(socket);
      socket.prependListener('secure', () => inspect(socket));
    });
    http2Server.on('secureConnection', (socket: TLSSocket) => {
      // Node and OpenSSL accepted it; the policy may not (a CA:TRUE leaf).
      const refusal = inspect(socket);
      if (refusal === null) return;
      warn(refusal);
      socket.destroy();
    });
    http2Server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      const refusal = refusals.get(socket) ?? {
        peer: peerAddress(socket),
        code: err.code ?? 'TLS_ERROR',
        reason: err.message.trim(),
      };
      warn(refusal);
    });
  }
}
