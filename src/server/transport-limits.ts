// Limits below gRPC that grpc-js does not expose as options: HTTP/2 settings
// of Node's server, and a cap on connections per listener. Together with the
// message size and stream limits they bound what one caller can make the
// server hold (docs/reliability.md, "Memory bound").
import type * as grpc from '@grpc/grpc-js';
import type { EventEmitter } from 'node:events';
import { constants, type SecureServerOptions, type ServerHttp2Session } from 'node:http2';
import type { Logger } from 'pino';
import { RotatingServerCredentials, type CredentialOptions } from '../tls/server-credentials.js';
import type { TlsMaterial } from '../tls/material.js';

/** What grpcServerOptions reads from the server's settings (config.ts). */
export interface GrpcLimits {
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  maxConnectionAgeMs: number;
  maxConnectionAgeGraceMs: number;
  maxMessageBytes: number;
  maxConcurrentStreams: number;
  maxSessionMemoryMiB: number;
}

/** grpc-js's own server options for the connection lifetime and the limits it offers. */
export function grpcServerOptions(c: GrpcLimits): grpc.ServerOptions {
  return {
    'grpc.keepalive_time_ms': c.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': c.keepaliveTimeoutMs,
    'grpc.max_connection_age_ms': c.maxConnectionAgeMs,
    'grpc.max_connection_age_grace_ms': c.maxConnectionAgeGraceMs,
    'grpc.max_receive_message_length': c.maxMessageBytes,
    'grpc.max_send_message_length': c.maxMessageBytes,
    'grpc.max_concurrent_streams': c.maxConcurrentStreams,
    // grpc-js turns Node's per-connection limit off unless given one (docs/reliability.md, "Memory bound").
    'grpc-node.max_session_memory': c.maxSessionMemoryMiB,
    // No channelz service is offered, and its bookkeeping costs every call (two
    // Dates, a tracker) and every message. Off, grpc-js 1.14.7's forceShutdown()
    // no longer finds the sessions to cut: destroySessions() below does.
    'grpc.enable_channelz': 0,
  };
}

/**
 * Cuts every connection the server still holds, with its streams (after
 * forceShutdown(), which stops the listeners). grpc-js keeps each listener's
 * sessions in the private field tls/listeners.ts also reaches; the shutdown
 * test notices if that changes. Returns how many were cut.
 */
export function destroySessions(server: grpc.Server): number {
  const servers = (server as unknown as { http2Servers?: Map<unknown, { sessions?: unknown }> })
    .http2Servers;
  if (!(servers instanceof Map)) return 0;
  let cut = 0;
  for (const { sessions } of servers.values()) {
    if (!(sessions instanceof Set)) continue;
    for (const session of sessions as Set<ServerHttp2Session>) {
      if (session.destroyed) continue;
      // Node's destroy(code): a number as the first argument is the GOAWAY code
      // (as grpc-js's forceShutdown passes it); destroy(undefined, code) would send NO_ERROR.
      (session.destroy as unknown as (code: number) => void).call(
        session,
        constants.NGHTTP2_CANCEL,
      );
      cut += 1;
    }
  }
  return cut;
}

export interface Http2Limits {
  maxConcurrentStreams: number;
  maxHeaderListBytes: number;
}

/** Node's HTTP/2 server options for these limits; every other value as Node sets it, stated. */
export function http2Options(limits: Http2Limits): SecureServerOptions {
  return {
    settings: {
      // grpc-js sets this one itself, but `settings` replaces its object whole.
      maxConcurrentStreams: limits.maxConcurrentStreams,
      // Headers (and so metadata) a request may carry, uncompressed: an HPACK bomb stops here.
      maxHeaderListSize: limits.maxHeaderListBytes,
      // The HPACK table we let callers fill (RFC 9113's default).
      headerTableSize: 4096,
    },
    // Node's defaults, stated so that a change of Node's cannot loosen them unnoticed:
    // streams refused in a row before the connection goes (rapid reset, stream floods),
    maxSessionRejectedStreams: 100,
    // malformed frames tolerated before the connection goes,
    maxSessionInvalidFrames: 1000,
    // PINGs of ours awaiting an answer, entries in one SETTINGS frame,
    maxOutstandingPings: 10,
    maxSettings: 32,
    // header fields in one request.
    maxHeaderListPairs: 128,
  };
}

/** The rotating mTLS credentials, with Node's HTTP/2 limits added to the server they create. */
export class LimitedServerCredentials extends RotatingServerCredentials {
  private readonly http2: SecureServerOptions;

  constructor(material: TlsMaterial, options: CredentialOptions, limits: Http2Limits) {
    super(material, options);
    this.http2 = http2Options(limits);
  }

  // grpc-js spreads these over its own options when it creates each listener.
  override _getConstructorOptions(): SecureServerOptions | null {
    return { ...super._getConstructorOptions(), ...this.http2 };
  }
}

/** At most this many refusals logged a second; the rest are counted in one line. */
const DROP_LOG_BUDGET = 5;

/**
 * Caps the connections each listener holds at once (TLS handshakes in progress
 * included): Node closes any beyond at once, and each is counted and logged,
 * rate-limited since any peer can trigger it.
 */
export function limitConnections(server: grpc.Server, max: number, log: Logger): void {
  // grpc-js keeps its HTTP/2 servers private; tls/listeners.ts reaches the same field.
  const servers = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers;
  if (!(servers instanceof Map)) {
    log.warn('cannot limit connections with this grpc-js version: MAX_CONNECTIONS not applied');
    return;
  }
  let windowStart = 0;
  let inWindow = 0;
  for (const listener of servers.keys()) {
    (listener as unknown as { maxConnections: number }).maxConnections = max;
    listener.on('drop', (data?: { remoteAddress?: string }) => {
      const now = Date.now();
      if (now - windowStart > 1000) {
        if (inWindow > DROP_LOG_BUDGET) {
          log.warn({ suppressed: inWindow - DROP_LOG_BUDGET }, 'refused connections not logged');
        }
        windowStart = now;
        inWindow = 0;
      }
      if (++inWindow > DROP_LOG_BUDGET) return;
      log.warn(
        { peer: data?.remoteAddress ?? 'unix socket', maxConnections: max },
        'connection refused: MAX_CONNECTIONS reached',
      );
    });
  }
}

export interface MemorySettings {
  maxMessageBytes: number;
  maxConcurrentStreams: number;
  maxSessionMemoryMiB: number;
  maxConnections: number;
}

/** What one call may make the server hold, beyond its messages: windows and stream buffers. */
const CALL_OVERHEAD_BYTES = 256 * 1024;
/** One connection's TLS and socket buffers. */
const CONNECTION_OVERHEAD_BYTES = 256 * 1024;

/**
 * The most a caller can make the server hold, in bytes (docs/reliability.md, "Memory bound").
 * A call: the request being received, one read ahead and the one in hand, and
 * the reply window plus the reply that filled it: 4 messages and the
 * HTTP/2 and stream buffers. A connection: every stream at once, and Node's
 * HTTP/2 session memory. Overall: every connection of a listener.
 */
export function memoryBound(s: MemorySettings): {
  perCall: number;
  perConnection: number;
  overall: number;
} {
  const perCall = 4 * s.maxMessageBytes + CALL_OVERHEAD_BYTES;
  const perConnection =
    s.maxConcurrentStreams * perCall +
    s.maxSessionMemoryMiB * 1024 * 1024 +
    CONNECTION_OVERHEAD_BYTES;
  return { perCall, perConnection, overall: s.maxConnections * perConnection };
}
