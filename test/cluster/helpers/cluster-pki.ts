// The cluster's own PKI, made with the OpenSSL CLI in the cluster folder: a CA, the
// apiserver's serving certificate, one client certificate per component (its user and
// group are what RBAC and the Node authorizer see), the kubelet's serving certificate,
// the service-account signing key, and a kubeconfig per component. Nothing of it is the
// project's own PKI (that is `npm run gen-certs`, which the test runs as a user would).
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  APISERVER_PORT,
  CLUSTER_DOMAIN,
  GATEWAY,
  KUBERNETES_SERVICE_IP,
  NODE_NAME,
  paths,
} from './layout.js';
import { run } from './run.js';

/** Two days: the cluster lives for one test run; nothing outlives it. */
const DAYS = '2';
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export const pkiFile = (name: string, ext: 'crt' | 'key' | 'pub' | 'kubeconfig') =>
  join(paths.pki, `${name}.${ext}`);

interface Leaf {
  name: string;
  subject: string;
  usage: 'serverAuth' | 'clientAuth';
  sans?: string[];
}

/** Each component's identity: CN is the user, O the group, as the apiserver reads them. */
const CLIENTS: Leaf[] = [
  { name: 'admin', subject: '/O=system:masters/CN=cluster-admin', usage: 'clientAuth' },
  {
    name: 'apiserver-kubelet-client',
    subject: '/O=system:masters/CN=kube-apiserver-kubelet-client',
    usage: 'clientAuth',
  },
  {
    name: 'kubelet',
    subject: `/O=system:nodes/CN=system:node:${NODE_NAME}`,
    usage: 'clientAuth',
  },
  {
    name: 'controller-manager',
    subject: '/CN=system:kube-controller-manager',
    usage: 'clientAuth',
  },
  { name: 'scheduler', subject: '/CN=system:kube-scheduler', usage: 'clientAuth' },
  { name: 'kube-proxy', subject: '/CN=system:kube-proxy', usage: 'clientAuth' },
  // The NetworkPolicy enforcer watches pods, namespaces and policies cluster-wide.
  { name: 'kube-router', subject: '/O=system:masters/CN=kube-router', usage: 'clientAuth' },
];

const SERVERS: Leaf[] = [
  {
    name: 'apiserver',
    subject: '/CN=kube-apiserver',
    usage: 'serverAuth',
    sans: [
      'IP:127.0.0.1',
      `IP:${GATEWAY}`,
      `IP:${KUBERNETES_SERVICE_IP}`,
      'DNS:localhost',
      'DNS:kubernetes',
      'DNS:kubernetes.default',
      'DNS:kubernetes.default.svc',
      `DNS:kubernetes.default.svc.${CLUSTER_DOMAIN}`,
    ],
  },
  {
    name: 'kubelet-serving',
    subject: `/CN=${NODE_NAME}`,
    usage: 'serverAuth',
    sans: [`DNS:${NODE_NAME}`, 'IP:127.0.0.1'],
  },
];

function issue(leaf: Leaf): void {
  const key = pkiFile(leaf.name, 'key');
  const csr = join(paths.pki, `${leaf.name}.csr`);
  const ext = join(paths.pki, `${leaf.name}.ext`);
  run('openssl', ['req', '-new', ...EC, '-keyout', key, '-subj', leaf.subject, '-out', csr]);
  chmodSync(key, 0o600);
  writeFileSync(
    ext,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      `extendedKeyUsage=${leaf.usage}`,
      ...(leaf.sans ? [`subjectAltName=${leaf.sans.join(',')}`] : []),
    ].join('\n') + '\n',
  );
  run('openssl', [
    ...['x509', '-req', '-in', csr, '-CA', pkiFile('ca', 'crt'), '-CAkey', pkiFile('ca', 'key')],
    ...['-set_serial', `0x${Date.now().toString(16)}${Math.floor(Math.random() * 1e6)}`],
    ...['-days', DAYS, '-extfile', ext, '-out', pkiFile(leaf.name, 'crt')],
  ]);
}

/** A kubeconfig for one identity, pointing at the apiserver on loopback. */
export function writeKubeconfig(name: string, server = `https://127.0.0.1:${APISERVER_PORT}`) {
  const file = pkiFile(name, 'kubeconfig');
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters:
  - name: grpc-mtls-cluster
    cluster:
      server: ${server}
      certificate-authority: ${pkiFile('ca', 'crt')}
users:
  - name: ${name}
    user:
      client-certificate: ${pkiFile(name, 'crt')}
      client-key: ${pkiFile(name, 'key')}
contexts:
  - name: ${name}
    context: { cluster: grpc-mtls-cluster, user: ${name} }
current-context: ${name}
`,
    { mode: 0o600 },
  );
  return file;
}

/** Writes the whole cluster PKI into pki/. */
export function makeClusterPki(): void {
  mkdirSync(paths.pki, { recursive: true, mode: 0o700 });
  const ca = ['-keyout', pkiFile('ca', 'key'), '-out', pkiFile('ca', 'crt')];
  run('openssl', [
    ...['req', '-x509', '-new', ...EC, ...ca, '-days', DAYS],
    ...['-subj', '/CN=grpc-mtls-cluster-ca'],
    ...['-addext', 'basicConstraints=critical,CA:TRUE'],
    ...['-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
  ]);
  chmodSync(pkiFile('ca', 'key'), 0o600);
  for (const leaf of [...SERVERS, ...CLIENTS]) issue(leaf);
  for (const leaf of CLIENTS) writeKubeconfig(leaf.name);
  // The service-account token signing key; the apiserver checks tokens with its public half.
  run('openssl', [
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    pkiFile('sa', 'key'),
  ]);
  chmodSync(pkiFile('sa', 'key'), 0o600);
  run('openssl', ['pkey', '-in', pkiFile('sa', 'key'), '-pubout', '-out', pkiFile('sa', 'pub')]);
}
