import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { DEFAULT_CIPHERS } from 'node:tls';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Authorizer } from '../src/server/authz.js';
import { PolicyError, loadPolicyFile, policyFromIdentities } from '../src/server/policy-file.js';
import { SECURE_CIPHERS, certificateProblem } from '../src/tls/cert-policy.js';
import { LogLimiter } from '../src/shared/log-limiter.js';
import { parseClientArgs } from '../src/client/config.js';
import { diagnoseConnection, explainCallError, parseTarget } from '../src/client/errors.js';
import { runClient } from '../src/client/cli.js';
import * as exit from '../src/shared/exit-codes.js';
import { passEncodedReplies, type EncodedReply } from '../src/server/echo-replies.js';
import { echoHandlers } from '../src/server/echo-service.js';
import { loadEchoProto } from '../src/shared/proto.js';
import { identityFromCertificate, parseSubjectAltName, peerOutcome } from '../src/tls/identity.js';
import {
  UsageError,
  boolean,
  formatHelp,
  integer,
  oneOf,
  parseSettings,
  text,
} from '../src/shared/options.js';
import type { EchoServer } from '../src/server/server.js';
import {
  CLIENT_ID,
  PROBE_ID,
  loadCa,
  makePki,
  tempDir,
  writeCa,
  writeLeaf,
} from './helpers/pki.js';
import { startPresentingServer } from './helpers/refusal.js';
import { startInProcess } from './helpers/server.js';

describe('settings', () => {
  const settings = {
    port: { flag: 'port', env: 'PORT', help: 'a port', default: 1, parse: integer(1, 65535) },
    name: { flag: 'name', env: 'NAME', help: 'a name', default: 'x', parse: text },
    tags: {
      flag: 'tag',
      env: 'TAGS',
      kind: 'list',
      help: 'tags',
      default: [] as string[],
      parse: text,
    },
    loud: {
      flag: 'loud',
      env: 'LOUD',
      kind: 'boolean',
      help: 'loud',
      default: false,
      parse: boolean,
    },
    mode: { flag: 'mode', help: 'mode', default: 'a', parse: oneOf(['a', 'b'] as const) },
  } as const;

  it('prefers flags to variables and variables to defaults', () => {
    expect(parseSettings(settings, [], {}).values).toEqual({
      port: 1,
      name: 'x',
      tags: [],
      loud: false,
      mode: 'a',
    });
    expect(
      parseSettings(settings, [], { PORT: '80', TAGS: 'a, b', LOUD: 'yes' }).values,
    ).toMatchObject({ port: 80, tags: ['a', 'b'], loud: true });
    expect(
      parseSettings(settings, ['--port', '81', '--tag', 'c', '--tag', 'd', '--loud'], {
        PORT: '80',
      }).values,
    ).toMatchObject({ port: 81, tags: ['c', 'd'], loud: true });
  });

  it('names the setting, its source and what is accepted when a value is bad', () => {
    expect(() => parseSettings(settings, ['--port', '0'], {})).toThrow(
      new UsageError('invalid --port (PORT) "0" from the command line: must be from 1 to 65535'),
    );
    expect(() => parseSettings(settings, [], { PORT: 'http' })).toThrow(
      /invalid --port \(PORT\) "http" from the environment: must be a whole number/,
    );
    expect(() => parseSettings(settings, [], { LOUD: 'maybe' })).toThrow(/must be true or false/);
    expect(() => parseSettings(settings, ['--mode', 'c'], {})).toThrow(
      /--mode "c" .* must be one of a, b/,
    );
    expect(() => parseSettings(settings, ['--nope'], {})).toThrow(
      /^unknown option --nope; see --help$/,
    );
  });

  it('renders every flag, variable and default in the help', () => {
    const help = formatHelp('Usage: x', settings);
    for (const s of Object.values(settings)) expect(help).toContain(`--${s.flag}`);
    expect(help).toContain('[PORT]');
    expect(help).toContain('(default: 1)');
    expect(help).toContain('(default: none)');
  });
});

