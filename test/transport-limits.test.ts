// The memory-bound settings: parsed, refused when wrong, listed in --help, and
// turned into the HTTP/2 options and the bound the README states.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/shared/options.js';
import { parseServerConfig, serverHelp } from '../src/server/config.js';
import { http2Options, memoryBound } from '../src/server/transport-limits.js';
import { makePki, tempDir } from './helpers/pki.js';
import { grpcMessage } from './helpers/h2-calls.js';
import {
  CODE,
  SETTING,
  dataFrames,
  grpcRequestBlock,
  headersFrame,
  rawH2,
} from './helpers/h2-frames.js';
import { clientFor, runTs, startInProcess } from './helpers/server.js';

const MiB = 1024 * 1024;

describe('memory-bound settings', () => {
  it('takes each from its variable or its flag, with defaults that bound a connection', () => {
    const { config } = parseServerConfig(['--max-connections', '50'], {
      GRPC_MAX_SESSION_MEMORY_MIB: '8',
      GRPC_MAX_HEADER_LIST_BYTES: '4096',
    });
    expect(config).toMatchObject({
      maxConnections: 50,
      maxSessionMemoryMiB: 8,
      maxHeaderListBytes: 4096,
    });
    expect(parseServerConfig([], {}).config).toMatchObject({
      maxConnections: 1000,
      maxSessionMemoryMiB: 32,
      maxHeaderListBytes: 16 * 1024,
    });
  });

  it.each([
    ['MAX_CONNECTIONS', '0', /invalid --max-connections \(MAX_CONNECTIONS\) "0".*from 1 to/],
    ['GRPC_MAX_SESSION_MEMORY_MIB', 'lots', /--max-session-memory-mib .*whole number/],
    ['GRPC_MAX_HEADER_LIST_BYTES', '100', /--max-header-list-bytes .*from 1024 to/],
  ])('refuses %s=%s naming the setting and what it accepts', (name, value, message) => {
    expect(() => parseServerConfig([], { [name]: value })).toThrow(UsageError);
    expect(() => parseServerConfig([], { [name]: value })).toThrow(message);
  });

  it('lists them in --help', () => {
    const help = serverHelp();
    for (const v of [
      'MAX_CONNECTIONS',
      'GRPC_MAX_SESSION_MEMORY_MIB',
      'GRPC_MAX_HEADER_LIST_BYTES',
    ])
      expect(help).toContain(v);
  });

  it('refuses to start with a bad one, exit 2, before binding anything', async () => {
    const { code, stderr } = await runTs('src/bin/server.ts', [], { MAX_CONNECTIONS: '-1' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/MAX_CONNECTIONS/);
  });
});

describe('the memory bound', () => {
  it('adds four messages and the buffers per call, every stream and the session per connection', () => {
    const b = memoryBound({
      maxMessageBytes: 1 * MiB,
      maxConcurrentStreams: 10,
      maxSessionMemoryMiB: 2,
      maxConnections: 3,
    });
    expect(b.perCall).toBe(4 * MiB + 256 * 1024);
    expect(b.perConnection).toBe(10 * b.perCall + 2 * MiB + 256 * 1024);
    expect(b.overall).toBe(3 * b.perConnection);
  });

  it("keeps grpc-js's stream limit when it sets Node's HTTP/2 settings", () => {
    expect(
      http2Options({ maxConcurrentStreams: 7, maxHeaderListBytes: 2048 }).settings,
    ).toMatchObject({ maxConcurrentStreams: 7, maxHeaderListSize: 2048 });
  });
});

describe('MAX_CONNECTIONS', () => {
  it('closes connections beyond it at once and logs 5 a second, then how many it did not', async () => {
    const dir = await tempDir();
    const pki = join(dir.path, 'pki');
    await makePki(pki);
    const { server, port, logs } = await startInProcess(pki, { MAX_CONNECTIONS: '2' });
    const sockets: Socket[] = [];
    const dial = async () => {
      const s = connect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      sockets.push(s);
      await once(s, 'connect');
      return s;
    };
    try {
      await dial();
      await dial();
      // 20 more: each closed by the server at once, without a byte.
      const extra = await Promise.all(Array.from({ length: 20 }, dial));
      await Promise.all(
        extra.map(async (s) => {
          if (!s.destroyed) await once(s, 'close');
        }),
      );
      const refusal = (l: Record<string, unknown>) =>
        l.msg === 'connection refused: MAX_CONNECTIONS reached';
      expect(logs.lines.find(refusal)).toMatchObject({ level: 40, maxConnections: 2 });
      // The next refusal after the second is over says how many went unlogged.
      await delay(1100);
      const after = Date.now();
      await dial();
      await logs.waitFor((l) => refusal(l) && Number(l.time) >= after);
      const logged = logs.lines.filter(refusal).length;
      const suppressed = logs.lines
        .filter((l) => l.msg === 'refused connections not logged')
        .reduce((sum, l) => sum + Number(l.suppressed), 0);
      // 5 lines a second at most, and every refusal counted: 21 in all.
      expect(logged).toBeLessThanOrEqual(11);
      expect(logged + suppressed).toBe(21);
    } finally {
      for (const s of sockets) s.destroy();
      await server.shutdown();
      await dir.remove();
    }
  });
});

describe('GRPC_MAX_SESSION_MEMORY_MIB', () => {
  it('refuses new streams with ENHANCE_YOUR_CALM once a connection holds that much, serving other connections', async () => {
    const dir = await tempDir();
    const pki = join(dir.path, 'pki');
    await makePki(pki);
    const { server, port } = await startInProcess(pki, {
      LOG_LEVEL: 'silent',
      GRPC_MAX_SESSION_MEMORY_MIB: '1',
      GRPC_MAX_CONCURRENT_STREAMS: '32',
    });
    const other = clientFor(pki, `127.0.0.1:${port}`, 'client', { serverName: 'localhost' });
    // A reader with a zero window: each Echo's 60 KB reply stays queued in Node's session.
    const c = await rawH2(pki, port, [[SETTING.INITIAL_WINDOW_SIZE, 0]]);
    try {
      for (let i = 0; i < 24; i++) {
        const id = 1 + 2 * i;
        c.send(
          headersFrame(id, grpcRequestBlock('Echo')),
          ...dataFrames(id, grpcMessage('e'.repeat(60_000)), true),
        );
      }
      await c.until(() => c.headersOn.size + c.rstCodes.size === 24, 'an answer to each stream');
      // About 1 MiB of replies queued: the streams after that are refused, not buffered.
      expect(c.rstCodes.size).toBeGreaterThan(0);
      expect(new Set(c.rstCodes.values())).toEqual(new Set([CODE.ENHANCE_YOUR_CALM]));
      expect(c.isClosed).toBe(false);
      expect((await other.echo('meanwhile')).message).toBe('meanwhile');
    } finally {
      c.close();
      other.close();
      await server.shutdown();
      await dir.remove();
    }
  });
});
