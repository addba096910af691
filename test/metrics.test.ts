import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EchoClient } from '../src/client/client.js';
import { parseServerConfig } from '../src/server/config.js';
import type { EchoServer } from '../src/server/server.js';
import { callPastDeadline, serverStreamRequest } from './helpers/h2-calls.js';
import { makePki, tempDir } from './helpers/pki.js';
import { echoOnce, expectHandshakeRefused } from './helpers/refusal.js';
import { type LogCapture, clientFor, pkiEnv, startInProcess } from './helpers/server.js';
import { requireTools, toolPath } from './helpers/tools.js';
import { sampleOf, samples, scrape } from './helpers/metrics.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let pki: string;
let server: EchoServer;
let port: number;
let logs: LogCapture;
let metricsUrl: string;
const clients: EchoClient[] = [];

function client(who: 'client' | 'probe' = 'client'): EchoClient {
  const c = clientFor(pki, `127.0.0.1:${port}`, who, { serverName: 'localhost' });
  clients.push(c);
  return c;
}

const ECHO = { grpc_service: 'echo.v1.EchoService' };

beforeAll(async () => {
  dir = await tempDir();
  pki = join(dir.path, 'pki');
  await makePki(pki);
  ({ server, port, logs } = await startInProcess(pki, { METRICS_ADDRESS: '127.0.0.1:0' }));
  metricsUrl = `http://127.0.0.1:${server.metricsPort}/metrics`;
});
afterAll(async () => {
  for (const c of clients) c.close();
  await server.shutdown();
  await dir.remove();
});

