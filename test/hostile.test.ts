// Hostile and broken input against a live server. After every case the server
// must still answer Echo and report SERVING.
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { once } from 'node:events';
import { connect as http2Connect } from 'node:http2';
import { readFile } from 'node:fs/promises';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EchoClient } from '../src/client/client.js';
import { STREAM_LIMITS } from '../src/server/echo-service.js';
import type { EchoServer } from '../src/server/server.js';
import { CLIENT_ID, loadCa, makePki, tempDir, writeLeaf } from './helpers/pki.js';
import { echoOnce, expectHandshakeRefused, presentingCredentials } from './helpers/refusal.js';
import { within } from '../scripts/lib/within.js';
import { clientFor, startInProcess, type LogCapture } from './helpers/server.js';

/** Small limits so the cases run fast; the mechanisms are the same at production values. */
const HANDSHAKE_TIMEOUT_MS = 500;
const MAX_MESSAGE_BYTES = 64 * 1024;
const MAX_STREAMS = 8;
/** Bounds every wait on the server to act: a case fails rather than hangs. */
const BOUND_MS = 10_000;

let dir: Awaited<ReturnType<typeof tempDir>>;
let pki: string;
let server: EchoServer;
let port: number;
let client: EchoClient;
let logs: LogCapture;
const read = (f: string) => readFile(join(pki, f));

const inTime = <T>(promise: Promise<T>, what: string): Promise<T> =>
  within(promise, BOUND_MS, `${what} did not happen within ${BOUND_MS} ms`);

/** The bytes of a real TLS ClientHello, captured from Node's TLS client. */
async function captureClientHello(): Promise<Buffer> {
  const sink = createServer();
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');
  const hello = once(sink, 'connection').then(async ([socket]) => {
    const [data] = (await once(socket as Socket, 'data')) as [Buffer];
    (socket as Socket).destroy();
    return data;
  });
  const tls = tlsConnect({
    host: '127.0.0.1',
    port: (sink.address() as { port: number }).port,
    rejectUnauthorized: false,
    ALPNProtocols: ['h2'],
  });
  tls.on('error', () => {});
  const bytes = await hello;
  tls.destroy();
  sink.close();
  return bytes;
}

beforeAll(async () => {
  dir = await tempDir();
  pki = join(dir.path, 'pki');
  await makePki(pki);
  ({ server, port, logs } = await startInProcess(pki, {
    // Warnings only: the refusal tests read the server's lines, the floods write no access lines.
    LOG_LEVEL: 'warn',
    TLS_HANDSHAKE_TIMEOUT_MS: String(HANDSHAKE_TIMEOUT_MS),
    GRPC_MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES),
    GRPC_MAX_CONCURRENT_STREAMS: String(MAX_STREAMS),
  }));
  client = clientFor(pki, `127.0.0.1:${port}`, 'client', { serverName: 'localhost' });
});
afterEach(async () => {
  const fresh = clientFor(pki, `127.0.0.1:${port}`, 'probe', { serverName: 'localhost' });
  try {
    expect(await fresh.checkHealth('')).toBe('SERVING');
  } finally {
    fresh.close();
  }
  expect((await client.echo('still alive')).message).toBe('still alive');
});
afterAll(async () => {
  client.close();
  await server.shutdown();
  await dir.remove();
});

