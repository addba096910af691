// What the server adds to grpc-js's TLS listeners:
//  - refused handshakes (no certificate, wrong CA, expired, wrong usage) are
//    logged as warnings, at most 20 a second;
//  - each connection's peer certificate is read once. grpc-js's getAuthContext()
//    calls TLSSocket.getPeerCertificate(), which builds the whole object anew on
//    every call; the authorizer, the RPC log and the handler each ask, and the
//    benchmark profile showed it as 46% of the server's busy time. A connection's
//    certificate cannot change: HTTP/2 forbids TLS renegotiation (RFC 9113
//    9.2.1), and Node disables it on HTTP/2 sockets, so one read per connection
//    is the same answer.
//
// grpc-js keeps its HTTP/2 servers private; this reaches into the field it has
// held since 1.10. If that field changes, both additions are lost (tests notice:
// the warning test and the benchmark), never the refusals or the identities.
import type * as grpc from '@grpc/grpc-js';
import type { EventEmitter } from 'node:events';
import type { DetailedPeerCertificate, PeerCertificate, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';

/** A flood of bad handshakes must not become a flood of log lines. */
const HANDSHAKE_LOG_BUDGET = 20;

function cachePeerCertificate(socket: TLSSocket): void {
  const read = socket.getPeerCertificate.bind(socket) as (
    detailed?: boolean,
  ) => PeerCertificate | DetailedPeerCertificate;
  let cached: PeerCertificate | undefined;
  socket.getPeerCertificate = ((detailed?: boolean) => {
    if (detailed) return read(true);
    cached ??= read(false);
    return cached;
  }) as TLSSocket['getPeerCertificate'];
}

export function instrumentTlsListeners(server: grpc.Server, log: Logger): void {
  const servers = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers;
  if (!(servers instanceof Map)) {
    log.warn(
      'cannot instrument the TLS listeners of this grpc-js version: no handshake warnings, no certificate cache',
    );
    return;
  }
  let windowStart = 0;
  let inWindow = 0;
  for (const http2Server of servers.keys()) {
    http2Server.on('secureConnection', cachePeerCertificate);
    http2Server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      const now = Date.now();
      if (now - windowStart > 1000) {
        if (inWindow > HANDSHAKE_LOG_BUDGET) {
          log.warn(
            { suppressed: inWindow - HANDSHAKE_LOG_BUDGET },
            'TLS handshake failures not logged',
          );
        }
        windowStart = now;
        inWindow = 0;
      }
      if (++inWindow > HANDSHAKE_LOG_BUDGET) return;
      log.warn(
        { peer: socket.remoteAddress ?? 'unix socket', code: err.code, reason: err.message },
        'TLS handshake refused',
      );
    });
  }
}