describe('authorization policy', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => (dir = await tempDir()));
  afterAll(() => dir.remove());
  const write = async (name: string, body: string) => {
    const path = join(dir.path, name);
    await writeFile(path, body);
    return path;
  };

  it('opens health to every verified caller and everything else only to the allowed identities', () => {
    const authz = new Authorizer(policyFromIdentities([CLIENT_ID], 'AUTHZ_ALLOWED_IDENTITIES'));
    expect(authz.decide('/grpc.health.v1.Health/Check', PROBE_ID)).toEqual({
      allowed: true,
      identity: PROBE_ID,
      rule: 'health',
    });
    expect(authz.decide('/echo.v1.EchoService/Echo', CLIENT_ID).allowed).toBe(true);
    expect(authz.decide('/echo.v1.EchoService/Echo', PROBE_ID)).toMatchObject({
      allowed: false,
      reason: `identity ${PROBE_ID} is not allowed to call /echo.v1.EchoService/Echo`,
    });
    expect(
      authz.decide('/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', PROBE_ID).allowed,
    ).toBe(false);
    expect(authz.decide('/grpc.health.v1.Health/Check', null).allowed).toBe(false);
    // Only the health service itself is open, not a service whose name merely starts like it.
    expect(authz.decide('/grpc.health.v1.HealthAdmin/Reset', PROBE_ID).allowed).toBe(false);
  });

  it('loads a policy file and refuses malformed ones by name', async () => {
    const ids = ['spiffe://td/ns/a/sa/a', 'spiffe://td/ns/b/sa/b'];
    expect(
      loadPolicyFile(await write('ok.json', JSON.stringify({ allowedIdentities: ids }))).policy,
    ).toEqual({
      format: 'allowedIdentities',
      rules: [{ name: 'allowedIdentities', identities: ids, methods: ['*'] }],
    });
    // Identities come only from URI SANs: a CN-like entry would match nobody, so it is refused.
    const cn = await write('cn.json', JSON.stringify({ allowedIdentities: ['grpc-client'] }));
    expect(() => loadPolicyFile(cn)).toThrow(
      /AUTHZ_POLICY_FILE \(.*cn\.json\): "grpc-client" is not a SPIFFE ID/,
    );
    expect(() => loadPolicyFile(join(dir.path, 'missing.json'))).toThrow(
      /AUTHZ_POLICY_FILE \(.*missing\.json\) cannot be read/,
    );
    expect(() => loadPolicyFile(join(dir.path, 'missing.json'))).toThrow(PolicyError);
    const notJson = await write('bad.json', '{');
    expect(() => loadPolicyFile(notJson)).toThrow(/is not valid JSON/);
    const list = await write('list.json', '[]');
    expect(() => loadPolicyFile(list)).toThrow(/expected \{"rules"/);
    const empty = await write('empty.json', JSON.stringify({ allowedIdentities: [''] }));
    expect(() => loadPolicyFile(empty)).toThrow(/list of non-empty strings/);
  });
});

describe('the authorization interceptor', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let peer: { raw: Buffer; fingerprint256: string };
  beforeAll(async () => {
    dir = await tempDir();
    await makePki(dir.path);
    const cert = new X509Certificate(await readFile(join(dir.path, 'client.crt')));
    peer = { raw: cert.raw, fingerprint256: cert.fingerprint256 };
  });
  afterAll(async () => {
    await dir.remove();
  });

  it('reads the caller once per call and hands the handler that same auth context', () => {
    const authz = new Authorizer(policyFromIdentities([CLIENT_ID], 'AUTHZ_ALLOWED_IDENTITIES'));
    const auth = { transportSecurityType: 'ssl', sslPeerCertificate: peer };
    let reads = 0;
    // Only what the interceptor touches of the next call in the chain.
    const next = {
      getAuthContext: () => {
        reads += 1;
        return auth;
      },
    } as unknown as grpc.ServerInterceptingCallInterface;
    const method = { path: '/echo.v1.EchoService/Echo' } as grpc.ServerMethodDefinition<
      unknown,
      unknown
    >;
    const call = authz.interceptor(pino({ level: 'silent' }), null)(method, next);
    expect(call.getAuthContext()).toBe(auth);
    expect(call.getAuthContext()).toBe(auth);
    expect(reads).toBe(1);
  });
});

const ECHO = passEncodedReplies(loadEchoProto().echo.v1.EchoService.service);

