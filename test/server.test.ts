import * as grpc from '@grpc/grpc-js';
import { BaseServerInterceptingCall } from '@grpc/grpc-js/build/src/server-interceptors.js';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { connect as http2Connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { EchoClient } from '../src/client/client.js';
import { EchoServer } from '../src/server/server.js';
import { parseServerConfig } from '../src/server/config.js';
import {
  CLIENT_ID,
  PROBE_ID,
  loadCa,
  makePki,
  tempDir,
  writeCa,
  writeLeaf,
} from './helpers/pki.js';
import { callPastDeadline, serverStreamRequest } from './helpers/h2-calls.js';
import { echoOnce, expectHandshakeRefused, presentingCredentials } from './helpers/refusal.js';
import { LogCapture, clientFor, pkiEnv, startInProcess } from './helpers/server.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let pki: string;
let server: EchoServer;
let port: number;
let logs: LogCapture;
const clients: EchoClient[] = [];

function client(who: 'client' | 'probe' = 'client'): EchoClient {
  const c = clientFor(pki, `127.0.0.1:${port}`, who, { serverName: 'localhost' });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  dir = await tempDir();
  pki = join(dir.path, 'pki');
  await makePki(pki);
  ({ server, port, logs } = await startInProcess(pki));
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  await server.shutdown();
  await dir.remove();
});

