// Client settings: the same style as the server's, environment variables with
// matching flags, defaulting to a local server and the files in certs/.
import { join } from 'node:path';
import type { ClientOptions } from './client.js';
import {
  UsageError,
  boolean,
  formatHelp,
  integer,
  parseSettings,
  text,
} from '../shared/options.js';
import { metricsAddress } from '../shared/metrics-http.js';
import { PROJECT_ROOT } from '../shared/proto.js';

const certs = (name: string): string => join(PROJECT_ROOT, 'certs', name);

export const CLIENT_SETTINGS = {
  target: {
    flag: 'target',
    env: 'GRPC_TARGET',
    help: 'host:port, dns:///name:port (round-robin over every address) or unix:///path',
    default: 'localhost:50051',
    parse: text,
    valueName: 'TARGET',
  },
  caFile: {
    flag: 'tls-ca-file',
    env: 'TLS_CA_FILE',
    help: 'CA bundle trusted for the server certificate',
    default: certs('ca.crt'),
    parse: text,
    valueName: 'FILE',
  },
  crlFile: {
    flag: 'tls-crl-file',
    env: 'TLS_CRL_FILE',
    help: 'CRL signed by the CA (PEM, e.g. certs/ca.crl): refuses a revoked server certificate; empty checks none',
    default: '',
    parse: text,
    valueName: 'FILE',
  },
  certFile: {
    flag: 'tls-cert-file',
    env: 'TLS_CERT_FILE',
    help: 'client certificate (PEM)',
    default: certs('client.crt'),
    parse: text,
    valueName: 'FILE',
  },
  keyFile: {
    flag: 'tls-key-file',
    env: 'TLS_KEY_FILE',
    help: 'client private key (PEM)',
    default: certs('client.key'),
    parse: text,
    valueName: 'FILE',
  },
  serverName: {
    flag: 'tls-server-name',
    env: 'TLS_SERVER_NAME',
    help: 'name to verify the server certificate against (default: the dialled host)',
    default: '',
    parse: text,
    valueName: 'NAME',
  },
  deadlineMs: {
    flag: 'deadline-ms',
    env: 'GRPC_DEADLINE_MS',
    help: 'deadline of each call',
    default: 5000,
    parse: integer(1, 3_600_000),
    valueName: 'MS',
  },
  count: {
    flag: 'count',
    env: 'CLIENT_COUNT',
    help: 'stream: responses to ask for; loop: calls to make (0 = until stopped)',
    default: 0,
    parse: integer(0, 100_000_000),
    valueName: 'N',
  },
  intervalMs: {
    flag: 'interval-ms',
    env: 'CLIENT_INTERVAL_MS',
    help: 'stream and loop: time between messages or calls',
    default: 1000,
    parse: integer(0, 3_600_000),
    valueName: 'MS',
  },
  service: {
    flag: 'service',
    env: 'HEALTH_SERVICE',
    help: 'health: service to check ("" = the whole server)',
    default: '',
    parse: text,
    valueName: 'NAME',
  },
  metricsAddress: {
    flag: 'metrics-address',
    env: 'METRICS_ADDRESS',
    help: 'loop: serve Prometheus metrics (grpc_client_*) over plain HTTP at http://HOST:PORT/metrics; empty: none',
    default: '',
    parse: metricsAddress,
    valueName: 'HOST:PORT',
  },
  watch: {
    flag: 'watch',
    kind: 'boolean',
    help: 'health: stream every status change',
    default: false,
    parse: boolean,
  },
} as const;

export const COMMANDS = ['echo', 'stream', 'collect', 'chat', 'whoami', 'health', 'loop'] as const;
export type Command = (typeof COMMANDS)[number];

const USAGE = `Usage: npm run client -- <command> [args] [options]

Commands:
  echo <message>                       unary Echo
  stream [message] --count N --interval-ms M
                                       server streaming: N responses, M ms apart
  collect <messages...>                client streaming: send each, print the summary
  chat                                 bidirectional: lines from standard input, answers as they come
  whoami                               the identity the server verified from our certificate
  health [--service NAME] [--watch]    grpc.health.v1 Check (or Watch)
  loop --interval-ms M [--count N]     Echo continuously, one JSON line per call, a summary on exit`;

export function clientHelp(): string {
  return formatHelp(USAGE, CLIENT_SETTINGS, '\nExit codes are listed in the README.\n');
}

export interface ClientInvocation {
  command: Command;
  args: string[];
  options: ClientOptions;
  count: number;
  intervalMs: number;
  service: string;
  watch: boolean;
  /** loop: where to serve metrics; '' for none. */
  metricsAddress: string;
}

export function parseClientArgs(argv: string[], env: NodeJS.ProcessEnv): ClientInvocation | 'help' {
  const { values, positionals, help } = parseSettings(CLIENT_SETTINGS, argv, env);
  if (help) return 'help';
  const [command, ...args] = positionals;
  if (command === undefined)
    throw new UsageError(`no command given; one of ${COMMANDS.join(', ')} (see --help)`);
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new UsageError(
      `unknown command ${JSON.stringify(command)}; one of ${COMMANDS.join(', ')}`,
    );
  }
  if (command === 'echo' && args.length !== 1)
    throw new UsageError('echo takes exactly one message: npm run client -- echo "hello"');
  if (command === 'collect' && args.length === 0)
    throw new UsageError('collect takes one or more messages: npm run client -- collect a b c');
  if (command === 'stream' && values.count === 0)
    throw new UsageError('stream needs --count N (1 or more)');
  const { target, caFile, crlFile, certFile, keyFile, serverName, deadlineMs } = values;
  return {
    command: command as Command,
    args,
    options: {
      target,
      caFile,
      ...(crlFile !== '' ? { crlFile } : {}),
      certFile,
      keyFile,
      deadlineMs,
      ...(serverName !== '' ? { serverName } : {}),
    },
    count: values.count,
    intervalMs: values.intervalMs,
    service: values.service,
    watch: values.watch,
    metricsAddress: values.metricsAddress,
  };
}
