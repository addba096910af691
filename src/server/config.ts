// Server settings: each an environment variable with a matching flag, with
// defaults that work on a laptop after `npm run gen-certs`.
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { LevelWithSilent } from 'pino';
import { LOG_LEVELS } from '../shared/logging.js';
import {
  PolicyError,
  loadPolicyFile,
  policyFromIdentities,
  type AuthzPolicy,
} from './policy-file.js';
import { kitMethods } from './policy-methods.js';
import {
  UsageError,
  boolean,
  formatHelp,
  integer,
  oneOf,
  parseSettings,
  text,
  type Values,
} from '../shared/options.js';
import { metricsAddress } from '../shared/metrics-http.js';
import { PROJECT_ROOT } from '../shared/proto.js';
import { TRANSPORT_SETTINGS } from './transport-settings.js';

const certs = (name: string): string => join(PROJECT_ROOT, 'certs', name);

/** The client identity gen-certs issues with its defaults. */
export const DEFAULT_CLIENT_IDENTITY = 'spiffe://cluster.local/ns/grpc-mtls/sa/grpc-client';

function address(t: string): string {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:[\]]+):(\d{1,5})$/.exec(t.trim());
  if (!m || Number(m[2]) > 65535)
    throw new Error('must be HOST:PORT, e.g. 0.0.0.0:50051 or [::]:50051');
  return t.trim();
}

export const SERVER_SETTINGS = {
  address: {
    flag: 'address',
    env: 'GRPC_ADDRESS',
    help: 'TCP address to listen on',
    default: '0.0.0.0:50051',
    parse: address,
    valueName: 'HOST:PORT',
  },
  metricsAddress: {
    flag: 'metrics-address',
    env: 'METRICS_ADDRESS',
    help: 'serve Prometheus metrics over plain HTTP at http://HOST:PORT/metrics, never on the gRPC port (the manifests use 0.0.0.0:9464 behind a NetworkPolicy); empty: no metrics',
    default: '',
    parse: metricsAddress,
    valueName: 'HOST:PORT',
  },
  unixSocket: {
    flag: 'unix-socket',
    env: 'GRPC_UNIX_SOCKET',
    help: 'also listen on this Unix socket, with the same mTLS',
    default: '',
    parse: text,
    valueName: 'PATH',
  },
  certFile: {
    flag: 'tls-cert-file',
    env: 'TLS_CERT_FILE',
    help: 'server certificate (PEM)',
    default: certs('server.crt'),
    parse: text,
    valueName: 'FILE',
  },
  keyFile: {
    flag: 'tls-key-file',
    env: 'TLS_KEY_FILE',
    help: 'server private key (PEM)',
    default: certs('server.key'),
    parse: text,
    valueName: 'FILE',
  },
  caFile: {
    flag: 'tls-ca-file',
    env: 'TLS_CA_FILE',
    help: 'CA bundle trusted for client certificates (PEM, may hold several CAs)',
    default: certs('ca.crt'),
    parse: text,
    valueName: 'FILE',
  },
  crlFile: {
    flag: 'tls-crl-file',
    env: 'TLS_CRL_FILE',
    help: 'CRL signed by the CA (PEM, e.g. certs/ca.crl): refuses revoked client certificates; empty checks none',
    default: '',
    parse: text,
    valueName: 'FILE',
  },
  reloadIntervalMs: {
    flag: 'tls-reload-interval-ms',
    env: 'TLS_RELOAD_INTERVAL_MS',
    help: 'how often to look for rotated TLS files',
    default: 5000,
    parse: integer(100, 3_600_000),
    valueName: 'MS',
  },
  allowedIdentities: {
    flag: 'allowed-identity',
    env: 'AUTHZ_ALLOWED_IDENTITIES',
    kind: 'list',
    help: 'identity allowed to call every method but health (repeatable; comma-separated in the variable); the one-rule form of --policy-file',
    default: [DEFAULT_CLIENT_IDENTITY] as string[],
    parse: text,
    valueName: 'ID',
  },
  policyFile: {
    flag: 'policy-file',
    env: 'AUTHZ_POLICY_FILE',
    help: 'JSON policy of per-method rules {"rules": [{"name", "identities", "methods"}]} (or {"allowedIdentities": [...]}), instead of --allowed-identity; reloaded when it changes (--tls-reload-interval-ms, SIGHUP)',
    default: '',
    parse: text,
    valueName: 'FILE',
  },
  reflection: {
    flag: 'reflection',
    env: 'GRPC_REFLECTION',
    kind: 'boolean',
    help: 'serve gRPC reflection (to the allowed identities only)',
    default: false,
    parse: boolean,
  },
  serverId: {
    flag: 'server-id',
    env: 'SERVER_ID',
    help: 'name reported in replies (default: host or pod name)',
    default: hostname(),
    parse: text,
    valueName: 'NAME',
  },
  logLevel: {
    flag: 'log-level',
    env: 'LOG_LEVEL',
    help: 'trace|debug|info|warn|error|silent',
    default: 'info' as LevelWithSilent,
    parse: oneOf(LOG_LEVELS),
    valueName: 'LEVEL',
  },
  accessLog: {
    flag: 'access-log',
    env: 'ACCESS_LOG',
    help: 'one info line per RPC (method, caller, status, duration); false turns them off',
    default: true,
    parse: boolean,
    valueName: 'true|false',
  },
  ...TRANSPORT_SETTINGS,
} as const;