describe('the echo service over mTLS', () => {
  it('answers a unary Echo with the server id and the verified caller', async () => {
    const res = await client().echo('hello');
    expect(res).toMatchObject({ message: 'hello', server_id: 'test-server', caller: CLIENT_ID });
  });

  it('streams count responses from ServerStream', async () => {
    const got = [];
    for await (const r of client().serverStream('tick', 3, 5)) got.push(r.sequence);
    expect(got).toEqual([0, 1, 2]);
  });

  it('streams every message in order to a client that reads slower than the server writes', async () => {
    // 1000 × 16 KiB, read with pauses, overflows grpc-js's write buffer many times (see units for the waiting itself).
    const message = 'x'.repeat(16 * 1024);
    const got: number[] = [];
    for await (const r of client().serverStream(message, 1000, 0)) {
      got.push(r.sequence);
      if (got.length % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('rejects an out-of-range ServerStream with INVALID_ARGUMENT', async () => {
    const consume = async (count: number, interval: number) => {
      for await (const _ of client().serverStream('x', count, interval)) void _;
    };
    await expect(consume(0, 0)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    await expect(consume(1001, 0)).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringContaining('count must be 1 to 1000') as unknown,
    });
    await expect(consume(1, 10_001)).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  });

  it('counts and summarises a ClientStream', async () => {
    const res = await client().clientStream(['first', 'middle', 'last']);
    expect(res).toMatchObject({
      count: 3,
      total_bytes: '15',
      summary: 'first … last',
      caller: CLIENT_ID,
    });
  });

  it('answers each Chat message as it arrives', async () => {
    const got = [];
    for await (const r of client().chat(['a', 'b', 'c'])) got.push(`${r.sequence}:${r.message}`);
    expect(got).toEqual(['0:a', '1:b', '2:c']);
  });

  it('tells the caller who it is from its certificate in WhoAmI', async () => {
    const who = await client().whoAmI();
    const cert = new X509Certificate(await readFile(join(pki, 'client.crt')));
    expect(who).toMatchObject({
      identity: CLIENT_ID,
      spiffe_id: CLIENT_ID,
      common_name: 'grpc-client',
      serial: cert.serialNumber.toUpperCase(),
      not_after: new Date(cert.validTo).toISOString(),
    });
  });

  it("reads each connection's auth context once, for all the calls it carries", async () => {
    const read = vi.spyOn(BaseServerInterceptingCall.prototype, 'getAuthContext');
    try {
      const [allowed, denied] = [client(), client('probe')];
      for (let i = 0; i < 4; i++) {
        expect(await allowed.echo(`call ${i}`)).toMatchObject({ caller: CLIENT_ID });
        await expect(denied.echo(`call ${i}`)).rejects.toMatchObject({
          code: grpc.status.PERMISSION_DENIED,
          details: expect.stringContaining(PROBE_ID) as unknown,
        });
      }
      expect(await allowed.whoAmI()).toMatchObject({ identity: CLIENT_ID });
      // Two connections: one read each, not one per call. What is kept is frozen.
      expect(Object.isFrozen(read.mock.results[0]?.value)).toBe(true);
      expect(read).toHaveBeenCalledTimes(2);
    } finally {
      read.mockRestore();
    }
  });

  it('logs one line per RPC with method, caller, status and duration', async () => {
    await client().echo('logged');
    const line = await logs.waitFor(
      (l) => l.msg === 'rpc' && l.method === '/echo.v1.EchoService/Echo',
    );
    expect(line).toMatchObject({ caller: CLIENT_ID, code: 'OK' });
    expect(typeof line.ms).toBe('number');
  });

  it('logs a call the client cancels as CANCELLED and one past its deadline as DEADLINE_EXCEEDED', async () => {
    const method = '/echo.v1.EchoService/ServerStream';
    // Cancelled by the client after the first of messages a second apart.
    const cancelled = client().serverStream('cancel me', 5, 1000) as grpc.ClientReadableStream<{
      sequence: number;
    }>;
    cancelled.on('error', () => {});
    const earlier = logs.lines.length;
    const newLine = (l: Record<string, unknown>) => logs.lines.indexOf(l) >= earlier;
    await once(cancelled, 'data');
    cancelled.cancel();
    expect(
      await logs.waitFor((l) => newLine(l) && l.msg === 'rpc' && l.method === method),
    ).toMatchObject({ code: 'CANCELLED', caller: CLIENT_ID });
    // Ended by grpc-js when the deadline passes, before the handler finishes (a
    // caller that never cancels: see callPastDeadline).
    const trailers = await callPastDeadline(
      pki,
      port,
      serverStreamRequest('too slow', 5, 1000),
      '300m',
    );
    expect(trailers['grpc-status']).toBe(String(grpc.status.DEADLINE_EXCEEDED));
    expect(
      await logs.waitFor((l) => newLine(l) && l.msg === 'rpc' && l.code === 'DEADLINE_EXCEEDED'),
    ).toMatchObject({ method, caller: CLIENT_ID });
  });

  it('writes no per-RPC line with ACCESS_LOG=false, and still warns of denials', async () => {
    const quiet = await startInProcess(pki, { ACCESS_LOG: 'false' });
    try {
      const target = `127.0.0.1:${quiet.port}`;
      const c = clientFor(pki, target, 'client', { serverName: 'localhost' });
      const p = clientFor(pki, target, 'probe', { serverName: 'localhost' });
      clients.push(c, p);
      // The line would be written in the turn that sends the status, so it would be here by now.
      await c.echo('not logged');
      await expect(p.echo('denied')).rejects.toMatchObject({
        code: grpc.status.PERMISSION_DENIED,
      });
      expect(quiet.logs.lines.filter((l) => l.msg === 'rpc')).toEqual([]);
      expect(quiet.logs.lines.some((l) => l.msg === 'permission denied')).toBe(true);
    } finally {
      await quiet.server.shutdown();
    }
  });
});

describe('authorization', () => {
  it('denies the probe identity EchoService with PERMISSION_DENIED naming identity and method', async () => {
    await expect(client('probe').echo('x')).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      details: `identity ${PROBE_ID} is not allowed to call /echo.v1.EchoService/Echo`,
    });
    const warning = await logs.waitFor(
      (l) => l.msg === 'permission denied' && l.caller === PROBE_ID,
    );
    expect(warning.level).toBe(40);
  });

  it('lets the probe identity call the health service', async () => {
    expect(await client('probe').checkHealth('')).toBe('SERVING');
    expect(await client('probe').checkHealth('echo.v1.EchoService')).toBe('SERVING');
  });

  it('denies every streaming kind to an identity not in the policy', async () => {
    const probe = client('probe');
    await expect(probe.clientStream(['x'])).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
    });
    const consume = async () => {
      for await (const _ of probe.chat(['x'])) void _;
    };
    await expect(consume()).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
  });
});

