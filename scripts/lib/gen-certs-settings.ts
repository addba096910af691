// gen-certs's settings (flags only: it runs on a workstation, not in a pod)
// and the checks of their values; the command itself is scripts/gen-certs.ts.
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { integer, oneOf } from '../../src/shared/options.js';
import { DEFAULT_CRL_DAYS, MAX_CRL_DAYS } from '../../src/tls/crl.js';
import {
  DEFAULT_CA_DAYS,
  DEFAULT_LEAF_DAYS,
  KEY_SIZES,
  MAX_LEAF_DAYS,
} from '../../src/pki/certificates.js';

const root = resolve(fileURLToPath(import.meta.url), '../../..');

/** RFC 1123 label, as Kubernetes requires for namespace and Service names. */
function dnsLabel(t: string): string {
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(t)) {
    throw new Error(
      'must be a DNS-1123 label: lower-case letters, digits and "-", at most 63, starting and ending with a letter or digit',
    );
  }
  return t;
}

function dnsName(t: string): string {
  if (
    t.length > 253 ||
    !t.split('.').every((l) => /^[a-z0-9*]([-a-z0-9]{0,61}[a-z0-9])?$/i.test(l))
  ) {
    throw new Error('must be a DNS name such as example.internal');
  }
  return t.toLowerCase();
}

function ipAddress(t: string): string {
  if (isIP(t) === 0) throw new Error('must be an IPv4 or IPv6 address');
  return t;
}

export const settings = {
  outDir: {
    flag: 'out',
    help: 'folder for certificates and keys',
    default: resolve(root, 'certs'),
    parse: (t: string) => resolve(t),
    valueName: 'DIR',
  },
  k8sDir: {
    flag: 'k8s-dir',
    help: 'folder for the Secret manifests',
    default: resolve(root, 'k8s'),
    parse: (t: string) => resolve(t),
    valueName: 'DIR',
  },
  namespace: {
    flag: 'namespace',
    help: 'Kubernetes namespace of the workloads',
    default: 'grpc-mtls',
    parse: dnsLabel,
    valueName: 'NAME',
  },
  service: {
    flag: 'service',
    help: 'Service name of the server (its headless twin adds -headless)',
    default: 'grpc-server',
    parse: dnsLabel,
    valueName: 'NAME',
  },
  clusterDomain: {
    flag: 'cluster-domain',
    help: 'cluster DNS domain',
    default: 'cluster.local',
    parse: dnsName,
    valueName: 'DOMAIN',
  },
  trustDomain: {
    flag: 'trust-domain',
    help: 'SPIFFE trust domain (default: the cluster domain)',
    default: '',
    parse: dnsName,
    valueName: 'DOMAIN',
  },
  extraDns: {
    flag: 'dns',
    kind: 'list',
    help: 'extra DNS SAN for the server certificate (repeatable)',
    default: [] as string[],
    parse: dnsName,
    valueName: 'NAME',
  },
  extraIps: {
    flag: 'ip',
    kind: 'list',
    help: 'extra IP SAN for the server certificate (repeatable)',
    default: [] as string[],
    parse: ipAddress,
    valueName: 'IP',
  },
  keySize: {
    flag: 'key-size',
    help: 'RSA key size (node-forge signs RSA only)',
    default: 2048 as (typeof KEY_SIZES)[number],
    parse: oneOf(KEY_SIZES.map(String)) as unknown as (t: string) => (typeof KEY_SIZES)[number],
    valueName: 'BITS',
  },
  days: {
    flag: 'days',
    help: `leaf lifetime in days, at most ${MAX_LEAF_DAYS}`,
    default: DEFAULT_LEAF_DAYS,
    parse: integer(1, MAX_LEAF_DAYS),
    valueName: 'N',
  },
  caDays: {
    flag: 'ca-days',
    help: 'CA lifetime in days',
    default: DEFAULT_CA_DAYS,
    parse: integer(1, 3650),
    valueName: 'N',
  },
  newCa: {
    flag: 'new-ca',
    kind: 'boolean',
    help: 'replace the CA (otherwise an existing CA is kept and only leaves are re-issued)',
    default: false,
    parse: (t: string) => t === 'true',
  },
  rotateCa: {
    flag: 'rotate-ca',
    kind: 'boolean',
    help: 'advance a CA rollover by one step (1 trust the new CA, 2 issue from it, 3 retire the old one)',
    default: false,
    parse: (t: string) => t === 'true',
  },
  status: {
    flag: 'status',
    kind: 'boolean',
    help: 'write nothing; list every certificate in --out with its days left, exit 8 if any expires within --warn-days',
    default: false,
    parse: (t: string) => t === 'true',
  },
  revoke: {
    flag: 'revoke',
    help: "add a certificate to the CA's CRL (certs/ca.crl and ca.crl in every Secret): a workload (grpc-server, grpc-client, grpc-probe) or a serial in hex",
    default: '',
    parse: (t: string) => t,
    valueName: 'WORKLOAD|SERIAL',
  },
  crlDays: {
    flag: 'crl-days',
    help: `days until the CRL's nextUpdate (re-signed on every run), at most ${MAX_CRL_DAYS}`,
    default: DEFAULT_CRL_DAYS,
    parse: integer(1, MAX_CRL_DAYS),
    valueName: 'N',
  },
  warnDays: {
    flag: 'warn-days',
    help: '--status: how many days before expiry a certificate counts as expiring',
    default: 14,
    parse: integer(0, 3650),
    valueName: 'N',
  },
} as const;

export const usage = `Usage: npm run gen-certs -- [options]

Creates a private CA and the server, client and probe certificates in certs/,
and Kubernetes Secret manifests in k8s/. Re-running keeps the CA and re-issues
the leaf certificates (rotation); --rotate-ca replaces the CA in three steps
without downtime (see docs/pki.md); --status reports what expires when.`;