export type ServerConfig = Omit<
  Values<typeof SERVER_SETTINGS>,
  'allowedIdentities' | 'policyFile'
> & {
  policy: AuthzPolicy;
  policySource: string;
  /** The policy file to follow for changes, '' when the policy came from the settings. */
  policyFile: string;
  /** Its text as loaded at start-up, so the first poll sees no change. */
  policyText: string;
};

export const SERVER_USAGE = `Usage: npm start -- [options]

Runs the mutual-TLS gRPC server (echo.v1.EchoService and grpc.health.v1.Health).
There is no plaintext mode: every caller must present a certificate from the CA bundle.`;

export function serverHelp(): string {
  return formatHelp(SERVER_USAGE, SERVER_SETTINGS, '\nExit codes are listed in the README.\n');
}

/** Parses and cross-checks the settings; throws UsageError naming the setting at fault. */
export function parseServerConfig(
  argv: string[],
  env: NodeJS.ProcessEnv,
): { config: ServerConfig; help: boolean } {
  const { values, positionals, help } = parseSettings(SERVER_SETTINGS, argv, env);
  if (positionals.length > 0)
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}; see --help`);
  const { policyFile, allowedIdentities, ...settings } = values;
  const listSet =
    argv.some((a) => a.startsWith('--allowed-identity')) ||
    (env.AUTHZ_ALLOWED_IDENTITIES ?? '') !== '';
  if (policyFile !== '' && listSet) {
    throw new UsageError(
      'set either AUTHZ_POLICY_FILE (--policy-file) or AUTHZ_ALLOWED_IDENTITIES (--allowed-identity), not both',
    );
  }
  let policy: AuthzPolicy;
  let policyText = '';
  try {
    if (policyFile !== '') {
      ({ policy, raw: policyText } = loadPolicyFile(policyFile, kitMethods()));
    } else {
      policy = policyFromIdentities(
        allowedIdentities,
        'AUTHZ_ALLOWED_IDENTITIES (--allowed-identity)',
      );
    }
  } catch (err) {
    if (err instanceof PolicyError) throw new UsageError(err.message, { cause: err });
    throw err;
  }
  return {
    config: {
      ...settings,
      policy,
      policyFile,
      policyText,
      policySource:
        policyFile !== '' ? policyFile : listSet ? 'AUTHZ_ALLOWED_IDENTITIES' : 'default',
    },
    help,
  };
}
