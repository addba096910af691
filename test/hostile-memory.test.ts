// Callers that try to make the server hold memory without bound, against a
// real server process whose resident memory is read from outside
// (/proc/<pid>/status). Each case floods for a bounded time and shows the
// server under its stated bound while another client is answered meanwhile.
import { describe, expect, it } from 'vitest';
import { memoryBound } from '../src/server/transport-limits.js';
import { flood, grpcMessage, mtlsSession, openCall, rssMiB } from './helpers/h2-calls.js';
import { LIMITS, hostileSuite } from './helpers/h2-suite.js';

/** How long each flood runs: the unbounded server grew by about 70 MiB a second. */
const FLOOD_MS = 3000;
const MESSAGE = grpcMessage('x'.repeat(32 * 1024));

const suite = hostileSuite();

/** Floods `calls` calls of `method` on each of `connections` connections, sampling the server's RSS. */
async function floodAndWatch(method: 'Chat' | 'ClientStream', connections: number, calls: number) {
  const { server, other } = suite;
  const pid = server.child.pid!;
  const sessions = Array.from({ length: connections }, () => mtlsSession(suite.pki, server.port));
  // Each case from where the one before left: RSS rarely shrinks, so it is the growth that counts.
  const startMiB = await rssMiB(pid);
  let peakMiB = startMiB;
  const sampler = setInterval(() => {
    void rssMiB(pid).then(
      (m) => (peakMiB = Math.max(peakMiB, m)),
      () => {},
    );
  }, 100);
  try {
    const until = Date.now() + FLOOD_MS;
    const floods = sessions.flatMap((s) =>
      Array.from({ length: calls }, () => flood(openCall(s, method), MESSAGE, until)),
    );
    // Meanwhile another client is answered, on its own connection.
    const answered = await other.echo('meanwhile');
    const sent = (await Promise.all(floods)).reduce((a, b) => a + b, 0);
    peakMiB = Math.max(peakMiB, await rssMiB(pid));
    return { answered: answered.message, sentMiB: sent / 1048576, grownMiB: peakMiB - startMiB };
  } finally {
    clearInterval(sampler);
    for (const s of sessions) s.destroy();
  }
}

describe('memory under callers that do not let go', () => {
  it('logs the bound it keeps at start-up', () => {
    const serving = suite.server.lines.find((l) => l.msg === 'serving');
    const bound = memoryBound(LIMITS);
    expect(serving?.memoryBoundMiB).toMatchObject({
      perCall: Math.round((bound.perCall / 1048576) * 10) / 10,
      perConnection: Math.round((bound.perConnection / 1048576) * 10) / 10,
    });
  });

  it('stops reading a Chat caller that sends fast and never reads its replies', async () => {
    const r = await floodAndWatch('Chat', 1, 1);
    expect(r.answered).toBe('meanwhile');
    // What it got in is what flow control allowed: windows and buffers, not seconds of flooding.
    expect(r.sentMiB).toBeLessThan(2);
    expect(r.grownMiB).toBeLessThan(suite.allowedMiB(1));
  });

  it('keeps memory flat under a ClientStream caller with endless input', async () => {
    const r = await floodAndWatch('ClientStream', 1, 1);
    expect(r.answered).toBe('meanwhile');
    expect(r.grownMiB).toBeLessThan(suite.allowedMiB(1));
  });

  it('stays under the bound with every stream of four connections flooding at once', async () => {
    const chats = floodAndWatch('Chat', 2, LIMITS.maxConcurrentStreams);
    const streams = floodAndWatch('ClientStream', 2, LIMITS.maxConcurrentStreams);
    const [c, s] = await Promise.all([chats, streams]);
    expect(c.answered).toBe('meanwhile');
    expect(s.answered).toBe('meanwhile');
    expect(Math.max(c.grownMiB, s.grownMiB)).toBeLessThan(suite.allowedMiB(4));
  });
});