describe('the transport under hostile input', () => {
  it('closes a connection that sends a ClientHello and then nothing, within the handshake timeout', async () => {
    const hello = await captureClientHello();
    const socket = netConnect({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    socket.on('data', () => {});
    await once(socket, 'connect');
    socket.write(hello);
    await inTime(once(socket, 'close'), 'the server closing a stalled handshake');
  });

  it('keeps serving others, with bounded memory, while a thousand connections never finish their handshake', async () => {
    const before = process.memoryUsage().rss;
    const sockets: Socket[] = [];
    try {
      await Promise.all(
        Array.from({ length: 1000 }, async () => {
          const s = netConnect({ host: '127.0.0.1', port });
          s.on('error', () => {});
          sockets.push(s);
          await once(s, 'connect');
        }),
      );
      expect((await client.echo('amid the crowd')).message).toBe('amid the crowd');
      const grownMiB = (process.memoryUsage().rss - before) / 1024 / 1024;
      // Client and server share this process: 1000 idle sockets on both ends stay far below this.
      expect(grownMiB).toBeLessThan(150);
      // The handshake timeout reaps them all.
      await inTime(
        Promise.all(sockets.map((s) => (s.destroyed ? Promise.resolve() : once(s, 'close')))),
        'the server closing every stalled connection',
      );
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it('refuses random bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 2048 }), async (bytes) => {
        const s = netConnect({ host: '127.0.0.1', port });
        s.on('error', () => {});
        s.on('data', () => {});
        s.end(Buffer.from(bytes));
        await inTime(once(s, 'close'), 'the server closing a garbage connection');
      }),
      { numRuns: 25 },
    );
  });

  it('refuses a TLS connection that does not negotiate h2 by ALPN', async () => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: await read('ca.crt'),
      cert: await read('client.crt'),
      key: await read('client.key'),
      ALPNProtocols: ['http/1.1'],
    });
    let refusal = '';
    s.on('error', (e: Error) => (refusal = e.message));
    let answer = '';
    s.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'));
    await inTime(
      new Promise((resolve) => s.once('close', resolve)),
      'the server closing a non-h2 connection',
    );
    expect(refusal).toMatch(/no application protocol/);
    expect(answer).toBe('');
  });
});

