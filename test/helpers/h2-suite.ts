// The setting shared by the raw HTTP/2 attack files and the memory one: one real server process
// with small limits, another client that must be answered during every case,
// and after each case the checks every case ends with: the raw connections
// closed, SERVING, an Echo answered, and resident memory within the bound.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import type { EchoClient } from '../../src/client/client.js';
import { memoryBound } from '../../src/server/transport-limits.js';
import { rssMiB } from './h2-calls.js';
import { rawH2, type RawH2 } from './h2-frames.js';
import { byName, deployments, envValue, projectManifests } from './k8s-manifests.js';
import { makePki, tempDir } from './pki.js';
import {
  clientFor,
  killProcess,
  pkiEnv,
  startServerProcess,
  type ServerProcess,
} from './server.js';

/** Small limits so breaches show at once; the mechanisms are the production ones. */
export const LIMITS = {
  maxMessageBytes: 64 * 1024,
  maxConcurrentStreams: 16,
  maxSessionMemoryMiB: 4,
  maxConnections: 24,
};
/** Garbage the V8 heap may keep between collections: RSS is not only what is held. */
const GC_SLACK_MiB = 64;

/**
 * The V8 settings the server runs with in k8s/ (its heap limits): the bound is
 * stated for the pod as deployed. Without them, Node 24's V8 lets the young
 * generation alone grow to 128 MiB of garbage on a large machine.
 */
function deployedNodeOptions(): string {
  const server = byName(deployments(projectManifests()), 'grpc-server');
  const value = envValue(server.spec!.template.spec!.containers[0]!, 'NODE_OPTIONS');
  if (value === undefined) throw new Error('k8s/10-grpc-server.yaml sets no NODE_OPTIONS');
  return value;
}

export interface HostileSuite {
  readonly pki: string;
  readonly server: ServerProcess;
  /** Another client, on its own connection, that every case expects answered. */
  readonly other: EchoClient;
  /** A raw mTLS HTTP/2 connection, closed after the case. */
  connectRaw(settings?: [number, number][]): Promise<RawH2>;
  /** The stated bound for `connections` connections, in MiB, with the slack for garbage. */
  allowedMiB(connections: number): number;
  /** The server's RSS grew less than the bound for `connections` connections (plus GC slack). */
  expectMemoryWithin(connections: number): Promise<void>;
}

/** The stated bound for `connections` connections, in MiB, with the slack for garbage. */
function allowedMiB(connections: number): number {
  return (connections * memoryBound(LIMITS).perConnection) / 1048576 + GC_SLACK_MiB;
}

/** Registers the hooks of a hostile file (raw HTTP/2, memory) and gives its cases what they share. */
export function hostileSuite(): HostileSuite {
  let dir: Awaited<ReturnType<typeof tempDir>> | undefined;
  let pki = '';
  let server: ServerProcess | undefined;
  let other: EchoClient | undefined;
  let startMiB = 0;
  let open: RawH2[] = [];
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('the server did not start');
    return v;
  };

  beforeAll(async () => {
    dir = await tempDir();
    pki = join(dir.path, 'pki');
    await makePki(pki);
    server = await startServerProcess({
      ...pkiEnv(pki),
      NODE_OPTIONS: deployedNodeOptions(),
      ACCESS_LOG: 'false',
      GRPC_MAX_MESSAGE_BYTES: String(LIMITS.maxMessageBytes),
      GRPC_MAX_CONCURRENT_STREAMS: String(LIMITS.maxConcurrentStreams),
      GRPC_MAX_SESSION_MEMORY_MIB: String(LIMITS.maxSessionMemoryMiB),
      MAX_CONNECTIONS: String(LIMITS.maxConnections),
    });
    other = clientFor(pki, `127.0.0.1:${server.port}`, 'client', { serverName: 'localhost' });
    // Warm up both sides, so no case counts what the first calls allocate.
    for (let i = 0; i < 20; i++) await other.echo('warm-up');
  });
  beforeEach(async () => {
    startMiB = await rssMiB(need(server).child.pid!);
  });
  afterEach(async () => {
    for (const c of open) c.close();
    open = [];
    const probe = clientFor(pki, `127.0.0.1:${need(server).port}`, 'probe', {
      serverName: 'localhost',
    });
    try {
      expect(await probe.checkHealth('')).toBe('SERVING');
    } finally {
      probe.close();
    }
    expect((await need(other).echo('after')).message).toBe('after');
  });
  afterAll(async () => {
    other?.close();
    if (server) await killProcess(server.child);
    await dir?.remove();
  });

  return {
    get pki() {
      return pki;
    },
    get server() {
      return need(server);
    },
    get other() {
      return need(other);
    },
    async connectRaw(settings = []) {
      const c = await rawH2(pki, need(server).port, settings);
      open.push(c);
      return c;
    },
    allowedMiB,
    async expectMemoryWithin(connections) {
      const grown = (await rssMiB(need(server).child.pid!)) - startMiB;
      expect(grown).toBeLessThan(allowedMiB(connections));
    },
  };
}
