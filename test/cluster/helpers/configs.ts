// Configuration files of the node's components, written into the cluster folder.
// Each setting this machine needs is explained once, here (see CLUSTER-NOTES for how
// they were found).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pkiFile } from './cluster-pki.js';
import {
  BASE,
  BRIDGE,
  CLUSTER_DOMAIN,
  CNI_NETWORK,
  DNS_SERVICE_IP,
  GATEWAY,
  NODE_NAME,
  PAUSE_IMAGE,
  POD_CIDR,
  SERVICE_CIDR,
  paths,
} from './layout.js';

export const kubeletConfig = join(BASE, 'kubelet-config.yaml');
export const kubeProxyConfig = join(BASE, 'kube-proxy-config.yaml');
/** What pods with dnsPolicy Default (CoreDNS) get: no upstream, so nothing leaves the bridge. */
export const resolvConf = join(BASE, 'resolv.conf');

function containerdToml(): string {
  const c = paths.containerd;
  return `version = 2
root = "${c}/root"
state = "${c}/state"
# Only what the CRI needs; the rest would look for devices and file systems not used here.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "${paths.containerdSock}"
[ttrpc]
  address = "${c}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${c}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # Processes here lack CAP_SYS_RESOURCE: runc cannot give a sandbox the kubelet's
  # oom_score_adj of -998 and fails; this keeps the score at the runtime's own.
  restrict_oom_score_adj = true
  # Pod network namespaces live under the state folder, so clean-up finds them.
  netns_mounts_under_state_dir = true
  # exec and logs are streamed over loopback only.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${paths.cniConf}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${c}/runc"
`;
}

/**
 * Pods on the test's bridge: an address from POD_CIDR, a route to the Service range via
 * the bridge and no default route (isDefaultGateway false), no masquerade.
 */
function cniConflist(): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: CNI_NETWORK,
      plugins: [
        {
          type: 'bridge',
          bridge: BRIDGE,
          isGateway: true,
          isDefaultGateway: false,
          ipMasq: false,
          // A pod calling a Service that lands on itself gets its packet back.
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: POD_CIDR, gateway: GATEWAY }]],
            routes: [{ dst: SERVICE_CIDR }],
            dataDir: paths.cniIpam,
          },
        },
        { type: 'loopback' },
      ],
    },
    null,
    2,
  );
}

function kubeletYaml(): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Loopback only: the apiserver reaches the kubelet by the host name, which is 127.0.0.1 here.
address: 127.0.0.1
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
tlsCertFile: ${pkiFile('kubelet-serving', 'crt')}
tlsPrivateKeyFile: ${pkiFile('kubelet-serving', 'key')}
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: false }
  x509: { clientCAFile: ${pkiFile('ca', 'crt')} }
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://${paths.containerdSock}
cgroupDriver: cgroupfs
# This machine mounts cgroup v1 hierarchies; kubelet v1.37 refuses them unless told.
failCgroupV1: false
failSwapOn: false
# A changed Secret reaches the pods within about this long (the default is 1 min).
syncFrequency: 10s
clusterDomain: ${CLUSTER_DOMAIN}
clusterDNS: [${DNS_SERVICE_IP}]
resolvConf: ${resolvConf}
podLogsDir: ${paths.podLogs}
# The images were imported, not pulled: never collect them, never evict for a full disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: { memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1% }
maxPods: 30
`;
}

function kubeProxyYaml(): string {
  return `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: ${NODE_NAME}
clusterCIDR: ${POD_CIDR}
clientConnection:
  kubeconfig: ${pkiFile('kube-proxy', 'kubeconfig')}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# NodePorts only on the test's bridge; loopback NodePorts would flip route_localnet.
nodePortAddresses: ['${GATEWAY}/32']
# Zero leaves the host's conntrack sysctls as they are.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`;
}

/** Writes every configuration file of the node. */
export function writeConfigs(): void {
  mkdirSync(paths.containerd, { recursive: true });
  mkdirSync(paths.cniConf, { recursive: true });
  mkdirSync(paths.cniIpam, { recursive: true });
  mkdirSync(paths.kubelet, { recursive: true });
  mkdirSync(paths.podLogs, { recursive: true });
  writeFileSync(paths.containerdConfig, containerdToml());
  writeFileSync(join(paths.cniConf, '10-grpc-mtls-cluster.conflist'), cniConflist());
  writeFileSync(kubeletConfig, kubeletYaml());
  writeFileSync(kubeProxyConfig, kubeProxyYaml());
  writeFileSync(resolvConf, `search ${CLUSTER_DOMAIN}\noptions ndots:1\n`);
}