describe('identities', () => {
  it('never takes a Common Name for a SPIFFE ID: a certificate without a URI SAN whose CN spells the allowed ID gets nothing', async () => {
    const spoof = await writeLeaf(
      dir.path,
      'cn-spoof',
      await loadCa(pki),
      { commonName: CLIENT_ID },
      { noUriSan: true },
    );
    const c = clientFor(pki, `127.0.0.1:${port}`, 'client', {
      serverName: 'localhost',
      certFile: spoof.certFile,
      keyFile: spoof.keyFile,
    });
    clients.push(c);
    const from = logs.lines.length;
    const noSpiffeId = new RegExp(
      `^the client certificate carries no SPIFFE ID in a URI SAN \\(its CN "${CLIENT_ID}" is not an identity\\)`,
    );
    await expect(c.echo('x')).rejects.toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
      details: expect.stringMatching(noSpiffeId) as unknown,
    });
    await expect(c.whoAmI()).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    const warning = await logs.waitFor(
      (l) =>
        logs.lines.indexOf(l) >= from &&
        l.msg === 'permission denied' &&
        l.method === '/echo.v1.EchoService/WhoAmI',
    );
    expect(warning).toMatchObject({ level: 40, caller: null });
    expect(String(warning.reason)).toMatch(noSpiffeId);
    // Nothing answered with the spoofed ID, in any line the server wrote.
    const rpcLines = logs.lines.slice(from).filter((l) => l.msg === 'rpc');
    expect(rpcLines.length).toBeGreaterThan(0);
    expect(rpcLines.every((l) => l.caller === 'unknown')).toBe(true);
  });
});

describe('permission-denied warnings', () => {
  it('are rate-limited in a flood of denied calls, with summaries whose counts add up', async () => {
    const flood = await startInProcess(pki, { ACCESS_LOG: 'false' });
    const probe = clientFor(pki, `127.0.0.1:${flood.port}`, 'probe', { serverName: 'localhost' });
    clients.push(probe);
    const calls = 200;
    try {
      await probe.checkHealth(''); // connected: the flood measures denials, not the handshake
      const started = performance.now();
      const results = await Promise.allSettled(
        Array.from({ length: calls }, (_, i) => probe.echo(`denied ${i}`)),
      );
      const elapsedMs = performance.now() - started;
      expect(
        results.every(
          (r) =>
            r.status === 'rejected' &&
            (r.reason as grpc.ServiceError).code === grpc.status.PERMISSION_DENIED,
        ),
      ).toBe(true);
      const count = () => {
        const warned = flood.logs.lines.filter((l) => l.msg === 'permission denied').length;
        const summaries = flood.logs.lines.filter((l) => l.msg === 'permission denials not logged');
        const suppressed = summaries.reduce((n, l) => n + Number(l.suppressed), 0);
        return { warned, summaries, suppressed };
      };
      // The last window's summary comes when that window ends, without another denial.
      await flood.logs.waitFor(() => {
        const { warned, suppressed } = count();
        return warned + suppressed === calls;
      });
      const { warned, summaries, suppressed } = count();
      expect(suppressed).toBeGreaterThan(0);
      // At most 20 lines in each second the flood lasted (and the one it began in).
      expect(warned).toBeLessThanOrEqual(20 * (Math.ceil(elapsedMs / 1000) + 1));
      expect(summaries.at(-1)).toMatchObject({
        level: 40,
        suppressedTotal: suppressed,
        limitPerSecond: 20,
      });
    } finally {
      await flood.server.shutdown();
    }
  });
});

