import * as grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientMetrics } from '../src/client/metrics.js';
import type { EchoServer } from '../src/server/server.js';
import { followLog, killProcess, spawnTs } from '../scripts/lib/server-process.js';
import { makePki, tempDir } from './helpers/pki.js';
import { sampleOf, scrape } from './helpers/metrics.js';
import { clientFor, startInProcess } from './helpers/server.js';
import { requireTools, toolPath } from './helpers/tools.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let pki: string;
let server: EchoServer;
let port: number;

beforeAll(async () => {
  dir = await tempDir();
  pki = join(dir.path, 'pki');
  await makePki(pki);
  ({ server, port } = await startInProcess(pki));
});
afterAll(async () => {
  await server.shutdown();
  await dir.remove();
});

const echo = (method: string, type = 'unary') => ({
  grpc_type: type,
  grpc_service: 'echo.v1.EchoService',
  grpc_method: method,
});

describe('the client metrics', () => {
  it('count started, handled by code, timed, and messages, as grpc_client_*', async () => {
    const metrics = new ClientMetrics();
    const target = `127.0.0.1:${port}`;
    const c = clientFor(pki, target, 'client', { serverName: 'localhost', metrics });
    const probe = clientFor(pki, target, 'probe', { serverName: 'localhost', metrics });
    try {
      await c.echo('a');
      for await (const _ of c.serverStream('s', 4, 0)) void _;
      await expect(probe.whoAmI()).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    } finally {
      c.close();
      probe.close();
    }
    const text = await metrics.registry.metrics();
    expect(sampleOf(text, 'grpc_client_started_total', echo('Echo'))).toBe(1);
    expect(sampleOf(text, 'grpc_client_handled_total', { ...echo('Echo'), grpc_code: 'OK' })).toBe(
      1,
    );
    expect(sampleOf(text, 'grpc_client_handling_seconds_count', echo('Echo'))).toBe(1);
    expect(sampleOf(text, 'grpc_client_msg_sent_total', echo('Echo'))).toBe(1);
    const stream = echo('ServerStream', 'server_stream');
    expect(sampleOf(text, 'grpc_client_msg_received_total', stream)).toBe(4);
    expect(
      sampleOf(text, 'grpc_client_handled_total', {
        ...echo('WhoAmI'),
        grpc_code: 'PermissionDenied',
      }),
    ).toBe(1);
  });

  it('are served by `loop` on METRICS_ADDRESS while it runs, and pass promtool', async () => {
    requireTools('promtool');
    const child = spawnTs('src/bin/client.ts', ['loop', '--interval-ms', '20'], {
      GRPC_TARGET: `127.0.0.1:${port}`,
      TLS_SERVER_NAME: 'localhost',
      TLS_CA_FILE: join(pki, 'ca.crt'),
      TLS_CERT_FILE: join(pki, 'client.crt'),
      TLS_KEY_FILE: join(pki, 'client.key'),
      METRICS_ADDRESS: '127.0.0.1:0',
    });
    try {
      const log = followLog(child);
      const serving = await log.waitForLog((l) => l.event === 'serving metrics');
      await log.waitForLog((l) => l.seq === 3);
      const text = await scrape(`http://${String(serving.address)}/metrics`);
      const ok = { ...echo('Echo'), grpc_code: 'OK' };
      expect(sampleOf(text, 'grpc_client_handled_total', ok)).toBeGreaterThanOrEqual(3);
      const check = spawn(toolPath('promtool'), ['check', 'metrics']);
      let out = '';
      check.stdout.on('data', (d: Buffer) => (out += d.toString()));
      check.stderr.on('data', (d: Buffer) => (out += d.toString()));
      check.stdin.end(text);
      const [code] = (await once(check, 'exit')) as [number | null];
      expect(out).toBe('');
      expect(code).toBe(0);
    } finally {
      await killProcess(child);
    }
  });
});
