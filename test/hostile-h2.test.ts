// Attacks below gRPC: raw HTTP/2 frames over an authenticated TLS connection
// (test/helpers/h2-frames.ts), against a real server process. Each case is
// bounded in frames and time; during each, another client's Echo is answered;
// after each, the server reports SERVING and its resident memory (read from
// /proc) grew less than the stated bound for the connections the case used.
import { once } from 'node:events';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EchoClient } from '../src/client.js';
import { memoryBound } from '../src/transport-limits.js';
import { grpcMessage, rssMiB, serverStreamRequest } from './helpers/h2-calls.js';
import {
  CODE,
  SETTING,
  TYPE,
  dataFrames,
  frame,
  grpcRequestBlock,
  headerFrames,
  headersFrame,
  indexed,
  literal,
  literalIndexed,
  pingFrame,
  rawH2,
  rstFrame,
  settingsFrame,
  tableSizeUpdate,
  type RawH2,
} from './helpers/h2-frames.js';
import { makePki, tempDir } from './helpers/pki.js';
import {
  clientFor,
  killProcess,
  pkiEnv,
  startServerProcess,
  type ServerProcess,
} from './helpers/server.js';

/** Small limits so breaches show at once; the mechanisms are the production ones. */
const LIMITS = {
  maxMessageBytes: 64 * 1024,
  maxConcurrentStreams: 16,
  maxSessionMemoryMiB: 4,
  maxConnections: 24,
};
/** Garbage the V8 heap may keep between collections: RSS is not only what is held. */
const GC_SLACK_MiB = 64;

let dir: Awaited<ReturnType<typeof tempDir>>;
let pki: string;
let server: ServerProcess;
let other: EchoClient;
let startMiB: number;
let open: RawH2[] = [];

const connectRaw = async (settings: [number, number][] = []) => {
  const c = await rawH2(pki, server.port, settings);
  open.push(c);
  return c;
};
/** Resolves after `ms`, or as soon as the connection closes. */
const settle = (c: RawH2, ms: number) =>
  Promise.race([c.closed, new Promise<void>((resolve) => setTimeout(resolve, ms))]);
const maxGrowthMiB = (connections: number) =>
  (connections * memoryBound(LIMITS).perConnection) / 1048576 + GC_SLACK_MiB;

async function expectMemoryWithin(connections: number): Promise<void> {
  const grown = (await rssMiB(server.child.pid!)) - startMiB;
  expect(grown).toBeLessThan(maxGrowthMiB(connections));
}

beforeAll(async () => {
  dir = await tempDir();
  pki = join(dir.path, 'pki');
  await makePki(pki);
  server = await startServerProcess({
    ...pkiEnv(pki),
    ACCESS_LOG: 'false',
    GRPC_MAX_MESSAGE_BYTES: String(LIMITS.maxMessageBytes),
    GRPC_MAX_CONCURRENT_STREAMS: String(LIMITS.maxConcurrentStreams),
    GRPC_MAX_SESSION_MEMORY_MIB: String(LIMITS.maxSessionMemoryMiB),
    MAX_CONNECTIONS: String(LIMITS.maxConnections),
  });
  other = clientFor(pki, `127.0.0.1:${server.port}`, 'client', { serverName: 'localhost' });
  for (let i = 0; i < 20; i++) await other.echo('warm-up');
});
beforeEach(async () => {
  startMiB = await rssMiB(server.child.pid!);
});
afterEach(async () => {
  for (const c of open) c.close();
  open = [];
  const probe = clientFor(pki, `127.0.0.1:${server.port}`, 'probe', { serverName: 'localhost' });
  try {
    expect(await probe.checkHealth('')).toBe('SERVING');
  } finally {
    probe.close();
  }
  expect((await other.echo('after')).message).toBe('after');
});
afterAll(async () => {
  other?.close();
  if (server) await killProcess(server.child);
  await dir?.remove();
});

