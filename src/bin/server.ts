// Entry point of `npm start`: settings, then the server, then signals.
import * as exit from '../exit-codes.js';
import { createLoggers } from '../logging.js';
import { UsageError } from '../options.js';
import { parseServerConfig, serverHelp } from '../server-config.js';
import { BindError, EchoServer } from '../server.js';
import { TlsFileError, TlsInvalidError } from '../tls-material.js';

function fail(code: number, message: string): never {
  process.stderr.write(`server: ${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseServerConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof UsageError) fail(exit.USAGE, err.message);
    throw err;
  }
  if (parsed.help) {
    process.stdout.write(serverHelp());
    return;
  }
  const { config } = parsed;
  const { log, access } = createLoggers(config.logLevel, 'grpc-server');
  let server: EchoServer;
  try {
    server = await EchoServer.create(config, log, access);
    await server.start();
  } catch (err) {
    const e = err as Error;
    const code =
      e instanceof TlsFileError
        ? exit.FILE_UNREADABLE
        : e instanceof TlsInvalidError
          ? exit.TLS_INVALID
          : e instanceof BindError
            ? exit.BIND_FAILED
            : exit.UNEXPECTED;
    log.fatal({ err: e.message }, 'refusing to start');
    log.flush();
    fail(code, e.message);
  }
  const stop = (signal: string) => {
    log.info({ signal }, 'signal received');
    server.shutdown().then(
      () => process.exit(exit.OK),
      (err: unknown) => fail(exit.UNEXPECTED, `shutdown failed: ${(err as Error).message}`),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  // SIGHUP: look for rotated TLS files now instead of at the next poll.
  process.on('SIGHUP', () => void server.reloader.check());
}

main().catch((err: unknown) => fail(exit.UNEXPECTED, (err as Error).stack ?? String(err)));
