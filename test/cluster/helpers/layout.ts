// Where the test cluster lives and which addresses it owns. Everything is under one
// fixed folder, so the clean-up that runs before a start also finds what a crashed run
// left; and every address is on the test's own bridge, never on the machine's network.
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

/** The one folder holding PKI, configuration, state, logs and every mount of the cluster. */
export const BASE = join(tmpdir(), 'grpc-mtls-cluster');

export const paths = {
  pki: join(BASE, 'pki'),
  pids: join(BASE, 'pids'),
  // Outside BASE, so the daemons' logs outlive the teardown for a look after a failure.
  logs: join(tmpdir(), 'grpc-mtls-cluster-logs'),
  etcd: join(BASE, 'etcd'),
  containerd: join(BASE, 'containerd'),
  containerdSock: join(BASE, 'containerd', 'containerd.sock'),
  containerdConfig: join(BASE, 'containerd', 'config.toml'),
  cniConf: join(BASE, 'cni', 'net.d'),
  cniIpam: join(BASE, 'cni', 'ipam'),
  kubelet: join(BASE, 'kubelet'),
  podLogs: join(BASE, 'pod-logs'),
  sysctls: join(BASE, 'sysctls.json'),
  admin: join(BASE, 'pki', 'admin.kubeconfig'),
} as const;

/** The CNI network's name; libcni keeps per-attachment results under this name. */
export const CNI_NETWORK = 'grpc-mtls-cluster';
/** Linux bridge of the pods, created by the test (the CNI bridge plugin reuses it). */
export const BRIDGE = 'gmc0';
/** Pod addresses: a /24 of the test's own, away from the sandbox test's 10.213.0.0/24. */
export const POD_CIDR = '10.240.77.0/24';
/** The bridge's own address: pods' gateway for Service addresses, and the node's IP. */
export const GATEWAY = '10.240.77.1';
/** Service (ClusterIP) addresses; pods get a route to them via the gateway, nothing else. */
export const SERVICE_CIDR = '10.240.78.0/24';
/** The first Service address, which the apiserver gives the `kubernetes` Service. */
export const KUBERNETES_SERVICE_IP = '10.240.78.1';
export const DNS_SERVICE_IP = '10.240.78.10';
export const CLUSTER_DOMAIN = 'cluster.local';
export const APISERVER_PORT = 6443;
export const ETCD_PORT = 2379;
export const ETCD_PEER_PORT = 2380;

/**
 * The node's name: the host name, as the kubelet picks it, because the apiserver reaches
 * the kubelet (for logs and exec) by that name (--kubelet-preferred-address-types=Hostname).
 */
export const NODE_NAME = hostname().toLowerCase();

/** Host sysctls the kubelet, the CNI bridge and the NetworkPolicy enforcer change. */
export const SYSCTLS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
  'net/ipv4/ip_forward',
  'net/ipv4/conf/all/route_localnet',
  'net/bridge/bridge-nf-call-iptables',
  'net/bridge/bridge-nf-call-ip6tables',
  'net/netfilter/nf_conntrack_max',
  'net/netfilter/nf_conntrack_tcp_timeout_established',
  'net/netfilter/nf_conntrack_tcp_timeout_close_wait',
] as const;

/** Component binaries built by scripts/cluster/build.sh. */
export const CLUSTER_CACHE =
  process.env.CLUSTER_CACHE ??
  join(process.env.HOME ?? '/root', '.cache/grpc-mtls-service/cluster');
export const BIN = join(CLUSTER_CACHE, 'bin');
export const COMPONENTS = [
  'etcd',
  'kube-apiserver',
  'kubectl',
  'kube-controller-manager',
  'kube-scheduler',
  'kubelet',
  'kube-proxy',
  'coredns',
  'kube-router',
] as const;
export const bin = (name: (typeof COMPONENTS)[number]): string => join(BIN, name);

/** Image tarballs written by scripts/image/build-images.sh. */
export const IMAGE_CACHE = join(process.env.HOME ?? '/root', '.cache/grpc-mtls-service/images');
export const IMAGES = ['pause.tar', 'coredns.tar', 'grpc-mtls-service.tar'] as const;
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10';
export const COREDNS_IMAGE = 'registry.k8s.io/coredns/coredns:v1.15.0';
