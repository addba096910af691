// Entry point of `npm start`: settings, then the server, then signals.
import { constants } from 'node:os';
import { describeFailure } from '../shared/errors.js';
import * as exit from '../shared/exit-codes.js';
import { createLoggers } from '../shared/logging.js';
import { parseServerConfig, serverHelp } from '../server/config.js';
import { EchoServer } from '../server/server.js';

function fail(code: number, message: string): never {
  process.stderr.write(`server: ${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  // A bad setting throws a UsageError, ended by main's catch with its exit code.
  const parsed = parseServerConfig(process.argv.slice(2), process.env);
  if (parsed.help) {
    process.stdout.write(serverHelp());
    return;
  }
  const { config } = parsed;
  const { log, access } = createLoggers(config.logLevel, 'grpc-server');
  let server: EchoServer;
  // SIGHUP: look for rotated TLS files and a changed policy now instead of at the next
  // poll. Installed before the server starts, so that a SIGHUP sent as soon as the
  // "serving" line appears never meets Node's default action (exit).
  let created: EchoServer | undefined;
  process.on('SIGHUP', () => void created?.reloadNow());
  try {
    server = created = await EchoServer.create(config, log, access);
    await server.start();
  } catch (err) {
    const { message, exitCode } = describeFailure(err);
    log.fatal({ err: message }, 'refusing to start');
    log.flush();
    fail(exitCode, message);
  }
  let stopping = false;
  const stop = (signal: 'SIGTERM' | 'SIGINT') => {
    if (stopping) {
      // A second signal: stop now, as the default action would, but through
      // process.exit so that the gathered access lines are written first.
      log.warn({ signal }, 'second signal during shutdown: stopping at once');
      process.exit(128 + constants.signals[signal]);
    }
    stopping = true;
    log.info({ signal }, 'signal received');
    server.shutdown().then(
      () => process.exit(exit.OK),
      (err: unknown) => fail(exit.UNEXPECTED, `shutdown failed: ${(err as Error).message}`),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  const { message, exitCode } = describeFailure(err);
  fail(exitCode, message);
});
