// Entry point of `npm run client`: settings, the command, signals.
import { runClient } from '../client/cli.js';
import { clientHelp, parseClientArgs } from '../client/config.js';
import { describeFailure } from '../shared/errors.js';
import * as exit from '../shared/exit-codes.js';

// grpc-js passes an IP target as the TLS server name, which Node flags as deprecated
// on every connection; the name is checked correctly, so the warning is only noise here.
process.noDeprecation = true;

async function main(): Promise<number> {
  // A bad setting throws a UsageError, ended below with its exit code.
  const inv = parseClientArgs(process.argv.slice(2), process.env);
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
    const { message, exitCode } = describeFailure(err);
    process.stderr.write(`client: ${message}\n`);
    process.exit(exitCode);
  },
);