describe('handshakes that are refused', () => {
  let other: Awaited<ReturnType<typeof writeCa>>;
  beforeAll(async () => {
    other = await writeCa(dir.path, 'other-ca');
  });
  /** An Echo presenting these files, with credentials that check nothing themselves. */
  const attempt =
    (files: { certFile?: string; keyFile?: string } = {}, caFile = join(pki, 'ca.crt')) =>
    async () =>
      echoOnce(`127.0.0.1:${port}`, await presentingCredentials({ caFile, ...files }));
  const own = (name: string) => ({
    certFile: join(pki, `${name}.crt`),
    keyFile: join(pki, `${name}.key`),
  });

  it('refuses a client without a certificate, logging the peer and that none was sent', async () => {
    const line = await expectHandshakeRefused(logs, attempt(), {
      code: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE',
      reason: /peer did not return a certificate/,
    });
    expect(line.peer).toBe('127.0.0.1');
  });

  it('refuses a client certificate from another CA', async () => {
    const leaf = await writeLeaf(dir.path, 'foreign', other, {});
    await expectHandshakeRefused(logs, attempt(leaf), {
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      reason: /unable to verify the first certificate/,
      commonName: 'foreign',
    });
  });

  it('refuses an expired client certificate', async () => {
    const leaf = await writeLeaf(dir.path, 'expired', await loadCa(pki), {
      spiffeId: CLIENT_ID,
      days: 1,
      now: new Date(Date.now() - 10 * 86_400_000),
    });
    await expectHandshakeRefused(logs, attempt(leaf), {
      code: 'CERT_HAS_EXPIRED',
      reason: /certificate has expired/,
      commonName: 'expired',
    });
  });

  it('refuses a client certificate without clientAuth', () =>
    expectHandshakeRefused(logs, attempt(own('server')), {
      code: 'INVALID_PURPOSE',
      reason: /unsuitable certificate purpose/,
      commonName: 'grpc-server',
    }));

  it('refuses a client certificate with an RSA key of 1024 bits, naming the key', async () => {
    const leaf = await writeLeaf(
      dir.path,
      'rsa-1024',
      await loadCa(pki),
      { spiffeId: CLIENT_ID },
      { rsaBits: 1024 },
    );
    const line = await expectHandshakeRefused(logs, attempt(leaf), {
      code: 'CERTIFICATE_POLICY',
      reason: /^RSA key of 1024 bits \(at least 2048 required\)$/,
      commonName: 'rsa-1024',
    });
    expect(line.peer).toBe('127.0.0.1');
  });

  it('refuses a client certificate with a SHA-1 signature, naming the signature', async () => {
    const leaf = await writeLeaf(
      dir.path,
      'sha1-signed',
      await loadCa(pki),
      { spiffeId: CLIENT_ID },
      { sha1: true },
    );
    await expectHandshakeRefused(logs, attempt(leaf), {
      code: 'CERTIFICATE_POLICY',
      reason: /^SHA-1 signature \(sha1WithRSAEncryption\)$/,
      commonName: 'sha1-signed',
    });
  });

  it('refuses a client leaf marked CA:TRUE, which OpenSSL itself accepts', async () => {
    const leaf = await writeLeaf(
      dir.path,
      'ca-true-client',
      await loadCa(pki),
      { spiffeId: CLIENT_ID },
      { caTrue: true },
    );
    await expectHandshakeRefused(logs, attempt(leaf), {
      code: 'CERTIFICATE_POLICY',
      reason: /^a CA certificate \(basicConstraints CA:TRUE\), not a leaf$/,
      commonName: 'ca-true-client',
    });
  });

  it('refuses TLS below 1.2', async () => {
    const from = logs.lines.length;
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      maxVersion: 'TLSv1.1',
      minVersion: 'TLSv1',
      rejectUnauthorized: false,
    });
    const [err] = (await once(socket, 'error')) as [Error];
    expect(err.message).toMatch(/protocol version|no protocols available|unsupported protocol/i);
    socket.destroy();
    // Node 20's OpenSSL 3.0 names the version; 3.5 (Node 24) sees the old hello as unexpected.
    // Waiting for that code, not for the next refusal: a client of an earlier case may
    // still be reconnecting and be refused (for its own reason) meanwhile. A refusal of
    // this connection for another reason never matches, so the wait fails.
    const line = await logs.waitFor(
      (l) =>
        logs.lines.indexOf(l) >= from &&
        l.msg === 'TLS handshake refused' &&
        /^ERR_SSL_(UNSUPPORTED_PROTOCOL|UNEXPECTED_MESSAGE)$/.test(String(l.code)),
    );
    expect(String(line.reason)).toMatch(/unsupported protocol|unexpected message/);
  });

  it('keeps serving after garbage bytes, a plaintext HTTP/2 request and an HTTP/1.1 request', async () => {
    const garbage = netConnect({ host: '127.0.0.1', port });
    garbage.on('error', () => {});
    garbage.end(Buffer.from('\x00\xffthis is not TLS\r\n\r\n'.repeat(20), 'binary'));
    await once(garbage, 'close');

    const h1 = netConnect({ host: '127.0.0.1', port });
    h1.on('error', () => {});
    h1.end('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    let h1Answer = '';
    h1.on('data', (d: Buffer) => (h1Answer += d.toString('latin1')));
    await once(h1, 'close');
    expect(h1Answer).not.toContain('HTTP/1.1 200');

    const h2 = http2Connect(`http://127.0.0.1:${port}`);
    const h2Closed = new Promise<string>((resolve) => {
      h2.on('error', (e: Error) => resolve(`error: ${e.message}`));
      h2.on('close', () => resolve('closed'));
    });
    const req = h2.request({
      ':path': '/echo.v1.EchoService/Echo',
      ':method': 'POST',
      'content-type': 'application/grpc',
    });
    req.on('error', () => {});
    req.on('response', () => {
      throw new Error('a plaintext request was answered');
    });
    req.end();
    await h2Closed;

    expect((await client().echo('still here')).message).toBe('still here');
  });
});