describe('the metrics endpoint', () => {
  it('is off unless METRICS_ADDRESS is set', () => {
    const { config } = parseServerConfig([], pkiEnv(pki));
    expect(config.metricsAddress).toBe('');
  });

  it('refuses a METRICS_ADDRESS that is not HOST:PORT, naming the setting', () => {
    expect(() => parseServerConfig([], { ...pkiEnv(pki), METRICS_ADDRESS: '9464' })).toThrow(
      /invalid --metrics-address \(METRICS_ADDRESS\) "9464" from the environment: must be HOST:PORT/,
    );
  });

  it('serves on its own port, not the gRPC port, and answers 404 off /metrics', async () => {
    expect(server.metricsPort).not.toBe(port);
    expect(server.metricsPort).toBeGreaterThan(0);
    const res = await fetch(`http://127.0.0.1:${server.metricsPort}/`);
    expect(res.status).toBe(404);
    const ok = await fetch(metricsUrl);
    expect(ok.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  });
});

describe('the per-call server metrics', () => {
  it('count a unary call as started, handled OK, timed, one message each way', async () => {
    const before = await scrape(metricsUrl);
    const l = { grpc_type: 'unary', ...ECHO, grpc_method: 'Echo' };
    await client().echo('a');
    await client().echo('b');
    const after = await scrape(metricsUrl);
    const moved = (name: string, labels: Record<string, string>) =>
      sampleOf(after, name, labels) - sampleOf(before, name, labels);
    expect(moved('grpc_server_started_total', l)).toBe(2);
    expect(moved('grpc_server_handled_total', { ...l, grpc_code: 'OK' })).toBe(2);
    expect(moved('grpc_server_handling_seconds_count', l)).toBe(2);
    expect(moved('grpc_server_handling_seconds_bucket', { ...l, le: '+Inf' })).toBe(2);
    expect(moved('grpc_server_msg_received_total', l)).toBe(2);
    expect(moved('grpc_server_msg_sent_total', l)).toBe(2);
  });

  it('count every message of the streaming kinds', async () => {
    const before = await scrape(metricsUrl);
    for await (const _ of client().serverStream('s', 3, 0)) void _;
    await client().clientStream(['x', 'y', 'z', 'w']);
    const chat = [];
    for await (const r of client().chat(
      (function* () {
        yield 'one';
        yield 'two';
      })(),
      Infinity,
    ))
      chat.push(r);
    const after = await scrape(metricsUrl);
    const moved = (name: string, type: string, method: string) =>
      sampleOf(after, name, { grpc_type: type, ...ECHO, grpc_method: method }) -
      sampleOf(before, name, { grpc_type: type, ...ECHO, grpc_method: method });
    expect(moved('grpc_server_msg_sent_total', 'server_stream', 'ServerStream')).toBe(3);
    expect(moved('grpc_server_msg_received_total', 'server_stream', 'ServerStream')).toBe(1);
    expect(moved('grpc_server_msg_received_total', 'client_stream', 'ClientStream')).toBe(4);
    expect(moved('grpc_server_msg_sent_total', 'client_stream', 'ClientStream')).toBe(1);
    expect(moved('grpc_server_msg_received_total', 'bidi_stream', 'Chat')).toBe(2);
    expect(moved('grpc_server_msg_sent_total', 'bidi_stream', 'Chat')).toBe(chat.length);
    const okChat = { grpc_type: 'bidi_stream', ...ECHO, grpc_method: 'Chat', grpc_code: 'OK' };
    expect(sampleOf(after, 'grpc_server_handled_total', okChat)).toBeGreaterThan(
      sampleOf(before, 'grpc_server_handled_total', okChat),
    );
  });

  it('count a stream the handler refuses under its own code', async () => {
    const l = { grpc_type: 'server_stream', ...ECHO, grpc_method: 'ServerStream' };
    const bad = { ...l, grpc_code: 'InvalidArgument' };
    const before = sampleOf(await scrape(metricsUrl), 'grpc_server_handled_total', bad);
    const consume = async () => {
      for await (const _ of client().serverStream('x', 0, 0)) void _;
    };
    await expect(consume()).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    expect(sampleOf(await scrape(metricsUrl), 'grpc_server_handled_total', bad)).toBe(before + 1);
  });

  it('count a stream that outlives its deadline once, as handled DeadlineExceeded', async () => {
    const l = { grpc_type: 'server_stream', ...ECHO, grpc_method: 'ServerStream' };
    const before = await scrape(metricsUrl);
    // A caller that never cancels, so that the server's own deadline timer ends the call.
    const trailers = await callPastDeadline(
      pki,
      port,
      serverStreamRequest('slow', 10, 100),
      '250m',
    );
    expect(trailers['grpc-status']).toBe(String(grpc.status.DEADLINE_EXCEEDED));
    // The server ends the call on its own deadline timer; its access line is written with the count.
    await logs.waitFor(
      (line) =>
        line.msg === 'rpc' &&
        line.method === '/echo.v1.EchoService/ServerStream' &&
        line.code === 'DEADLINE_EXCEEDED',
    );
    const after = await scrape(metricsUrl);
    const moved = (labels: Record<string, string>) =>
      sampleOf(after, 'grpc_server_handled_total', labels) -
      sampleOf(before, 'grpc_server_handled_total', labels);
    expect(moved({ ...l, grpc_code: 'DeadlineExceeded' })).toBe(1);
    expect(moved({ ...l, grpc_code: 'OK' })).toBe(0);
    expect(
      sampleOf(after, 'grpc_server_started_total', l) -
        sampleOf(before, 'grpc_server_started_total', l),
    ).toBe(1);
  });

  it('count a denied call as a denial and as handled PermissionDenied', async () => {
    const l = { grpc_type: 'unary', ...ECHO, grpc_method: 'WhoAmI' };
    const denied = { ...ECHO, grpc_method: 'WhoAmI', reason: 'no_rule' };
    const before = await scrape(metricsUrl);
    await expect(client('probe').whoAmI()).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
    });
    const after = await scrape(metricsUrl);
    const moved = (name: string, labels: Record<string, string>) =>
      sampleOf(after, name, labels) - sampleOf(before, name, labels);
    expect(moved('grpc_mtls_authz_denied_total', denied)).toBe(1);
    expect(moved('grpc_server_handled_total', { ...l, grpc_code: 'PermissionDenied' })).toBe(1);
    expect(moved('grpc_server_started_total', l)).toBe(1);
    expect(moved('grpc_server_handled_total', { ...l, grpc_code: 'OK' })).toBe(0);
  });

  it('make no series for a path the server does not have, whoever calls it', async () => {
    // The kit's series (the process metrics come and go with GC kinds and handle types).
    const ours = (text: string) => samples(text).filter((x) => x.name.startsWith('grpc_')).length;
    const before = ours(await scrape(metricsUrl));
    for (const who of ['client', 'probe'] as const) {
      for (const n of [1, 2, 3]) {
        const err = await new Promise<grpc.ServiceError | null>((resolve) =>
          client(who).raw.makeUnaryRequest(
            `/made.up.Service${n}/Method${n}`,
            (x: Buffer) => x,
            (x: Buffer) => x,
            Buffer.alloc(0),
            (e) => resolve(e),
          ),
        );
        // grpc-js answers an unknown path itself, before the authorizer or any handler.
        expect(err?.code).toBe(grpc.status.UNIMPLEMENTED);
      }
    }
    const text = await scrape(metricsUrl);
    expect(text).not.toMatch(/made\.up|Method[123]/);
    expect(ours(text)).toBe(before);
  });
});

