// Structured JSON logs (pino). Messages describe certificates by subject,
// serial and expiry only; key material never reaches a log line.
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { identityFromPeer } from './identity.js';

export const LOG_LEVELS: readonly LevelWithSilent[] = [
  'trace',
  'debug',
  'info',
  'warn',
  'error',
  'fatal',
  'silent',
];

export function createLogger(level: LevelWithSilent, name: string): Logger {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // Belt and braces: these field names are never logged even if a caller passes them.
    redact: { paths: ['key', 'privateKey', '*.key', '*.privateKey'], remove: true },
  });
}

/**
 * One line per RPC at info (method, caller, status, duration). Installed only
 * when info is enabled, so turning the level down also removes its cost.
 */
export function rpcLoggingInterceptor(log: Logger): grpc.ServerInterceptor {
  return (method, call) => {
    const started = process.hrtime.bigint();
    return new grpc.ServerInterceptingCall(call, {
      sendStatus: (status, next) => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        const caller = identityFromPeer(call.getAuthContext().sslPeerCertificate)?.id ?? 'unknown';
        log.info(
          {
            method: method.path,
            caller,
            code: grpc.status[status.code],
            ms: Math.round(ms * 1000) / 1000,
          },
          'rpc',
        );
        next(status);
      },
    });
  };
}