describe('health', () => {
  it('is NOT_SERVING before the server is bound and SERVING after', async () => {
    const { config } = parseServerConfig([], {
      GRPC_ADDRESS: '127.0.0.1:0',
      ...pkiEnv(pki),
      LOG_LEVEL: 'silent',
    });
    const fresh = await EchoServer.create(config, new LogCapture('silent').logger);
    expect(fresh.health.get('')).toBe('NOT_SERVING');
    expect(fresh.health.get('echo.v1.EchoService')).toBe('NOT_SERVING');
    const { port: freshPort } = await fresh.start();
    const c = clientFor(pki, `127.0.0.1:${freshPort}`, 'probe', { serverName: 'localhost' });
    clients.push(c);
    // The very first connection succeeds: credentials were loaded before bind.
    expect(await c.checkHealth('')).toBe('SERVING');
    await fresh.shutdown();
  });

  it('answers Check, List and NOT_FOUND for an unknown service', async () => {
    const c = client('probe');
    expect(await c.checkHealth('echo.v1.EchoService')).toBe('SERVING');
    await expect(c.checkHealth('no.such.Service')).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
    const list = await new Promise<unknown>((resolve, reject) =>
      (
        c.health as unknown as {
          list: (r: object, cb: (e: Error | null, r?: unknown) => void) => void;
        }
      ).list({}, (e, r) => (e ? reject(e) : resolve(r))),
    );
    expect(list).toEqual({
      statuses: { '': { status: 'SERVING' }, 'echo.v1.EchoService': { status: 'SERVING' } },
    });
  });
});

describe('graceful shutdown', () => {
  it('goes NOT_SERVING at once (seen by Watch and Check) while in-flight RPCs finish', async () => {
    const s = await startInProcess(pki, {
      SHUTDOWN_DRAIN_DELAY_MS: '400',
      SHUTDOWN_TIMEOUT_MS: '5000',
      LOG_LEVEL: 'silent',
    });
    const target = `127.0.0.1:${s.port}`;
    const c = clientFor(pki, target, 'client', { serverName: 'localhost' });
    const probe = clientFor(pki, target, 'probe', { serverName: 'localhost' });
    clients.push(c, probe);
    const watched: string[] = [];
    const sawNotServing = (async () => {
      for await (const status of probe.watchHealth('')) {
        watched.push(status);
        if (status === 'NOT_SERVING') return;
      }
    })();
    await probe.checkHealth('');
    const streamed: number[] = [];
    const inFlight = (async () => {
      for await (const r of c.serverStream('work', 6, 100)) streamed.push(r.sequence);
    })();
    // Shutdown begins once the stream is under way.
    while (streamed.length === 0) await new Promise((r) => setImmediate(r));
    const stopped = s.server.shutdown();
    await sawNotServing;
    expect(watched).toEqual(['SERVING', 'NOT_SERVING']);
    expect(await probe.checkHealth('')).toBe('NOT_SERVING');
    expect(await probe.checkHealth('echo.v1.EchoService')).toBe('NOT_SERVING');
    await inFlight;
    expect(streamed).toEqual([0, 1, 2, 3, 4, 5]);
    expect(await stopped).toBe('graceful');
  });

  it('does not let a long-lived stream hold shutdown past its deadline', async () => {
    const s = await startInProcess(pki, {
      SHUTDOWN_DRAIN_DELAY_MS: '0',
      SHUTDOWN_TIMEOUT_MS: '300',
      LOG_LEVEL: 'warn',
    });
    const c = clientFor(pki, `127.0.0.1:${s.port}`, 'client', {
      serverName: 'localhost',
      deadlineMs: 60_000,
    });
    clients.push(c);
    const received: number[] = [];
    const endless = (async () => {
      for await (const r of c.serverStream('forever', 1000, 1000)) received.push(r.sequence);
    })();
    while (received.length === 0) await new Promise((r) => setImmediate(r));
    expect(await s.server.shutdown()).toBe('forced');
    // The server cut the connection: the stream ends now, not at its 60 s deadline.
    expect(
      s.logs.lines.find((l) => l.msg === 'shutdown deadline passed: connections cut'),
    ).toMatchObject({ connections: 1 });
    await expect(endless).rejects.toMatchObject({ code: grpc.status.CANCELLED });
  });
});
