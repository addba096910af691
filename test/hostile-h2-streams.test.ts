// Attacks below gRPC, part 2: readers that never open their window, and
// floods of streams and connections, as raw HTTP/2 over mTLS against a real
// server process, with the same checks as part 1 (test/hostile-h2.test.ts).
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { grpcMessage, serverStreamRequest } from './helpers/h2-calls.js';
import {
  CODE,
  SETTING,
  TYPE,
  dataFrames,
  frame,
  grpcRequestBlock,
  headersFrame,
  type RawH2,
} from './helpers/h2-frames.js';
import { LIMITS, hostileSuite } from './helpers/h2-suite.js';
import { within } from '../scripts/lib/within.js';

const suite = hostileSuite();
/** Resolves after `ms`, or as soon as the connection closes. */
const settle = (c: RawH2, ms: number): Promise<void> =>
  within(c.closed, ms, 'still open').catch(() => {});

describe('streams and connections', () => {
  it('holds every RPC kind for a reader with a zero window, within the bound, and sends once it opens', async () => {
    // Two connections, each with all 16 streams busy on replies that cannot be sent.
    const big = 'z'.repeat(60_000);
    const conns = [
      await suite.connectRaw([[SETTING.INITIAL_WINDOW_SIZE, 0]]),
      await suite.connectRaw([[SETTING.INITIAL_WINDOW_SIZE, 0]]),
    ];
    const meanwhile = suite.other.echo('meanwhile');
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
    await suite.expectMemoryWithin(2);
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
    const c = await suite.connectRaw();
    const meanwhile = suite.other.echo('meanwhile');
    for (let i = 0; i < 1000 && !c.isClosed; i++)
      c.send(headersFrame(1 + 2 * i, grpcRequestBlock('Echo')));
    await c.until(() => c.isClosed, 'the connection closing');
    // nghttp2 takes a stream beyond an acknowledged limit as a connection error.
    expect(c.goaway?.code ?? CODE.PROTOCOL_ERROR).toBe(CODE.PROTOCOL_ERROR);
    expect(c.headersOn.size).toBe(0);
    expect((await meanwhile).message).toBe('meanwhile');
    await suite.expectMemoryWithin(1);
  });

  it(`refuses connections beyond MAX_CONNECTIONS (${LIMITS.maxConnections}) and logs it, rate-limited`, async () => {
    const attempts = LIMITS.maxConnections + 16;
    const tls = readFileSync(join(suite.pki, 'client.crt'));
    const key = readFileSync(join(suite.pki, 'client.key'));
    const ca = readFileSync(join(suite.pki, 'ca.crt'));
    const sockets = Array.from({ length: attempts }, () =>
      tlsConnect({
        host: '127.0.0.1',
        port: suite.server.port,
        servername: 'localhost',
        ca,
        cert: tls,
        key,
        ALPNProtocols: ['h2'],
      }),
    );
    try {
      const meanwhile = suite.other.echo('meanwhile');
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
      const line = await suite.server.waitForLog(
        (l) => l.msg === 'connection refused: MAX_CONNECTIONS reached',
      );
      expect(line).toMatchObject({ level: 'warn', maxConnections: LIMITS.maxConnections });
      // At most 5 refusal lines a second, however many were refused.
      const lines = suite.server.lines.filter(
        (l) => l.msg === 'connection refused: MAX_CONNECTIONS reached',
      );
      expect(lines.length).toBeLessThanOrEqual(5 * 2);
      await suite.expectMemoryWithin(LIMITS.maxConnections);
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
