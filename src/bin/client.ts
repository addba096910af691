// Entry point of `npm run client`: settings, the command, signals.
import { runClient } from '../client/cli.js';
import { clientHelp, parseClientArgs } from '../client/config.js';
import * as exit from '../shared/exit-codes.js';
import { UsageError } from '../shared/options.js';

// grpc-js passes an IP target as the TLS server name, which Node flags as deprecated
// on every connection; the name is checked correctly, so the warning is only noise here.
process.noDeprecation = true;

async function main(): Promise<number> {
  let inv;
  try {
    inv = parseClientArgs(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`client: ${err.message}\n`);
      return exit.USAGE;
    }
    throw err;
  }
  if (inv === 'help') {
    process.stdout.write(clientHelp());
    return exit.OK;
  }
  const stop = new AbortController();
  process.once('SIGTERM', () => stop.abort());
  process.once('SIGINT', () => stop.abort());
  return runClient(inv, stop.signal);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`client: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(exit.UNEXPECTED);
  },
);
