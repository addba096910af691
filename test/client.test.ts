import * as grpc from '@grpc/grpc-js';
import { promises as dnsPromises } from 'node:dns';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { serviceConfig } from '../src/client/client.js';
import { freePort } from '../scripts/lib/server-process.js';
import * as exit from '../src/shared/exit-codes.js';
import type { EchoServer } from '../src/server/server.js';
import { CLIENT_ID, loadCa, makePki, tempDir, writeCa, writeLeaf } from './helpers/pki.js';
import { startPresentingServer } from './helpers/refusal.js';
import {
  clientFor,
  killProcess,
  pkiEnv,
  runTs,
  startInProcess,
  startServerProcess,
  type ServerProcess,
} from './helpers/server.js';

const realLookup = dnsPromises.lookup.bind(dnsPromises);
let dir: Awaited<ReturnType<typeof tempDir>>;
let pki: string;
let server: EchoServer;
let port: number;
const processes: ServerProcess[] = [];

beforeAll(async () => {
  dir = await tempDir();
  pki = join(dir.path, 'pki');
  await makePki(pki);
  ({ server, port } = await startInProcess(pki, { LOG_LEVEL: 'silent' }));
});
afterAll(async () => {
  for (const p of processes) await killProcess(p.child);
  await server.shutdown();
  await dir.remove();
});