describe("the kit's own metrics", () => {
  it('count a refused handshake under its reason', async () => {
    const reason = { reason: 'no_certificate' };
    const before = sampleOf(
      await scrape(metricsUrl),
      'grpc_mtls_tls_handshake_refused_total',
      reason,
    );
    const ca = await readFile(join(pki, 'ca.crt'));
    await expectHandshakeRefused(
      logs,
      () => echoOnce(`127.0.0.1:${port}`, grpc.credentials.createSsl(ca)),
      { code: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', reason: /did not return a certificate/ },
    );
    const after = await scrape(metricsUrl);
    expect(sampleOf(after, 'grpc_mtls_tls_handshake_refused_total', reason)).toBeGreaterThan(
      before,
    );
  });

  it('give the expiry of the serving certificate and of each CA as timestamps', async () => {
    const text = await scrape(metricsUrl);
    const leaf = new X509Certificate(await readFile(join(pki, 'server.crt')));
    const ca = new X509Certificate(await readFile(join(pki, 'ca.crt')));
    const at = (c: X509Certificate) => Math.floor(new Date(c.validTo).getTime() / 1000);
    const name = 'grpc_mtls_certificate_expiration_timestamp_seconds';
    expect(sampleOf(text, name, { role: 'server', serial: leaf.serialNumber })).toBe(at(leaf));
    expect(sampleOf(text, name, { role: 'ca', serial: ca.serialNumber })).toBe(at(ca));
  });

  it('count a refused TLS reload, and the reload that follows a repair', async () => {
    const certFile = join(pki, 'server.crt');
    const good = await readFile(certFile);
    const rejected = { result: 'rejected' };
    const before = sampleOf(await scrape(metricsUrl), 'grpc_mtls_tls_reloads_total', rejected);
    await writeFile(certFile, 'not a certificate');
    try {
      expect(await server.reloader.check()).toBe('rejected');
    } finally {
      await writeFile(certFile, good);
    }
    expect(sampleOf(await scrape(metricsUrl), 'grpc_mtls_tls_reloads_total', rejected)).toBe(
      before + 1,
    );
  });

  it('include the Node process metrics', async () => {
    const text = await scrape(metricsUrl);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
  });
});

describe('the exposition, read by Prometheus itself', () => {
  it('passes `promtool check metrics` after calls, denials and a refused handshake', async () => {
    // The tests above refused a handshake and moved the other series; a call and a denial more here.
    await client().echo('last');
    await expect(client('probe').echo('x')).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
    });
    const text = await scrape(metricsUrl);
    expect(text).toMatch(/grpc_code="PermissionDenied"/);
    requireTools('promtool');
    const child = spawn(toolPath('promtool'), ['check', 'metrics']);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.stdin.end(text);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('exit', resolve);
      child.on('error', reject);
    });
    expect(out).toBe('');
    expect(code).toBe(0);
  });
});

describe('the services the server adds besides EchoService', () => {
  it('count health checks under grpc.health.v1.Health', async () => {
    const l = { grpc_type: 'unary', grpc_service: 'grpc.health.v1.Health', grpc_method: 'Check' };
    const before = sampleOf(await scrape(metricsUrl), 'grpc_server_handled_total', {
      ...l,
      grpc_code: 'OK',
    });
    expect(await client('probe').checkHealth('')).toBe('SERVING');
    const after = sampleOf(await scrape(metricsUrl), 'grpc_server_handled_total', {
      ...l,
      grpc_code: 'OK',
    });
    expect(after).toBe(before + 1);
  });
});
