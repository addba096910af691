// Structured JSON logs (pino). Messages describe certificates by subject,
// serial and expiry only; key material never reaches a log line.
import * as grpc from '@grpc/grpc-js';
import { pino, type Logger, type LevelWithSilent, type LoggerOptions } from 'pino';
import { LogOutput } from './log-output.js';

export const LOG_LEVELS: readonly LevelWithSilent[] = [
  'trace',
  'debug',
  'info',
  'warn',
  'error',
  'fatal',
  'silent',
];

export interface ServerLoggers {
  /** Start-up, rotation, warnings, shutdown: written at once. */
  log: Logger;
  /** One line per RPC at info: gathered and written in batches (see log-output.ts). */
  access: Logger;
  output: LogOutput;
}

/**
 * ISO 8601 time, formatted once per millisecond: under load many lines share a
 * millisecond, and formatting a Date is a visible part of a line's cost.
 */
function isoTimeCached(): () => string {
  let lastMs = -1;
  let field = '';
  return () => {
    const now = Date.now();
    if (now !== lastMs) {
      lastMs = now;
      field = `,"time":"${new Date(now).toISOString()}"`;
    }
    return field;
  };
}

function options(level: LevelWithSilent, name: string): LoggerOptions {
  return {
    name,
    level,
    base: { pid: process.pid },
    timestamp: isoTimeCached(),
    formatters: { level: (label) => ({ level: label }) },
  };
}

/**
 * The general logger and the access logger, both on one output so lines stay in
 * order. The general logger also drops fields named like key material, should a
 * caller ever pass one; access lines have fixed fields (see logRpc) and skip
 * that pass, which was a third of their cost.
 */
/** Standard output, opened once however many loggers write to it. */
let stdoutOutput: LogOutput | undefined;

export function createLoggers(
  level: LevelWithSilent,
  name: string,
  output: LogOutput = (stdoutOutput ??= new LogOutput(1)),
): ServerLoggers {
  const log = pino(
    {
      ...options(level, name),
      redact: { paths: ['key', 'privateKey', '*.key', '*.privateKey'], remove: true },
    },
    output.immediate,
  );
  const access = pino(options(level, name), output.batched);
  return { log, access, output };
}

/**
 * The line each RPC gets at info: method, verified caller, status, duration,
 * and for an allowed call the policy rule that allowed it (a denied call has
 * no `rule`: none matched).
 */
export function logRpc(
  log: Logger,
  method: string,
  caller: string | null,
  code: grpc.status,
  ms: number,
  rule?: string,
): void {
  log.info(
    {
      method,
      caller: caller ?? 'unknown',
      code: grpc.status[code],
      ms: Math.round(ms * 1000) / 1000,
      rule,
    },
    'rpc',
  );
}