describe('RPCs under hostile input', () => {
  it('answers a message larger than the maximum with RESOURCE_EXHAUSTED', async () => {
    await expect(client.echo('x'.repeat(MAX_MESSAGE_BYTES + 1))).rejects.toMatchObject({
      code: grpc.status.RESOURCE_EXHAUSTED,
    });
  });

  it('refuses a message from its length prefix alone, so nothing beyond the limit is buffered', async () => {
    const session = http2Connect(`https://127.0.0.1:${port}`, {
      servername: 'localhost',
      ca: await read('ca.crt'),
      cert: await read('client.crt'),
      key: await read('client.key'),
    });
    session.on('error', () => {});
    try {
      const req = session.request({
        ':method': 'POST',
        ':path': '/echo.v1.EchoService/Echo',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      req.on('error', () => {});
      req.on('data', () => {});
      // Uncompressed, 1 GiB declared; only 10 bytes follow and the stream stays open.
      const header = Buffer.alloc(5);
      header.writeUInt32BE(1024 * 1024 * 1024, 1);
      req.write(Buffer.concat([header, Buffer.alloc(10)]));
      const trailers = await inTime(
        // A trailers-only answer carries the status in the response headers.
        new Promise<Record<string, string>>((resolve) => {
          req.once('trailers', resolve);
          req.once('response', (h: Record<string, string>) => h['grpc-status'] && resolve(h));
        }),
        'the server answering an oversized length prefix',
      );
      expect(trailers['grpc-status']).toBe(String(grpc.status.RESOURCE_EXHAUSTED));
      expect(decodeURIComponent(trailers['grpc-message'] ?? '')).toMatch(
        /larger than max \(1073741824 vs 65536\)/,
      );
    } finally {
      session.close();
    }
  });

  it('answers a malformed protobuf message with INTERNAL, not a crash', async () => {
    const Generic = grpc.makeGenericClientConstructor(
      {
        Echo: {
          path: '/echo.v1.EchoService/Echo',
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      'Raw',
    );
    const raw = new Generic(
      `127.0.0.1:${port}`,
      grpc.credentials.createSsl(
        await read('ca.crt'),
        await read('client.key'),
        await read('client.crt'),
      ),
      { 'grpc.ssl_target_name_override': 'localhost' },
    ) as unknown as grpc.Client & {
      Echo: (
        req: Buffer,
        opts: grpc.CallOptions,
        cb: (err: grpc.ServiceError | null) => void,
      ) => void;
    };
    try {
      const send = (bytes: number[]) =>
        new Promise<grpc.ServiceError | null>((resolve) =>
          raw.Echo(Buffer.from(bytes), { deadline: Date.now() + 5000 }, resolve),
        );
      // A field tag whose length never comes; then an over-long varint tag. Both undecodable.
      expect((await send([0x0a]))?.code).toBe(grpc.status.INTERNAL);
      expect((await send([...new Array<number>(10).fill(0xff), 0x01]))?.code).toBe(
        grpc.status.INTERNAL,
      );
    } finally {
      raw.close();
    }
  });

  it('survives a stream opened and abandoned', async () => {
    const abandoning = clientFor(pki, `127.0.0.1:${port}`, 'client', {
      serverName: 'localhost',
      deadlineMs: 60_000,
    });
    const call = abandoning.raw.Chat({ deadline: Date.now() + 60_000 });
    call.on('error', () => {});
    call.write({ message: 'hello, then silence' });
    await once(call, 'data');
    abandoning.close(); // no end(), no cancel(): the connection just goes away
  });

  it(`caps concurrent streams per connection at ${MAX_STREAMS} and serves the rest in turn`, async () => {
    const crowd = clientFor(pki, `127.0.0.1:${port}`, 'client', {
      serverName: 'localhost',
      deadlineMs: 30_000,
    });
    try {
      let active = 0;
      let peak = 0;
      const streams = Array.from({ length: MAX_STREAMS * 4 }, async (_, i) => {
        let counted = false;
        for await (const r of crowd.serverStream(`s${i}`, 3, 20)) {
          if (!counted) {
            counted = true;
            peak = Math.max(peak, ++active);
          }
          void r;
        }
        active--;
      });
      await Promise.all(streams);
      expect(peak).toBeLessThanOrEqual(MAX_STREAMS);
      expect(peak).toBeGreaterThan(1);
    } finally {
      crowd.close();
    }
  });
});

describe('client certificates under hostile input', () => {
  /** An Echo presenting the leaf with credentials that check nothing themselves, so the server decides. */
  const attempt = (leaf: { certFile: string; keyFile: string }) => async () =>
    echoOnce(
      `127.0.0.1:${port}`,
      await presentingCredentials({ caFile: join(pki, 'ca.crt'), ...leaf }),
    );

  it('refuses a client certificate that is not yet valid', async () => {
    const leaf = await writeLeaf(dir.path, 'future-client', await loadCa(pki), {
      spiffeId: CLIENT_ID,
      now: new Date(Date.now() + 5 * 86_400_000),
    });
    await expectHandshakeRefused(logs, attempt(leaf), {
      code: 'CERT_NOT_YET_VALID',
      reason: /certificate is not yet valid/,
      commonName: 'future-client',
    });
  });

  it('refuses a client certificate signed by a leaf instead of the CA', async () => {
    const issuer = await writeLeaf(dir.path, 'leaf-issuer', await loadCa(pki), {});
    const forged = await writeLeaf(dir.path, 'leaf-signed', issuer.leaf, { spiffeId: CLIENT_ID });
    // The client sends only its leaf; the issuing leaf is not a CA the server knows.
    await expectHandshakeRefused(logs, attempt(forged), {
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      reason: /unable to verify the first certificate/,
      commonName: 'leaf-signed',
    });
  });
});

describe('request fields under fuzzing', () => {
  it('echoes any message and validates any stream request, for arbitrary field values', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'binary', maxLength: 512 }),
        fc.integer({ min: 0, max: 2_000 }),
        fc.integer({ min: 0, max: 20_000 }),
        async (message, count, interval) => {
          expect((await client.echo(message)).message).toBe(message);
          const valid =
            count >= 1 &&
            count <= STREAM_LIMITS.maxCount &&
            interval <= STREAM_LIMITS.maxIntervalMs;
          // Run valid streams quickly: the interval is the server's to honour, the count is what we check.
          const got: number[] = [];
          const run = async () => {
            for await (const r of client.serverStream(
              message,
              valid ? Math.min(count, 5) : count,
              valid ? 0 : interval,
            ))
              got.push(r.sequence);
          };
          if (valid) {
            await run();
            expect(got).toEqual([...Array(Math.min(count, 5)).keys()]);
          } else {
            await expect(run()).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
          }
        },
      ),
      { numRuns: 60, interruptAfterTimeLimit: 20_000 },
    );
  });
});
