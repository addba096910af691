// The ecosystem's own tools against our server over mTLS: grpc_health_probe,
// grpcurl (through server reflection) and Python grpcio.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_ID, PROBE_ID, makePki, tempDir, writeCa, writeLeaf } from './helpers/pki.js';
import { killProcess, pkiEnv, startServerProcess, type ServerProcess } from './helpers/server.js';
import { requireTools, runTool, toolPath } from './helpers/tools.js';

requireTools('grpc-health-probe', 'grpcurl', 'python');

let dir: Awaited<ReturnType<typeof tempDir>>;
let pki: string;
let server: ServerProcess;
let socket: string;
const extra: ServerProcess[] = [];

const f = (name: string) => join(pki, name);
const probeTls = (who = 'probe') => [
  '-tls',
  '-tls-ca-cert',
  f('ca.crt'),
  '-tls-client-cert',
  f(`${who}.crt`),
  '-tls-client-key',
  f(`${who}.key`),
];
const probe = (args: string[]) =>
  runTool(toolPath('grpc-health-probe'), ['-connect-timeout', '3s', '-rpc-timeout', '3s', ...args]);
const grpcurl = (who: string, args: string[]) =>
  runTool(toolPath('grpcurl'), [
    '-cacert',
    f('ca.crt'),
    '-cert',
    f(`${who}.crt`),
    '-key',
    f(`${who}.key`),
    '-servername',
    'localhost',
    ...args,
  ]);
const python = (who: string, target: string, args: string[]) =>
  runTool(
    toolPath('python'),
    [
      join('test', 'python', 'echo_client.py'),
      '--target',
      target,
      '--ca',
      f('ca.crt'),
      '--cert',
      f(`${who}.crt`),
      '--key',
      f(`${who}.key`),
      '--server-name',
      'localhost',
      ...args,
    ],
    60_000,
  );

