// echo.v1.EchoService: one RPC of each gRPC kind, each answering with the
// server's id and the caller's verified identity.
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import type { EchoResponse } from '../generated/echo/v1/EchoResponse.js';
import type { EchoServiceHandlers } from '../generated/echo/v1/EchoService.js';
import { identityFromPeer, type CallerIdentity } from '../tls/identity.js';
import { ReplyEncoders, type EncodedReply } from './echo-replies.js';
import { ReplyWindow, readOneAhead } from './reply-window.js';

/** Bounds for ServerStream: enough for demos and soak tests, too little to pin a server. */
export const STREAM_LIMITS = { maxCount: 1000, maxIntervalMs: 10_000 } as const;
/** Summaries quote at most this much of a message, so replies stay small. */
const SUMMARY_CHARS = 64;

type AnyCall = { getAuthContext(): { sslPeerCertificate?: PeerCertificate } };

function caller(call: AnyCall): CallerIdentity | null {
  return identityFromPeer(call.getAuthContext().sslPeerCertificate);
}

const clip = (s: string): string =>
  s.length > SUMMARY_CHARS ? `${s.slice(0, SUMMARY_CHARS)}…` : s;

/** What grpc-js is handed for an EchoResponse: its bytes, sent by passEncodedReplies' serializer. */
const asResponse = (reply: EncodedReply) => reply as unknown as EchoResponse;

/**
 * The handlers. `serialize` is the EchoResponse serializer of the service they
 * are added with, which must pass encoded replies through (passEncodedReplies).
 */
export function echoHandlers(
  serverId: string,
  serialize: (value: EchoResponse) => Buffer,
): EchoServiceHandlers {
  const encoders = new ReplyEncoders(serialize, serverId);
  return {
    Echo(call, callback) {
      const encoder = encoders.of(caller(call)?.id ?? '');
      callback(null, asResponse(encoder.reply(call.request.message, 0)));
    },

    ServerStream(call) {
      const { count, interval_ms: interval, message } = call.request;
      if (count < 1 || count > STREAM_LIMITS.maxCount || interval > STREAM_LIMITS.maxIntervalMs) {
        call.emit('error', {
          code: grpc.status.INVALID_ARGUMENT,
          details: `count must be 1 to ${STREAM_LIMITS.maxCount} (got ${count}) and interval_ms 0 to ${STREAM_LIMITS.maxIntervalMs} (got ${interval})`,
        });
        return;
      }
      const replyOf = encoders.of(caller(call)?.id ?? '').repeating(message);
      const next = (sequence: number) => asResponse(replyOf(sequence));
      const size = Buffer.byteLength(message);
      const window = new ReplyWindow(call);
      let sent = 0;
      if (interval === 0) {
        // As fast as the client reads: write until the window is full, then wait for room.
        const writeMore = (): void => {
          while (sent < count && !call.cancelled) {
            const more = window.write(next(sent++), size);
            if (!more && sent < count) {
              window.whenRoom(writeMore);
              return;
            }
          }
          if (!call.cancelled) call.end();
        };
        writeMore();
        return;
      }
      // One now, then one per interval; a tick that finds the window full is skipped,
      // so a caller that does not read delays its stream rather than filling our memory.
      let timer: NodeJS.Timeout | undefined;
      const tick = (): void => {
        if (call.cancelled || window.full) return;
        window.write(next(sent++), size);
        if (sent < count) return;
        clearInterval(timer);
        call.end();
      };
      tick();
      if (sent < count) timer = setInterval(tick, interval);
      call.on('cancelled', () => clearInterval(timer));
    },

    ClientStream(call, callback) {
      let count = 0;
      let bytes = 0;
      // Only the clipped ends are kept: endless input costs no memory.
      let first: string | null = null;
      let last = '';
      readOneAhead(call);
      call.on('data', (req: { message: string }) => {
        count += 1;
        bytes += Buffer.byteLength(req.message);
        first ??= clip(req.message);
        last = req.message;
      });
      call.on('end', () => {
        const summary = first === null ? '' : count === 1 ? first : `${first} … ${clip(last)}`;
        callback(null, {
          count,
          total_bytes: String(bytes),
          summary,
          server_id: serverId,
          caller: caller(call)?.id ?? '',
        });
      });
    },

    Chat(call) {
      const id = caller(call)?.id ?? '';
      let sequence = 0;
      // While replies wait for a caller that does not read them, stop reading its requests.
      const window = new ReplyWindow(call);
      readOneAhead(call);
      call.on('data', (req: { message: string }) => {
        const reply = {
          message: req.message,
          server_id: serverId,
          caller: id,
          sequence: sequence++,
        };
        if (!window.write(reply, Buffer.byteLength(req.message))) {
          call.pause();
          window.whenRoom(() => call.resume());
        }
      });
      call.on('end', () => call.end());
    },

    WhoAmI(call, callback) {
      const who = caller(call);
      if (who === null) {
        callback({ code: grpc.status.UNAUTHENTICATED, details: 'no verified client identity' });
        return;
      }
      callback(null, {
        identity: who.id,
        spiffe_id: who.spiffeId,
        common_name: who.commonName,
        serial: who.serial,
        not_after: who.notAfter,
        server_id: serverId,
      });
    },
  };
}