describe('floods of control frames', () => {
  it('ends a rapid-reset flood (HEADERS then RST_STREAM, 5000 times) with GOAWAY INTERNAL_ERROR', async () => {
    const c = await connectRaw();
    const meanwhile = other.echo('meanwhile');
    for (let batch = 0; batch < 25 && !c.isClosed; batch++) {
      const frames: Buffer[] = [];
      for (let i = 0; i < 200; i++) {
        const id = 1 + 2 * (batch * 200 + i);
        frames.push(headersFrame(id, grpcRequestBlock('Echo')), rstFrame(id, CODE.CANCEL));
      }
      c.send(...frames);
    }
    await c.until(() => c.goaway !== null, 'GOAWAY');
    // nghttp2's reset-rate limit (since 1.57) ends the connection long before the flood does.
    expect(c.goaway).toMatchObject({ code: CODE.INTERNAL_ERROR });
    expect(c.goaway!.lastStream).toBeLessThan(2 * 5000);
    expect((await meanwhile).message).toBe('meanwhile');
    await expectMemoryWithin(1);
  });

  it.each([
    ['empty CONTINUATION frames', () => Buffer.alloc(0)],
    ['CONTINUATION frames of headers', (i: number) => literal(`x-h${i}`, 'v'.repeat(100))],
  ])('ends a header block that never ends (%s) with GOAWAY INTERNAL_ERROR', async (_, block) => {
    const c = await connectRaw();
    const meanwhile = other.echo('meanwhile');
    c.send(headersFrame(1, grpcRequestBlock('Echo'), 0));
    for (let i = 0; i < 2000 && !c.isClosed; i++) c.send(frame(TYPE.CONTINUATION, 0, 1, block(i)));
    await c.until(() => c.isClosed, 'the connection closing');
    // nghttp2 (since 1.61) allows a header block 8 CONTINUATION frames.
    expect(c.goaway).toMatchObject({ lastStream: 1, code: CODE.INTERNAL_ERROR });
    expect(c.headersOn.size).toBe(0);
    expect((await meanwhile).message).toBe('meanwhile');
    await expectMemoryWithin(1);
  });

  it('closes a connection that floods SETTINGS without reading the ACKs, with GOAWAY INTERNAL_ERROR', async () => {
    const c = await connectRaw();
    const meanwhile = other.echo('meanwhile');
    c.socket.pause();
    for (let i = 0; i < 20_000 && !c.isClosed; i++)
      c.send(settingsFrame([[SETTING.INITIAL_WINDOW_SIZE, 65_535]]));
    c.socket.resume();
    await c.until(() => c.isClosed, 'the connection closing');
    expect(c.goaway).toMatchObject({ code: CODE.INTERNAL_ERROR });
    expect((await meanwhile).message).toBe('meanwhile');
    await expectMemoryWithin(1);
  });

  it('closes a connection that floods PINGs, answering only a bounded number of them', async () => {
    const c = await connectRaw();
    const meanwhile = other.echo('meanwhile');
    c.socket.pause();
    for (let i = 0; i < 20_000 && !c.isClosed; i++) c.send(pingFrame(i));
    c.socket.resume();
    await c.until(() => c.isClosed, 'the connection closing');
    // nghttp2 stops queueing answers the peer does not read and drops the connection.
    expect(c.counts.get(TYPE.PING) ?? 0).toBeLessThan(20_000);
    expect((await meanwhile).message).toBe('meanwhile');
    await expectMemoryWithin(1);
  });
});

