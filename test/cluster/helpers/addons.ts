// What a cluster has besides its daemons: the images (imported, never pulled), the
// `kubernetes` Service's endpoint, and CoreDNS as the kube-dns pod and Service that the
// project's allow-dns NetworkPolicy expects.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  APISERVER_PORT,
  CLUSTER_DOMAIN,
  COREDNS_IMAGE,
  DNS_SERVICE_IP,
  GATEWAY,
  IMAGES,
  IMAGE_CACHE,
  paths,
} from './layout.js';
import { applyText, kubectl } from './kubectl.js';
import { progress, run, waitFor } from './run.js';

/** Loads the image tarballs into containerd's k8s.io namespace, where the kubelet looks. */
export function importImages(): void {
  for (const tar of IMAGES) {
    const file = join(IMAGE_CACHE, tar);
    if (!existsSync(file))
      throw new Error(`image tarball ${file} is missing: run bash scripts/image/build-images.sh`);
    run('ctr', ['-a', paths.containerdSock, '-n', 'k8s.io', 'images', 'import', file], {
      timeoutMs: 300_000,
    });
    progress(`imported ${tar}`);
  }
}

/** With no endpoint reconciler, the `kubernetes` Service's endpoint is written here: the relay on the bridge. */
export function writeKubernetesEndpoint(): void {
  applyText(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kubernetes-test-relay
  namespace: default
  labels:
    kubernetes.io/service-name: kubernetes
    endpointslice.kubernetes.io/managed-by: grpc-mtls-cluster-test
addressType: IPv4
endpoints:
  - addresses: ['${GATEWAY}']
    conditions: { ready: true }
ports:
  - name: https
    port: ${APISERVER_PORT}
    protocol: TCP
`);
}

/** CoreDNS answers the cluster domain only: no forward plugin, so no query leaves the cluster. */
const COREFILE = `.:53 {
    errors
    health :8080
    ready :8181
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    loadbalance
}`;

const COREDNS = `apiVersion: v1
kind: ServiceAccount
metadata: { name: coredns, namespace: kube-system }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: 'system:coredns' }
rules:
  - apiGroups: ['']
    resources: [endpoints, services, pods, namespaces]
    verbs: [list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: 'system:coredns' }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: 'system:coredns' }
subjects: [{ kind: ServiceAccount, name: coredns, namespace: kube-system }]
---
apiVersion: v1
kind: ConfigMap
metadata: { name: coredns, namespace: kube-system }
data:
  Corefile: |
${COREFILE.split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: coredns, namespace: kube-system, labels: { k8s-app: kube-dns } }
spec:
  replicas: 1
  selector: { matchLabels: { k8s-app: kube-dns } }
  template:
    metadata: { labels: { k8s-app: kube-dns } }
    spec:
      serviceAccountName: coredns
      dnsPolicy: Default
      containers:
        - name: coredns
          image: ${COREDNS_IMAGE}
          imagePullPolicy: Never
          args: ['-conf', '/etc/coredns/Corefile']
          ports:
            - { name: dns, containerPort: 53, protocol: UDP }
            - { name: dns-tcp, containerPort: 53, protocol: TCP }
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: { drop: [ALL], add: [NET_BIND_SERVICE] }
          readinessProbe:
            httpGet: { path: /ready, port: 8181 }
            periodSeconds: 2
          volumeMounts: [{ name: config, mountPath: /etc/coredns, readOnly: true }]
      volumes: [{ name: config, configMap: { name: coredns } }]
---
apiVersion: v1
kind: Service
metadata: { name: kube-dns, namespace: kube-system, labels: { k8s-app: kube-dns } }
spec:
  selector: { k8s-app: kube-dns }
  clusterIP: ${DNS_SERVICE_IP}
  ports:
    - { name: dns, port: 53, protocol: UDP }
    - { name: dns-tcp, port: 53, protocol: TCP }
`;

export async function startCoreDns(): Promise<void> {
  applyText(COREDNS);
  await waitFor(
    'CoreDNS to be ready',
    () =>
      kubectl(['-n', 'kube-system', 'rollout', 'status', 'deployment/coredns', '--timeout=5s'], {
        allowFail: true,
      }).code === 0
        ? true
        : undefined,
    180_000,
    1000,
  );
}