describe('ServerStream', () => {
  /** A stand-in for grpc-js's writable call: its buffer holds `room` messages until drained. */
  class FakeStreamCall extends EventEmitter {
    cancelled = false;
    ended = false;
    readonly sequences: number[] = [];
    private done: (() => void)[] = [];
    readonly request: { message: string; count: number; interval_ms: number };
    constructor(
      count: number,
      private readonly room: number,
    ) {
      super();
      this.request = { message: 'm', count, interval_ms: 0 };
    }
    getAuthContext() {
      return {};
    }
    get writableNeedDrain(): boolean {
      return this.done.length >= this.room;
    }
    write(reply: EncodedReply, done: () => void): boolean {
      this.sequences.push(ECHO.Echo.responseDeserialize(reply.bytes).sequence);
      this.done.push(done);
      return !this.writableNeedDrain;
    }
    end(): void {
      this.ended = true;
    }
    drain(): void {
      const done = this.done;
      this.done = [];
      this.emit('drain');
      for (const d of done) d();
    }
  }
  const serverStream = (call: FakeStreamCall) =>
    (
      echoHandlers('s', ECHO.Echo.responseSerialize).ServerStream as unknown as (
        c: FakeStreamCall,
      ) => void
    )(call);

  it('writes while the buffer has room and waits for it to drain, never past it', async () => {
    const call = new FakeStreamCall(40, 16);
    serverStream(call);
    // However many turns of the event loop pass, nothing more is written until 'drain'.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(call.sequences).toHaveLength(16);
    call.drain();
    expect(call.sequences).toHaveLength(32);
    expect(call.ended).toBe(false);
    call.drain();
    expect(call.sequences).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(call.ended).toBe(true);
  });

  it('stops writing once the call is cancelled while it waits for room', () => {
    const call = new FakeStreamCall(40, 16);
    serverStream(call);
    call.cancelled = true;
    call.drain();
    expect(call.sequences).toHaveLength(16);
    expect(call.ended).toBe(false);
  });
});

describe('identity', () => {
  it('splits SANs and keeps a quoted value whole, so a comma cannot forge a second entry', () => {
    expect(parseSubjectAltName('DNS:a, URI:spiffe://td/ns/x/sa/y, IP Address:127.0.0.1')).toEqual([
      { type: 'DNS', value: 'a' },
      { type: 'URI', value: 'spiffe://td/ns/x/sa/y' },
      { type: 'IP Address', value: '127.0.0.1' },
    ]);
    expect(parseSubjectAltName('URI:"spiffe://td/a, URI:spiffe://td/evil", DNS:b')).toEqual([
      { type: 'URI', value: 'spiffe://td/a, URI:spiffe://td/evil' },
      { type: 'DNS', value: 'b' },
    ]);
    expect(parseSubjectAltName('')).toEqual([]);
  });

  describe('from certificates of our CA', () => {
    let dir: Awaited<ReturnType<typeof tempDir>>;
    let ca: Awaited<ReturnType<typeof loadCa>>;
    beforeAll(async () => {
      dir = await tempDir();
      await makePki(dir.path);
      ca = await loadCa(dir.path);
    });
    afterAll(() => dir.remove());
    const cert = async (
      name: string,
      spec: Parameters<typeof writeLeaf>[3],
      unsafe: Parameters<typeof writeLeaf>[4] = {},
    ) =>
      new X509Certificate(
        await readFile((await writeLeaf(dir.path, name, ca, spec, unsafe)).certFile),
      );

    it('takes the SPIFFE ID from the URI SAN, and never a Common Name', async () => {
      expect(identityFromCertificate(await cert('svid', { spiffeId: CLIENT_ID }))).toMatchObject({
        id: CLIENT_ID,
        spiffeId: CLIENT_ID,
        commonName: 'svid',
      });
      // A CN that spells a SPIFFE ID, and a plain CN: neither is an identity.
      for (const commonName of [CLIENT_ID, 'grpc-client']) {
        const noSan = await cert('no-san', { commonName }, { noUriSan: true });
        expect(identityFromCertificate(noSan)).toBeNull();
      }
      const upper = await cert('upper', { spiffeId: CLIENT_ID.replace('spiffe', 'SPIFFE') });
      expect(identityFromCertificate(upper)).toBeNull();
    });

    it('gives no identity to a certificate the policy refuses, and says why', async () => {
      const weak = await cert('weak', { spiffeId: CLIENT_ID }, { rsaBits: 1024 });
      expect(peerOutcome({ raw: weak.raw, fingerprint256: weak.fingerprint256 } as never)).toEqual({
        identity: null,
        problem: 'the client certificate is refused: RSA key of 1024 bits (at least 2048 required)',
      });
    });
  });
});