describe('real gRPC tools', () => {
  beforeAll(async () => {
    dir = await tempDir();
    pki = join(dir.path, 'pki');
    socket = join(dir.path, 'grpc.sock');
    await makePki(pki);
    server = await startServerProcess({
      ...pkiEnv(pki),
      GRPC_REFLECTION: 'true',
      GRPC_UNIX_SOCKET: socket,
    });
  });
  afterAll(async () => {
    for (const s of [server, ...extra]) if (s) await killProcess(s.child);
    await dir?.remove();
  });
  const addr = () => `127.0.0.1:${server.port}`;

  describe('grpc_health_probe', () => {
    it('exits 0 while SERVING, for the whole server and for EchoService', async () => {
      const whole = await probe(['-addr', addr(), ...probeTls(), '-tls-server-name', 'localhost']);
      expect(whole).toMatchObject({
        code: 0,
        stderr: expect.stringContaining('status: SERVING') as unknown,
      });
      const echo = await probe([
        '-addr',
        addr(),
        ...probeTls(),
        '-tls-server-name',
        'localhost',
        '-service',
        'echo.v1.EchoService',
      ]);
      expect(echo.code).toBe(0);
    });

    it('works against the Unix socket listener', async () => {
      const r = await probe([
        '-addr',
        `unix://${socket}`,
        ...probeTls(),
        '-tls-server-name',
        'localhost',
      ]);
      expect(r).toMatchObject({
        code: 0,
        stderr: expect.stringContaining('status: SERVING') as unknown,
      });
    });

    it('exits 3 for a service name the server does not know', async () => {
      const r = await probe([
        '-addr',
        addr(),
        ...probeTls(),
        '-tls-server-name',
        'localhost',
        '-service',
        'no.such.Service',
      ]);
      expect(r.code).toBe(3);
      expect(r.stderr + r.stdout).toMatch(/NotFound/);
    });

    it('exits 2 for a -tls-server-name that is not in the server certificate', async () => {
      const r = await probe([
        '-addr',
        addr(),
        ...probeTls(),
        '-tls-server-name',
        'not-a-san.example',
      ]);
      expect(r.code).toBe(2);
      expect(r.stderr + r.stdout).toMatch(/failed to connect|certificate is valid for/);
    });

    // With TLS 1.3 the client finishes its side of the handshake before the server checks the
    // client certificate, so the probe sees the refusal as a failed connection: exit 2 here.
    it('fails to connect without a client certificate', async () => {
      const r = await probe([
        '-addr',
        addr(),
        '-tls',
        '-tls-ca-cert',
        f('ca.crt'),
        '-tls-server-name',
        'localhost',
      ]);
      expect(r.code).toBe(2);
      expect(r.stderr + r.stdout).toMatch(/failed to connect/);
    });

    it('fails to connect with a client certificate from another CA', async () => {
      const other = await writeCa(dir.path, 'probe-other-ca');
      const leaf = await writeLeaf(dir.path, 'probe-foreign', other, { spiffeId: PROBE_ID });
      const r = await probe([
        '-addr',
        addr(),
        '-tls',
        '-tls-ca-cert',
        f('ca.crt'),
        '-tls-client-cert',
        leaf.certFile,
        '-tls-client-key',
        leaf.keyFile,
        '-tls-server-name',
        'localhost',
      ]);
      expect(r.code).toBe(2);
    });

    it('exits 4 once the server is NOT_SERVING during shutdown', async () => {
      const s = await startServerProcess({
        ...pkiEnv(pki),
        SHUTDOWN_DRAIN_DELAY_MS: '20000',
        SHUTDOWN_TIMEOUT_MS: '1000',
      });
      extra.push(s);
      const target = `127.0.0.1:${s.port}`;
      expect(
        (await probe(['-addr', target, ...probeTls(), '-tls-server-name', 'localhost'])).code,
      ).toBe(0);
      s.child.kill('SIGTERM');
      await s.waitForLog((l) => l.msg === 'shutting down: NOT_SERVING, draining');
      const r = await probe(['-addr', target, ...probeTls(), '-tls-server-name', 'localhost']);
      expect(r.code).toBe(4);
      expect(r.stderr + r.stdout).toMatch(/NOT_SERVING/);
      await killProcess(s.child);
    });
  });

  describe('grpcurl through server reflection', () => {
    it('lists the services and calls Echo with no proto files, as the client identity', async () => {
      const list = await grpcurl('client', [addr(), 'list']);
      expect(list.code).toBe(0);
      expect(list.stdout.split('\n')).toEqual(
        expect.arrayContaining(['echo.v1.EchoService', 'grpc.health.v1.Health']),
      );
      const echo = await grpcurl('client', [
        '-d',
        '{"message":"from grpcurl"}',
        addr(),
        'echo.v1.EchoService/Echo',
      ]);
      expect(echo.code).toBe(0);
      expect(JSON.parse(echo.stdout)).toMatchObject({
        message: 'from grpcurl',
        caller: CLIENT_ID,
      });
    });

    it('is denied reflection with the probe identity', async () => {
      const r = await grpcurl('probe', [addr(), 'list']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/PermissionDenied/);
      expect(r.stderr).toContain(`identity ${PROBE_ID} is not allowed to call /grpc.reflection.v1`);
    });
  });

  describe('Python grpcio', () => {
    it('calls Echo and the health Check over mTLS', async () => {
      const echo = await python('client', addr(), ['echo', 'from python']);
      expect(echo.stderr).toBe('');
      expect(JSON.parse(echo.stdout)).toEqual({
        message: 'from python',
        server_id: expect.any(String) as unknown,
        caller: CLIENT_ID,
      });
      const check = await python('probe', addr(), ['check', 'echo.v1.EchoService']);
      expect(check.stdout.trim()).toBe('SERVING');
    });

    it('sees SERVING then NOT_SERVING in a health Watch during a graceful shutdown', async () => {
      const s = await startServerProcess({
        ...pkiEnv(pki),
        SHUTDOWN_DRAIN_DELAY_MS: '500',
        SHUTDOWN_TIMEOUT_MS: '2000',
      });
      extra.push(s);
      const child = spawn(toolPath('python'), [
        join('test', 'python', 'echo_client.py'),
        '--target',
        `127.0.0.1:${s.port}`,
        '--ca',
        f('ca.crt'),
        '--cert',
        f('probe.crt'),
        '--key',
        f('probe.key'),
        '--server-name',
        'localhost',
        '--timeout',
        '30',
        'watch',
        '',
      ]);
      const statuses: string[] = [];
      const lines = createInterface({ input: child.stdout });
      const done = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      for await (const line of lines) {
        statuses.push(line.trim());
        if (line.trim() === 'SERVING') s.child.kill('SIGTERM');
      }
      await done;
      expect(statuses).toEqual(['SERVING', 'NOT_SERVING']);
      expect(await s.exited).toBe(0);
    });
  });
});
