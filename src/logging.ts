// Structured JSON logs (pino). Messages describe certificates by subject,
// serial and expiry only; key material never reaches a log line.
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger, type LevelWithSilent } from 'pino';

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

/** The line each RPC gets at info: method, verified caller, status, duration. */
export function logRpc(
  log: Logger,
  method: string,
  caller: string | null,
  code: grpc.status,
  ms: number,
): void {
  log.info(
    {
      method,
      caller: caller ?? 'unknown',
      code: grpc.status[code],
      ms: Math.round(ms * 1000) / 1000,
    },
    'rpc',
  );
}