describe('header compression', () => {
  it('resets an HPACK bomb stream with ENHANCE_YOUR_CALM and keeps the connection usable', async () => {
    // The peer offers us a huge table; we send one 4000-byte entry referenced 2000 times (8 MB from 6 KB).
    const c = await connectRaw([[SETTING.HEADER_TABLE_SIZE, 0xffffffff]]);
    const meanwhile = other.echo('meanwhile');
    const refs = Array.from({ length: 2000 }, () => indexed(62));
    c.send(
      headersFrame(
        1,
        Buffer.concat([
          grpcRequestBlock('Echo'),
          literalIndexed('x-bomb', 'b'.repeat(4000)),
          ...refs,
        ]),
      ),
    );
    await c.until(() => c.rstCodes.has(1), 'RST_STREAM on the bomb');
    expect(c.rstCodes.get(1)).toBe(CODE.ENHANCE_YOUR_CALM);
    // The same connection still carries a call: its header tables are intact.
    c.send(headersFrame(3, grpcRequestBlock('Echo')), ...dataFrames(3, grpcMessage('after'), true));
    await c.until(() => (c.dataBytes.get(3) ?? 0) > 0, 'the answer on stream 3');
    expect(c.isClosed).toBe(false);
    expect((await meanwhile).message).toBe('meanwhile');
    await expectMemoryWithin(1);
  });

  it('resets a request whose headers exceed GRPC_MAX_HEADER_LIST_BYTES with ENHANCE_YOUR_CALM', async () => {
    const c = await connectRaw();
    const meanwhile = other.echo('meanwhile');
    // 20 KB: over our 16 KiB, under Node's own 64 KiB default, so the setting is what refuses it.
    c.send(...headerFrames(1, grpcRequestBlock('Echo', [literal('x-big', 'm'.repeat(20_000))])));
    c.send(headersFrame(3, grpcRequestBlock('Echo', [literal('x-fits', 'm'.repeat(8_000))])));
    c.send(...dataFrames(3, grpcMessage('fits'), true));
    await c.until(() => c.rstCodes.has(1) && (c.dataBytes.get(3) ?? 0) > 0, 'both answers');
    expect(c.rstCodes.get(1)).toBe(CODE.ENHANCE_YOUR_CALM);
    expect(c.rstCodes.has(3)).toBe(false);
    expect((await meanwhile).message).toBe('meanwhile');
    await expectMemoryWithin(1);
  });

  it('refuses a dynamic table size above what the server allowed with GOAWAY COMPRESSION_ERROR', async () => {
    const c = await connectRaw();
    const meanwhile = other.echo('meanwhile');
    c.send(headersFrame(1, Buffer.concat([tableSizeUpdate(1 << 30), grpcRequestBlock('Echo')])));
    await c.until(() => c.goaway !== null, 'GOAWAY');
    expect(c.goaway).toMatchObject({ code: CODE.COMPRESSION_ERROR });
    expect((await meanwhile).message).toBe('meanwhile');
    await expectMemoryWithin(1);
  });

  const invalid: [string, Buffer][] = [
    [
      'no :path',
      Buffer.concat([
        literal(':method', 'POST'),
        literal(':scheme', 'https'),
        literal(':authority', 'localhost'),
        literal('content-type', 'application/grpc'),
      ]),
    ],
    ['an unknown pseudo-header', grpcRequestBlock('Echo', [literal(':foo', 'bar')])],
    ['a response pseudo-header', grpcRequestBlock('Echo', [literal(':status', '200')])],
    ['a second :path', grpcRequestBlock('Echo', [literal(':path', '/x')])],
    [
      'a pseudo-header after a regular one',
      Buffer.concat([literal('content-type', 'application/grpc'), grpcRequestBlock('Echo')]),
    ],
    ['an upper-case name', grpcRequestBlock('Echo', [literal('X-Upper', 'v')])],
    ['a connection-specific header', grpcRequestBlock('Echo', [literal('connection', 'close')])],
  ];
  it('resets requests with invalid pseudo-headers with PROTOCOL_ERROR, each on its stream', async () => {
    const c = await connectRaw();
    const meanwhile = other.echo('meanwhile');
    invalid.forEach(([, block], i) => c.send(headersFrame(1 + 2 * i, block)));
    await c.until(() => c.rstCodes.size === invalid.length, 'a RST_STREAM for each');
    expect(
      Object.fromEntries(invalid.map(([what], i) => [what, c.rstCodes.get(1 + 2 * i)])),
    ).toEqual(Object.fromEntries(invalid.map(([what]) => [what, CODE.PROTOCOL_ERROR])));
    expect(c.headersOn.size).toBe(0);
    expect(c.isClosed).toBe(false);
    expect((await meanwhile).message).toBe('meanwhile');
    await expectMemoryWithin(1);
  });
});