describe('the log limiter', () => {
  it('writes 20 lines a second and one summary per second for the rest, with a running total', () => {
    vi.useFakeTimers();
    try {
      const lines: Record<string, unknown>[] = [];
      const log = pino(
        { level: 'warn' },
        { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) },
      );
      const limiter = new LogLimiter(log, 'things not logged');
      const burst = (n: number) => Array.from({ length: n }, () => limiter.allow()).filter(Boolean);
      expect(burst(50)).toHaveLength(20);
      expect(lines).toEqual([]);
      // The summary comes at the end of the second, with no further line needed to trigger it.
      vi.advanceTimersByTime(1000);
      expect(lines).toMatchObject([
        { msg: 'things not logged', suppressed: 30, suppressedTotal: 30, limitPerSecond: 20 },
      ]);
      expect(burst(25)).toHaveLength(20);
      vi.advanceTimersByTime(1000);
      expect(lines.at(-1)).toMatchObject({ suppressed: 5, suppressedTotal: 35 });
      // A quiet second writes nothing.
      expect(burst(3)).toHaveLength(3);
      vi.advanceTimersByTime(5000);
      expect(lines).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('the certificate policy', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let ca: Awaited<ReturnType<typeof loadCa>>;
  beforeAll(async () => {
    dir = await tempDir();
    await makePki(dir.path);
    ca = await loadCa(dir.path);
  });
  afterAll(() => dir.remove());
  it("offers Node's default ciphers, raised to security level 2", () => {
    expect(SECURE_CIPHERS).toBe(`${DEFAULT_CIPHERS}:@SECLEVEL=2`);
  });
  const problem = async (name: string, unsafe: Parameters<typeof writeLeaf>[4]) =>
    certificateProblem(
      new X509Certificate(
        await readFile((await writeLeaf(dir.path, name, ca, {}, unsafe)).certFile),
      ),
    );
  const ecKey = (namedCurve: string) => ({
    publicKeyDer: generateKeyPairSync('ec', { namedCurve }).publicKey.export({
      type: 'spki',
      format: 'der',
    }),
  });

  it('accepts what gen-certs issues: RSA 2048, SHA-256, CA:FALSE; and EC P-256', async () => {
    expect(
      certificateProblem(new X509Certificate(await readFile(join(dir.path, 'client.crt')))),
    ).toBeNull();
    expect(await problem('p256', ecKey('prime256v1'))).toBeNull();
  });

  it('names each weakness: small RSA and EC keys, SHA-1, CA:TRUE', async () => {
    expect(await problem('rsa1024', { rsaBits: 1024 })).toBe(
      'RSA key of 1024 bits (at least 2048 required)',
    );
    expect(await problem('p224', ecKey('secp224r1'))).toBe(
      'EC key on secp224r1 (P-256, P-384 or P-521 required)',
    );
    expect(await problem('sha1', { sha1: true })).toBe('SHA-1 signature (sha1WithRSAEncryption)');
    expect(await problem('ca-true', { caTrue: true })).toBe(
      'a CA certificate (basicConstraints CA:TRUE), not a leaf',
    );
    expect(await problem('all', { rsaBits: 1024, sha1: true, caTrue: true })).toBe(
      'RSA key of 1024 bits (at least 2048 required); SHA-1 signature (sha1WithRSAEncryption); a CA certificate (basicConstraints CA:TRUE), not a leaf',
    );
  });

  it('refuses a policy entry that is not a SPIFFE ID, naming the setting', () => {
    expect(() => policyFromIdentities(['grpc-client'], 'AUTHZ_ALLOWED_IDENTITIES')).toThrow(
      /^AUTHZ_ALLOWED_IDENTITIES: "grpc-client" is not a SPIFFE ID/,
    );
    expect(policyFromIdentities([CLIENT_ID], 'x').rules[0]?.identities).toEqual([CLIENT_ID]);
  });
});

describe('client settings', () => {
  it('parses a command with its options and refuses incomplete ones', () => {
    const inv = parseClientArgs(
      ['stream', 'hi', '--count', '2', '--target', 'dns:///x:1', '--tls-server-name', 'localhost'],
      {},
    );
    expect(inv).toMatchObject({
      command: 'stream',
      args: ['hi'],
      count: 2,
      options: { target: 'dns:///x:1', serverName: 'localhost' },
    });
    expect(parseClientArgs(['--help'], {})).toBe('help');
    expect(() => parseClientArgs([], {})).toThrow(/no command given/);
    expect(() => parseClientArgs(['echo'], {})).toThrow(/echo takes exactly one message/);
    expect(() => parseClientArgs(['collect'], {})).toThrow(/collect takes one or more messages/);
    expect(() => parseClientArgs(['stream'], {})).toThrow(/stream needs --count/);
  });

  it('reads host, port and socket paths from every target form', () => {
    expect(parseTarget('localhost:50051')).toEqual({ host: 'localhost', port: 50051 });
    expect(parseTarget('dns:///grpc-server-headless.grpc-mtls.svc.cluster.local:50051')).toEqual({
      host: 'grpc-server-headless.grpc-mtls.svc.cluster.local',
      port: 50051,
    });
    expect(parseTarget('[::1]:50051')).toEqual({ host: '::1', port: 50051 });
    expect(parseTarget('unix:///tmp/x.sock')).toEqual({ path: '/tmp/x.sock' });
  });
});

describe('connection diagnosis', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let pki: string;
  let server: EchoServer;
  let port: number;
  const opts = (extra: Record<string, string> = {}) => ({
    target: `127.0.0.1:${port}`,
    caFile: join(pki, 'ca.crt'),
    certFile: join(pki, 'client.crt'),
    keyFile: join(pki, 'client.key'),
    deadlineMs: 2000,
    ...extra,
  });
  beforeAll(async () => {
    dir = await tempDir();
    pki = join(dir.path, 'pki');
    await makePki(pki);
    ({ server, port } = await startInProcess(pki, { LOG_LEVEL: 'silent' }));
  });
  afterAll(async () => {
    await server.shutdown();
    await dir.remove();
  });

  it('finds nothing wrong with a good connection', async () => {
    expect(await diagnoseConnection(opts({ serverName: 'localhost' }))).toBeNull();
  });

  it('tells each failing step apart', async () => {
    expect(
      await diagnoseConnection(opts({ target: 'dns:///no-such-host.invalid:1' })),
    ).toMatchObject({ exitCode: exit.NAME_NOT_RESOLVED });
    expect(await diagnoseConnection(opts({ target: 'unix:///nonexistent/socket' }))).toMatchObject({
      exitCode: exit.CONNECTION_REFUSED,
    });
    expect(await diagnoseConnection(opts({ serverName: 'elsewhere.example' }))).toMatchObject({
      exitCode: exit.SERVER_NAME_MISMATCH,
      message: expect.stringContaining('DNS:localhost') as unknown,
    });
    const other = await writeCa(dir.path, 'diag-ca');
    expect(await diagnoseConnection(opts({ caFile: other.certFile }))).toMatchObject({
      exitCode: exit.SERVER_UNTRUSTED,
    });
    const leaf = await writeLeaf(dir.path, 'diag-foreign', other, {});
    expect(
      await diagnoseConnection(opts({ certFile: leaf.certFile, keyFile: leaf.keyFile })),
    ).toMatchObject({ exitCode: exit.CLIENT_CERT_REFUSED });
  });

  it('names the certificate policy when the server presents a weak certificate', async () => {
    const leaf = await writeLeaf(
      dir.path,
      'diag-weak-server',
      await loadCa(pki),
      { usage: 'server', dnsNames: ['localhost'] },
      { rsaBits: 1024 },
    );
    const weak = await startPresentingServer(leaf);
    try {
      expect(
        await diagnoseConnection(
          opts({ target: `127.0.0.1:${weak.port}`, serverName: 'localhost' }),
        ),
      ).toMatchObject({
        exitCode: exit.SERVER_UNTRUSTED,
        // Node 24's OpenSSL refuses the key itself first, in its own words.
        message: expect.stringMatching(
          /is refused \((the server certificate is refused: RSA key of 1024 bits|EE certificate key too weak)/,
        ) as unknown,
      });
    } finally {
      weak.close();
    }
  });

  it('maps RPC statuses to exit codes', async () => {
    const err = (code: grpc.status, details = 'd') =>
      Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
    expect(
      await explainCallError(err(grpc.status.PERMISSION_DENIED), opts(), CLIENT_ID),
    ).toMatchObject({
      exitCode: exit.PERMISSION_DENIED,
      message: expect.stringContaining(CLIENT_ID) as unknown,
    });
    expect(
      await explainCallError(err(grpc.status.UNAUTHENTICATED), opts(), CLIENT_ID),
    ).toMatchObject({ exitCode: exit.CLIENT_CERT_REFUSED });
    expect(
      await explainCallError(err(grpc.status.INVALID_ARGUMENT), opts(), CLIENT_ID),
    ).toMatchObject({ exitCode: exit.RPC_FAILED, message: 'INVALID_ARGUMENT: d' });
    expect(
      await explainCallError(
        err(grpc.status.DEADLINE_EXCEEDED),
        opts({ serverName: 'localhost' }),
        CLIENT_ID,
      ),
    ).toMatchObject({ exitCode: exit.DEADLINE_EXCEEDED });
    expect(
      await explainCallError(
        err(grpc.status.UNAVAILABLE),
        opts({ serverName: 'localhost' }),
        CLIENT_ID,
      ),
    ).toMatchObject({ exitCode: exit.RPC_FAILED });
  });

  it('runs client commands in-process with their exit codes', async () => {
    const inv = (argv: string[]) => {
      const parsed = parseClientArgs(argv, {
        GRPC_TARGET: `localhost:${port}`,
        TLS_CA_FILE: join(pki, 'ca.crt'),
        TLS_CERT_FILE: join(pki, 'client.crt'),
        TLS_KEY_FILE: join(pki, 'client.key'),
      });
      if (parsed === 'help') throw new Error('unexpected help');
      return parsed;
    };
    const never = new AbortController().signal;
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const errWrite = process.stderr.write.bind(process.stderr);
    process.stdout.write = (chunk: string) => (out.push(chunk), true);
    process.stderr.write = (chunk: string) => (out.push(chunk), true);
    try {
      expect(await runClient(inv(['echo', 'in-process']), never)).toBe(exit.OK);
      expect(await runClient(inv(['whoami']), never)).toBe(exit.OK);
      expect(await runClient(inv(['collect', 'a', 'b']), never)).toBe(exit.OK);
      expect(await runClient(inv(['stream', '--count', '2', '--interval-ms', '0']), never)).toBe(
        exit.OK,
      );
      expect(await runClient(inv(['health', '--service', 'no.such.Service']), never)).toBe(
        exit.RPC_FAILED,
      );
      expect(await runClient(inv(['loop', '--count', '2', '--interval-ms', '1']), never)).toBe(
        exit.OK,
      );
      expect(
        await runClient(inv(['echo', 'x', '--tls-cert-file', join(pki, 'missing.crt')]), never),
      ).toBe(exit.FILE_UNREADABLE);
      expect(
        await runClient(
          inv([
            'echo',
            'x',
            '--tls-cert-file',
            join(pki, 'server.crt'),
            '--tls-key-file',
            join(pki, 'server.key'),
          ]),
          never,
        ),
      ).toBe(exit.TLS_INVALID);
      const stopped = new AbortController();
      const watching = runClient(inv(['health', '--watch']), stopped.signal);
      while (!out.some((l) => l.includes('"status":"SERVING"')))
        await new Promise((r) => setTimeout(r, 10));
      stopped.abort();
      expect(await watching).toBe(exit.OK);
    } finally {
      process.stdout.write = write;
      process.stderr.write = errWrite;
    }
    expect(out.join('')).toContain('"message":"in-process"');
    expect(out.join('')).toContain('"summary":{"calls":2,"ok":2');
  });
});