describe('the client library', () => {
  it('makes each kind of call with promises and async iterables', async () => {
    const c = clientFor(pki, `localhost:${port}`);
    try {
      expect((await c.echo('unary')).caller).toBe(CLIENT_ID);
      const streamed = [];
      for await (const r of c.serverStream('s', 2, 1)) streamed.push(r.sequence);
      expect(streamed).toEqual([0, 1]);
      expect(
        (
          await c.clientStream(
            (async function* () {
              yield await Promise.resolve('a');
              yield 'b';
            })(),
          )
        ).count,
      ).toBe(2);
      const chatted = [];
      for await (const r of c.chat(['x', 'y'])) chatted.push(r.message);
      expect(chatted).toEqual(['x', 'y']);
      expect((await c.whoAmI()).common_name).toBe('grpc-client');
      expect(await c.checkHealth()).toBe('SERVING');
    } finally {
      c.close();
    }
  });

  it('fails a call with DEADLINE_EXCEEDED when its deadline passes', async () => {
    const c = clientFor(pki, `localhost:${port}`, 'client', { deadlineMs: 300 });
    try {
      const consume = async () => {
        for await (const _ of c.serverStream('slow', 5, 200)) void _;
      };
      await expect(consume()).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    } finally {
      c.close();
    }
  });

  it('reaches a server that starts late by retrying UNAVAILABLE within the deadline', async () => {
    const latePort = await freePort();
    // First, something that accepts and drops connections: the client's first attempt fails for sure.
    const dropper = createServer((s: Socket) => s.destroy());
    dropper.listen(latePort, '127.0.0.1');
    await once(dropper, 'listening');
    const c = clientFor(pki, `127.0.0.1:${latePort}`, 'client', {
      serverName: 'localhost',
      deadlineMs: 10_000,
    });
    try {
      const call = c.echo('eventually');
      await once(dropper, 'connection');
      dropper.close();
      await once(dropper, 'close');
      const late = await startInProcess(pki, {
        GRPC_ADDRESS: `127.0.0.1:${latePort}`,
        LOG_LEVEL: 'silent',
        SERVER_ID: 'late',
      });
      try {
        expect((await call).server_id).toBe('late');
      } finally {
        await late.server.shutdown();
      }
    } finally {
      c.close();
    }
  });

  it('retries only UNAVAILABLE, so nothing else is retried silently', () => {
    const config = JSON.parse(serviceConfig('dns:///x:1')) as {
      loadBalancingConfig: object[];
      methodConfig: { retryPolicy: { retryableStatusCodes: string[] } }[];
    };
    expect(config.loadBalancingConfig).toEqual([{ round_robin: {} }]);
    expect(config.methodConfig[0]?.retryPolicy.retryableStatusCodes).toEqual(['UNAVAILABLE']);
    expect(
      (JSON.parse(serviceConfig('localhost:1')) as { loadBalancingConfig: object[] })
        .loadBalancingConfig,
    ).toEqual([{ pick_first: {} }]);
  });

  it('spreads calls round-robin over two server processes', async () => {
    const [a, b] = await Promise.all([
      startServerProcess({ ...pkiEnv(pki), SERVER_ID: 'replica-a' }),
      startServerProcess({ ...pkiEnv(pki), SERVER_ID: 'replica-b' }),
    ]);
    processes.push(a, b);
    // ipv4: lists both addresses, as DNS does for a headless Service with two ready pods.
    const c = clientFor(pki, `ipv4:127.0.0.1:${a.port},127.0.0.1:${b.port}`, 'client', {
      serverName: 'localhost',
    });
    try {
      // Round robin picks among connections that are ready; under load the second one
      // may still be handshaking for the first calls. So: call (at most 200 times) until
      // both have answered once, then count. Under pick_first the second never answers.
      const first = new Set<string>();
      for (let i = 0; i < 200 && first.size < 2; i++)
        first.add((await c.echo(`warm ${i}`)).server_id);
      expect([...first].sort()).toEqual(['replica-a', 'replica-b']);
      const seen = new Map<string, number>();
      for (let i = 0; i < 20; i++) {
        const id = (await c.echo(`call ${i}`)).server_id;
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
      expect([...seen.keys()].sort()).toEqual(['replica-a', 'replica-b']);
      expect(Math.min(...seen.values())).toBeGreaterThanOrEqual(5);
    } finally {
      c.close();
    }
  });

  it('refuses a server certificate with a weak key, a SHA-1 signature or CA:TRUE, naming the reason', async () => {
    const ca = await loadCa(pki);
    const server = { usage: 'server' as const, dnsNames: ['localhost'] };
    const cases = [
      // Node 24's OpenSSL (security level 2 by default) refuses it first, in its own words.
      [
        { rsaBits: 1024 },
        /the server certificate is refused: RSA key of 1024 bits|EE certificate key too weak/,
      ],
      [
        { caTrue: true },
        /the server certificate is refused: a CA certificate \(basicConstraints CA:TRUE\)/,
      ],
      // OpenSSL refuses SHA-1 before our check, in its own words.
      [{ sha1: true }, /CA signature digest algorithm too weak/],
    ] as const;
    // In parallel: each waits out the client's retries.
    const check = async ([unsafe, reason]: (typeof cases)[number], i: number) => {
      const leaf = await writeLeaf(dir.path, `weak-server-${i}`, ca, server, unsafe);
      const weak = await startPresentingServer(leaf);
      const c = clientFor(pki, `127.0.0.1:${weak.port}`, 'client', {
        serverName: 'localhost',
        deadlineMs: 10_000,
      });
      try {
        // UNAVAILABLE once the retries (5 attempts, up to 3 s of backoff) are spent; well within the deadline.
        const err = await c.echo('x').then(
          () => null,
          (e: grpc.ServiceError) => e,
        );
        expect(err?.code).toBe(grpc.status.UNAVAILABLE);
        expect(err?.details).toMatch(reason);
        expect(weak.streams()).toBe(0);
      } finally {
        c.close();
        weak.close();
      }
    };
    await Promise.all(cases.map(check));
  });

  it('round-robins over every address of a dns:/// name', async () => {
    // A name with two addresses, as DNS gives for a headless Service with two ready pods:
    // 127.0.0.1 and 127.0.0.2 (both loopback), each with its own server on the same port.
    const name = 'two-replicas.test';
    const a = await startInProcess(pki, { LOG_LEVEL: 'silent', SERVER_ID: 'replica-1' });
    const b = await startInProcess(pki, {
      LOG_LEVEL: 'silent',
      SERVER_ID: 'replica-2',
      GRPC_ADDRESS: `127.0.0.2:${a.port}`,
    });
    // The system resolver, answering for this one name (grpc-js resolves dns:/// with dns.lookup).
    const lookup = vi.spyOn(dnsPromises, 'lookup').mockImplementation(((
      host: string,
      options: unknown,
    ) =>
      host === name
        ? Promise.resolve([
            { address: '127.0.0.1', family: 4 },
            { address: '127.0.0.2', family: 4 },
          ])
        : realLookup(host, options as never)) as typeof dnsPromises.lookup);
    const c = clientFor(pki, `dns:///${name}:${a.port}`, 'client', { serverName: 'localhost' });
    try {
      const seen = new Map<string, number>();
      for (let i = 0; i < 20; i++) {
        const id = (await c.echo(`call ${i}`)).server_id;
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
      expect(lookup).toHaveBeenCalledWith(name, expect.anything());
      // pick_first would send all 20 to one replica.
      expect([...seen.keys()].sort()).toEqual(['replica-1', 'replica-2']);
      expect(Math.min(...seen.values())).toBeGreaterThanOrEqual(5);
    } finally {
      c.close();
      lookup.mockRestore();
      await Promise.all([a.server.shutdown(), b.server.shutdown()]);
    }
  });
});

describe('npm run client', () => {
  const cli = (args: string[], env: Record<string, string> = {}, input?: string) =>
    runTs(
      'src/bin/client.ts',
      args,
      {
        TLS_CA_FILE: join(pki, 'ca.crt'),
        TLS_CERT_FILE: join(pki, 'client.crt'),
        TLS_KEY_FILE: join(pki, 'client.key'),
        GRPC_TARGET: `localhost:${port}`,
        ...env,
      },
      input,
    );

  it('runs echo, whoami, stream, collect, chat and health', async () => {
    expect(JSON.parse((await cli(['echo', 'hi'])).stdout)).toMatchObject({
      message: 'hi',
      caller: CLIENT_ID,
    });
    expect(JSON.parse((await cli(['whoami'])).stdout)).toMatchObject({ identity: CLIENT_ID });
    expect(
      (await cli(['stream', 'x', '--count', '3', '--interval-ms', '1'])).stdout.trim().split('\n'),
    ).toHaveLength(3);
    expect(JSON.parse((await cli(['collect', 'a', 'b', 'c'])).stdout)).toMatchObject({
      count: 3,
      summary: 'a … c',
    });
    const chat = await cli(['chat'], {}, 'one\ntwo\n');
    expect(
      chat.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { message: string }).message),
    ).toEqual(['one', 'two']);
    const health = await cli(['health', '--service', 'echo.v1.EchoService'], {
      TLS_CERT_FILE: join(pki, 'probe.crt'),
      TLS_KEY_FILE: join(pki, 'probe.key'),
    });
    expect(health.code).toBe(0);
    expect(JSON.parse(health.stdout)).toEqual({
      service: 'echo.v1.EchoService',
      status: 'SERVING',
    });
  });

  it('loops with one JSON line per call and a summary per server', async () => {
    const r = await cli(['loop', '--interval-ms', '0', '--count', '4']);
    expect(r.code).toBe(0);
    const all = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(all[0]).toMatchObject({
      event: 'loaded TLS credentials',
      certificate: { subject: expect.stringContaining('CN=grpc-client') as unknown },
    });
    const lines = all.filter((l) => !('event' in l));
    expect(
      lines
        .slice(0, 4)
        .every(
          (l) => l.status === 'OK' && l.server === 'test-server' && typeof l.latencyMs === 'number',
        ),
    ).toBe(true);
    expect(lines[4]).toMatchObject({
      summary: { calls: 4, ok: 4, failed: 0, perServer: { 'test-server': 4 } },
    });
  });

  it('lists its settings in --help', async () => {
    const r = await cli(['--help']);
    for (const v of [
      'GRPC_TARGET',
      'TLS_CA_FILE',
      'TLS_CERT_FILE',
      'TLS_KEY_FILE',
      'TLS_SERVER_NAME',
      'GRPC_DEADLINE_MS',
    ])
      expect(r.stdout).toContain(v);
  });

  it('explains a name that does not resolve', async () => {
    const r = await cli(['echo', 'x'], {
      GRPC_TARGET: 'dns:///no-such-host.invalid:50051',
      GRPC_DEADLINE_MS: '1500',
    });
    expect(r.code).toBe(exit.NAME_NOT_RESOLVED);
    expect(r.stderr).toMatch(/cannot resolve no-such-host\.invalid/);
  });

  it('explains a refused connection', async () => {
    const r = await cli(['echo', 'x'], {
      GRPC_TARGET: `127.0.0.1:${await freePort()}`,
      GRPC_DEADLINE_MS: '1500',
    });
    expect(r.code).toBe(exit.CONNECTION_REFUSED);
    expect(r.stderr).toMatch(/cannot connect to 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  });

  it('names the expected and the actual names when the server certificate does not match', async () => {
    const r = await cli(['echo', 'x'], {
      TLS_SERVER_NAME: 'wrong.example',
      GRPC_DEADLINE_MS: '1500',
    });
    expect(r.code).toBe(exit.SERVER_NAME_MISMATCH);
    expect(r.stderr).toMatch(
      /does not cover the name wrong\.example; its names are: DNS:localhost, .*grpc-server-headless\.grpc-mtls\.svc\.cluster\.local/,
    );
  });

  it('explains a server certificate from an untrusted CA', async () => {
    const other = await writeCa(dir.path, 'client-test-other-ca');
    const r = await cli(['echo', 'x'], { TLS_CA_FILE: other.certFile, GRPC_DEADLINE_MS: '1500' });
    expect(r.code).toBe(exit.SERVER_UNTRUSTED);
    expect(r.stderr).toMatch(/is not signed by a CA in TLS_CA_FILE/);
  });

  it('explains that the server refused our certificate', async () => {
    const other = await writeCa(dir.path, 'client-test-foreign-ca');
    const leaf = await writeLeaf(dir.path, 'foreign-client', other, { spiffeId: CLIENT_ID });
    const r = await cli(['echo', 'x'], {
      TLS_CERT_FILE: leaf.certFile,
      TLS_KEY_FILE: leaf.keyFile,
      GRPC_DEADLINE_MS: '1500',
    });
    expect(r.code).toBe(exit.CLIENT_CERT_REFUSED);
    expect(r.stderr).toMatch(/refused our client certificate TLS_CERT_FILE/);
  });

  it('names the identity that was denied', async () => {
    const r = await cli(['echo', 'x'], {
      TLS_CERT_FILE: join(pki, 'probe.crt'),
      TLS_KEY_FILE: join(pki, 'probe.key'),
    });
    expect(r.code).toBe(exit.PERMISSION_DENIED);
    expect(r.stderr).toMatch(
      /permission denied for our identity spiffe:\/\/cluster\.local\/ns\/grpc-mtls\/sa\/grpc-probe/,
    );
  });

  it('explains an exceeded deadline', async () => {
    const r = await cli(['stream', 'x', '--count', '5', '--interval-ms', '200'], {
      GRPC_DEADLINE_MS: '300',
    });
    expect(r.code).toBe(exit.DEADLINE_EXCEEDED);
    expect(r.stderr).toMatch(/deadline exceeded.*GRPC_DEADLINE_MS/);
  });

  it('refuses a bad setting and an unknown command', async () => {
    expect((await cli(['echo', 'x'], { GRPC_DEADLINE_MS: 'soon' })).code).toBe(exit.USAGE);
    const r = await cli(['shout', 'x']);
    expect(r.code).toBe(exit.USAGE);
    expect(r.stderr).toMatch(/unknown command "shout"/);
  });
});