describe('streams and connections', () => {
  it('holds every RPC kind for a reader with a zero window, within the bound, and sends once it opens', async () => {
    // Two connections, each with all 16 streams busy on replies that cannot be sent.
    const big = 'z'.repeat(60_000);
    const conns = [
      await connectRaw([[SETTING.INITIAL_WINDOW_SIZE, 0]]),
      await connectRaw([[SETTING.INITIAL_WINDOW_SIZE, 0]]),
    ];
    const meanwhile = other.echo('meanwhile');
    for (const c of conns) {
      for (let i = 0; i < 4; i++) {
        const base = 1 + 8 * i;
        c.send(
          headersFrame(base, grpcRequestBlock('ServerStream')),
          // Half as fast as the server can, half one reply a millisecond.
          ...dataFrames(base, serverStreamRequest(big, 1000, i % 2), true),
          headersFrame(base + 2, grpcRequestBlock('Chat')),
          ...dataFrames(base + 2, Buffer.concat([grpcMessage(big), grpcMessage(big)])),
          headersFrame(base + 4, grpcRequestBlock('ClientStream')),
          ...dataFrames(base + 4, grpcMessage(big), true),
          headersFrame(base + 6, grpcRequestBlock('Echo')),
          ...dataFrames(base + 6, grpcMessage(big), true),
        );
      }
    }
    // Every call answers with its headers (not flow-controlled) and then waits on the window.
    for (const c of conns) await c.until(() => c.headersOn.size === 16, 'response headers');
    await settle(conns[0]!, 1000);
    expect((await meanwhile).message).toBe('meanwhile');
    await expectMemoryWithin(2);
    for (const c of conns) {
      expect(c.isClosed).toBe(false);
      expect(c.dataBytes.size).toBe(0);
    }
    // Opening the window of one ServerStream (and the connection) lets its replies flow.
    const c = conns[0]!;
    const grant = Buffer.alloc(4);
    grant.writeUInt32BE(1 << 20);
    c.send(frame(TYPE.WINDOW_UPDATE, 0, 0, grant), frame(TYPE.WINDOW_UPDATE, 0, 1, grant));
    await c.until(() => (c.dataBytes.get(1) ?? 0) >= 1 << 20, 'the replies of stream 1');
  });

  it(`closes a connection that opens more than ${LIMITS.maxConcurrentStreams} streams at once, answering none beyond`, async () => {
    const c = await connectRaw();
    const meanwhile = other.echo('meanwhile');
    for (let i = 0; i < 1000 && !c.isClosed; i++)
      c.send(headersFrame(1 + 2 * i, grpcRequestBlock('Echo')));
    await c.until(() => c.isClosed, 'the connection closing');
    // nghttp2 takes a stream beyond an acknowledged limit as a connection error.
    expect(c.goaway?.code ?? CODE.PROTOCOL_ERROR).toBe(CODE.PROTOCOL_ERROR);
    expect(c.headersOn.size).toBe(0);
    expect((await meanwhile).message).toBe('meanwhile');
    await expectMemoryWithin(1);
  });

  it(`refuses connections beyond MAX_CONNECTIONS (${LIMITS.maxConnections}) and logs it, rate-limited`, async () => {
    const attempts = LIMITS.maxConnections + 16;
    const tls = readFileSync(join(pki, 'client.crt'));
    const key = readFileSync(join(pki, 'client.key'));
    const ca = readFileSync(join(pki, 'ca.crt'));
    const sockets = Array.from({ length: attempts }, () =>
      tlsConnect({
        host: '127.0.0.1',
        port: server.port,
        servername: 'localhost',
        ca,
        cert: tls,
        key,
        ALPNProtocols: ['h2'],
      }),
    );
    try {
      const meanwhile = other.echo('meanwhile');
      const outcomes = await Promise.all(
        sockets.map(
          (s) =>
            new Promise<'connected' | 'refused'>((resolve) => {
              s.once('secureConnect', () => resolve('connected'));
              s.once('error', () => resolve('refused'));
              s.once('close', () => resolve('refused'));
            }),
        ),
      );
      const refused = outcomes.filter((o) => o === 'refused').length;
      // The other client's connection holds one place.
      expect(refused).toBeGreaterThanOrEqual(attempts - LIMITS.maxConnections + 1);
      expect((await meanwhile).message).toBe('meanwhile');
      const line = await server.waitForLog(
        (l) => l.msg === 'connection refused: MAX_CONNECTIONS reached',
      );
      expect(line).toMatchObject({ level: 'warn', maxConnections: LIMITS.maxConnections });
      // At most 5 refusal lines a second, however many were refused.
      const lines = server.lines.filter(
        (l) => l.msg === 'connection refused: MAX_CONNECTIONS reached',
      );
      expect(lines.length).toBeLessThanOrEqual(5 * 2);
      await expectMemoryWithin(LIMITS.maxConnections);
    } finally {
      // Every place is given back before the next case connects.
      await Promise.all(
        sockets.map(async (s) => {
          if (s.destroyed) return;
          s.destroy();
          await once(s, 'close');
        }),
      );
    }
  });
});
