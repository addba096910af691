// Starting the cluster's daemons, each followed by a wait (with a timeout) until it
// works: the control plane on loopback, the node's runtime, kubelet, kube-proxy and the
// NetworkPolicy enforcer. The order is the order of their dependencies.
import { get } from 'node:https';
import { pkiFile } from './cluster-pki.js';
import { kubeProxyConfig, kubeletConfig } from './configs.js';
import {
  APISERVER_PORT,
  ETCD_PEER_PORT,
  ETCD_PORT,
  GATEWAY,
  NODE_NAME,
  POD_CIDR,
  SERVICE_CIDR,
  bin,
  paths,
} from './layout.js';
import { kubectl } from './kubectl.js';
import { run, startDaemon, waitFor } from './run.js';

/** A component's health endpoint on loopback answers 200 (self-signed serving certificates). */
function healthy(url: string): Promise<true | undefined> {
  return new Promise((resolve) => {
    const req = get(url, { rejectUnauthorized: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? true : undefined);
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
  });
}

export async function startEtcd(): Promise<void> {
  const client = `http://127.0.0.1:${ETCD_PORT}`;
  const peer = `http://127.0.0.1:${ETCD_PEER_PORT}`;
  startDaemon('etcd', bin('etcd'), [
    ...['--name', 'default', '--data-dir', paths.etcd],
    ...['--listen-client-urls', client, '--advertise-client-urls', client],
    ...['--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer],
    ...['--initial-cluster', `default=${peer}`],
  ]);
  await waitFor(
    'etcd to answer on 127.0.0.1',
    async () =>
      ((await (await fetch(`${client}/health`)).json()) as { health?: string }).health === 'true' ||
      undefined,
    60_000,
  );
}

export async function startApiserver(): Promise<void> {
  startDaemon('kube-apiserver', bin('kube-apiserver'), [
    `--etcd-servers=http://127.0.0.1:${ETCD_PORT}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${APISERVER_PORT}`,
    // The address in the `kubernetes` Service's endpoints: the bridge, where a relay forwards to loopback.
    `--advertise-address=${GATEWAY}`,
    // Otherwise the apiserver would publish its own endpoint; the test writes it instead.
    '--endpoint-reconciler-type=none',
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    `--tls-cert-file=${pkiFile('apiserver', 'crt')}`,
    `--tls-private-key-file=${pkiFile('apiserver', 'key')}`,
    `--client-ca-file=${pkiFile('ca', 'crt')}`,
    `--service-account-key-file=${pkiFile('sa', 'pub')}`,
    `--service-account-signing-key-file=${pkiFile('sa', 'key')}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    '--authorization-mode=Node,RBAC',
    // PodSecurity is on by default; NodeRestriction keeps the kubelet to its own node.
    '--enable-admission-plugins=NodeRestriction,PodSecurity',
    // The host name resolves to loopback here, where the kubelet listens.
    '--kubelet-preferred-address-types=Hostname',
    `--kubelet-certificate-authority=${pkiFile('ca', 'crt')}`,
    `--kubelet-client-certificate=${pkiFile('apiserver-kubelet-client', 'crt')}`,
    `--kubelet-client-key=${pkiFile('apiserver-kubelet-client', 'key')}`,
    '--profiling=false',
  ]);
  await waitFor(
    'kube-apiserver to be ready',
    () => (kubectl(['get', '--raw', '/readyz']).stdout.trim() === 'ok' ? true : undefined),
    120_000,
    1000,
  );
  // In-cluster clients (CoreDNS) dial the `kubernetes` Service: send it to the relay.
  startDaemon('apiserver-relay', 'socat', [
    `TCP-LISTEN:${APISERVER_PORT},bind=${GATEWAY},reuseaddr,fork`,
    `TCP:127.0.0.1:${APISERVER_PORT}`,
  ]);
}

export async function startControllers(): Promise<void> {
  startDaemon('kube-controller-manager', bin('kube-controller-manager'), [
    `--kubeconfig=${pkiFile('controller-manager', 'kubeconfig')}`,
    `--authentication-kubeconfig=${pkiFile('controller-manager', 'kubeconfig')}`,
    `--authorization-kubeconfig=${pkiFile('controller-manager', 'kubeconfig')}`,
    '--bind-address=127.0.0.1',
    '--leader-elect=false',
    '--use-service-account-credentials=true',
    `--service-account-private-key-file=${pkiFile('sa', 'key')}`,
    `--root-ca-file=${pkiFile('ca', 'crt')}`,
    // The node's podCIDR is what the bridge hands out; the NetworkPolicy enforcer reads it.
    '--allocate-node-cidrs=true',
    `--cluster-cidr=${POD_CIDR}`,
    '--node-cidr-mask-size=24',
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
  ]);
  startDaemon('kube-scheduler', bin('kube-scheduler'), [
    `--kubeconfig=${pkiFile('scheduler', 'kubeconfig')}`,
    `--authentication-kubeconfig=${pkiFile('scheduler', 'kubeconfig')}`,
    `--authorization-kubeconfig=${pkiFile('scheduler', 'kubeconfig')}`,
    '--bind-address=127.0.0.1',
    '--leader-elect=false',
  ]);
  await waitFor(
    'kube-controller-manager to be healthy',
    () => healthy('https://127.0.0.1:10257/healthz'),
    90_000,
    1000,
  );
  await waitFor(
    'kube-scheduler to be healthy',
    () => healthy('https://127.0.0.1:10259/healthz'),
    90_000,
    1000,
  );
}

export async function startContainerd(): Promise<void> {
  startDaemon('containerd', 'containerd', ['--config', paths.containerdConfig]);
  await waitFor(
    'containerd to answer on its socket',
    () =>
      run('ctr', ['-a', paths.containerdSock, 'version'], { allowFail: true }).code === 0
        ? true
        : undefined,
    60_000,
  );
}

export async function startKubelet(): Promise<void> {
  startDaemon('kubelet', bin('kubelet'), [
    `--config=${kubeletConfig}`,
    `--kubeconfig=${pkiFile('kubelet', 'kubeconfig')}`,
    `--root-dir=${paths.kubelet}`,
    `--hostname-override=${NODE_NAME}`,
    // The node's address is the bridge's: nothing of the cluster is on the machine's network.
    `--node-ip=${GATEWAY}`,
  ]);
  await waitFor(
    `node ${NODE_NAME} to be Ready`,
    () => {
      const r = kubectl(
        [
          'get',
          'node',
          NODE_NAME,
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
        ],
        { allowFail: true },
      );
      return r.stdout.trim() === 'True' ? true : undefined;
    },
    120_000,
    1000,
  );
}

export async function startKubeProxy(): Promise<void> {
  startDaemon('kube-proxy', bin('kube-proxy'), [`--config=${kubeProxyConfig}`]);
  await waitFor(
    'kube-proxy to be healthy',
    async () =>
      (await fetch('http://127.0.0.1:10256/healthz').catch(() => undefined))?.ok ? true : undefined,
    60_000,
  );
}

export async function startKubeRouter(): Promise<void> {
  startDaemon('kube-router', bin('kube-router'), [
    // NetworkPolicies only: the bridge routes, kube-proxy serves Services.
    '--run-firewall=true',
    '--run-router=false',
    '--run-service-proxy=false',
    '--enable-cni=false',
    `--kubeconfig=${pkiFile('kube-router', 'kubeconfig')}`,
    `--hostname-override=${NODE_NAME}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    '--metrics-port=0',
    '--health-port=0',
  ]);
  await waitFor(
    'kube-router to install its firewall chains',
    () =>
      run('iptables-save', ['-t', 'filter']).stdout.includes(':KUBE-ROUTER-FORWARD')
        ? true
        : undefined,
    60_000,
  );
}
