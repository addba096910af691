import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, createServer } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaKeyError } from '../src/pki/ca-store.js';
import { OutputError, generateBundle } from '../src/pki/cert-bundle.js';
import * as exit from '../src/shared/exit-codes.js';
import { OID_CLIENT_AUTH, OID_SERVER_AUTH } from '../src/tls/material.js';
import { bundleOptions, tempDir } from './helpers/pki.js';
import { runTs } from './helpers/server.js';

const run = promisify(execFile);
const SERVER_DNS = [
  'localhost',
  'grpc-server',
  'grpc-server.grpc-mtls',
  'grpc-server.grpc-mtls.svc',
  'grpc-server.grpc-mtls.svc.cluster.local',
  'grpc-server-headless',
  'grpc-server-headless.grpc-mtls',
  'grpc-server-headless.grpc-mtls.svc',
  'grpc-server-headless.grpc-mtls.svc.cluster.local',
];

let dir: Awaited<ReturnType<typeof tempDir>>;
let certs: string;
let k8s: string;
let cli: Awaited<ReturnType<typeof runTs>>;

const load = async (name: string) => new X509Certificate(await readFile(join(certs, name)));

beforeAll(async () => {
  dir = await tempDir();
  certs = join(dir.path, 'certs');
  k8s = join(dir.path, 'k8s');
  cli = await runTs('scripts/gen-certs.ts', ['--out', certs, '--k8s-dir', k8s]);
});
afterAll(() => dir.remove());

describe('npm run gen-certs', () => {
  it('writes exactly the documented files and prints a table without key material', async () => {
    expect(cli.code).toBe(0);
    expect((await readdir(certs)).sort()).toEqual(
      [
        'ca.crl',
        'ca.crt',
        'ca.key',
        'client.crt',
        'client.key',
        'probe.crt',
        'probe.key',
        'server.crt',
        'server.key',
      ].sort(),
    );
    expect((await readdir(k8s)).sort()).toEqual([
      'secret-grpc-client-tls.yaml',
      'secret-grpc-probe-tls.yaml',
      'secret-grpc-server-tls.yaml',
    ]);
    expect(cli.stdout).toContain('Created a new CA');
    expect(cli.stdout).toMatch(/server\.crt\s+O=grpc-mtls-service, CN=grpc-server/);
    expect(cli.stdout).not.toContain('PRIVATE KEY');
  });

  it('makes a self-signed CA limited to signing end-entity certificates', async () => {
    const ca = await load('ca.crt');
    expect(ca.ca).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);
    const { stdout } = await run('openssl', [
      'x509',
      '-in',
      join(certs, 'ca.crt'),
      '-noout',
      '-text',
    ]);
    expect(stdout).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(stdout).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(stdout).toContain('Subject Key Identifier');
    const days = (new Date(ca.validTo).getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(729);
    expect(days).toBeLessThan(731);
  });

  it('issues leaves that chain to the CA with one usage, one SPIFFE ID and a 90-day life', async () => {
    const ca = await load('ca.crt');
    for (const [name, oid, sa] of [
      ['server', OID_SERVER_AUTH, 'grpc-server'],
      ['client', OID_CLIENT_AUTH, 'grpc-client'],
      ['probe', OID_CLIENT_AUTH, 'grpc-probe'],
    ] as const) {
      const cert = await load(`${name}.crt`);
      expect(cert.verify(ca.publicKey)).toBe(true);
      expect(cert.checkIssued(ca)).toBe(true);
      expect(cert.ca).toBe(false);
      expect(cert.keyUsage).toEqual([oid]);
      expect(cert.subject).toContain(`CN=grpc-${name}`);
      const uris = (cert.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('URI:'));
      expect(uris).toEqual([`URI:spiffe://cluster.local/ns/grpc-mtls/sa/${sa}`]);
      expect(
        cert.checkPrivateKey(createPrivateKey(await readFile(join(certs, `${name}.key`)))),
      ).toBe(true);
      expect(BigInt(`0x${cert.serialNumber}`) > 0n).toBe(true);
      expect(cert.serialNumber.length).toBe(32);
      const days = (new Date(cert.validTo).getTime() - Date.now()) / 86_400_000;
      expect(Math.round(days)).toBe(90);
      const { stdout } = await run('openssl', [
        'x509',
        '-in',
        join(certs, `${name}.crt`),
        '-noout',
        '-text',
      ]);
      expect(stdout).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
      expect(stdout).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment/);
      expect(stdout).toContain('Authority Key Identifier');
      expect(stdout).toContain('sha256WithRSAEncryption');
      expect(stdout).toContain('Public-Key: (2048 bit)');
    }
  });

  it('puts every name a client may dial into the server certificate', async () => {
    const san = (await load('server.crt')).subjectAltName ?? '';
    for (const dns of SERVER_DNS) expect(san.split(', ')).toContain(`DNS:${dns}`);
    expect(san).toContain('IP Address:127.0.0.1');
    expect(san).toContain('IP Address:0:0:0:0:0:0:0:1');
  });

  it('passes the OpenSSL CLI as an independent verifier, purpose by purpose', async () => {
    const ca = join(certs, 'ca.crt');
    await run('openssl', [
      'verify',
      '-CAfile',
      ca,
      '-purpose',
      'sslserver',
      join(certs, 'server.crt'),
    ]);
    await run('openssl', [
      'verify',
      '-CAfile',
      ca,
      '-purpose',
      'sslclient',
      join(certs, 'client.crt'),
    ]);
    await run('openssl', [
      'verify',
      '-CAfile',
      ca,
      '-purpose',
      'sslclient',
      join(certs, 'probe.crt'),
    ]);
    await expect(
      run('openssl', ['verify', '-CAfile', ca, '-purpose', 'sslserver', join(certs, 'client.crt')]),
    ).rejects.toThrow(/unsuitable certificate purpose/);
  });

  it('writes keys 0600 and certificates 0644', async () => {
    for (const f of await readdir(certs)) {
      expect((await stat(join(certs, f))).mode & 0o777, f).toBe(f.endsWith('.key') ? 0o600 : 0o644);
    }
    for (const f of await readdir(k8s)) expect((await stat(join(k8s, f))).mode & 0o777).toBe(0o600);
  });

  it('writes kubernetes.io/tls Secrets that never contain the CA key', async () => {
    const caKey = (await readFile(join(certs, 'ca.key'), 'utf8')).trim();
    for (const [file, workload] of [
      ['secret-grpc-server-tls.yaml', 'server'],
      ['secret-grpc-client-tls.yaml', 'client'],
      ['secret-grpc-probe-tls.yaml', 'probe'],
    ] as const) {
      const yaml = await readFile(join(k8s, file), 'utf8');
      expect(yaml).toContain('type: kubernetes.io/tls');
      expect(yaml).toContain('namespace: grpc-mtls');
      const field = (name: string) =>
        Buffer.from(
          new RegExp(`^  ${name.replace('.', '\\.')}: (.+)$`, 'm').exec(yaml)?.[1] ?? '',
          'base64',
        ).toString();
      expect(field('tls.crt')).toBe(await readFile(join(certs, `${workload}.crt`), 'utf8'));
      expect(field('tls.key')).toBe(await readFile(join(certs, `${workload}.key`), 'utf8'));
      expect(field('ca.crl')).toBe(await readFile(join(certs, 'ca.crl'), 'utf8'));
      expect(field('ca.crt')).toBe(await readFile(join(certs, 'ca.crt'), 'utf8'));
      const decoded = [...yaml.matchAll(/: ([A-Za-z0-9+/=]{40,})$/gm)].map((m) =>
        Buffer.from(m[1] ?? '', 'base64').toString(),
      );
      expect(decoded.some((d) => d.includes(caKey))).toBe(false);
      expect(yaml).not.toContain(caKey);
    }
  });

  it('completes a real TLS handshake with the files, and refuses the server certificate used as a client', async () => {
    const read = (f: string) => readFile(join(certs, f));
    const server = createServer(
      {
        cert: await read('server.crt'),
        key: await read('server.key'),
        ca: await read('ca.crt'),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (s) => s.end('ok'),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const attempt = async (who: string) => {
      const socket = connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: await read('ca.crt'),
        cert: await read(`${who}.crt`),
        key: await read(`${who}.key`),
      });
      socket.on('error', () => {});
      let data = '';
      socket.on('data', (d: Buffer) => (data += d.toString()));
      await once(socket, 'close');
      return data;
    };
    try {
      expect(await attempt('client')).toBe('ok');
      expect(await attempt('server')).toBe('');
    } finally {
      server.close();
    }
  });

  it('keeps the CA and re-issues the leaves on a re-run, and replaces the CA only with --new-ca', async () => {
    const before = { ca: await load('ca.crt'), server: await load('server.crt') };
    const again = await runTs('scripts/gen-certs.ts', ['--out', certs, '--k8s-dir', k8s]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Kept the existing CA');
    expect(again.stdout).toContain('rotation');
    const after = { ca: await load('ca.crt'), server: await load('server.crt') };
    expect(after.ca.fingerprint256).toBe(before.ca.fingerprint256);
    expect(after.server.serialNumber).not.toBe(before.server.serialNumber);
    expect(after.server.verify(before.ca.publicKey)).toBe(true);

    const other = await tempDir();
    try {
      await generateBundle(bundleOptions(other.path));
      const first = new X509Certificate(await readFile(join(other.path, 'ca.crt'))).fingerprint256;
      await generateBundle(bundleOptions(other.path, { newCa: true }));
      const replaced = new X509Certificate(await readFile(join(other.path, 'ca.crt')));
      expect(replaced.fingerprint256).not.toBe(first);
      expect(
        new X509Certificate(await readFile(join(other.path, 'server.crt'))).verify(
          replaced.publicKey,
        ),
      ).toBe(true);
    } finally {
      await other.remove();
    }
  });
});

describe('gen-certs refuses bad input with a named option and a documented exit code', () => {
  const cases: [string, string[], number, RegExp][] = [
    [
      'a namespace that is not a DNS-1123 label',
      ['--namespace', 'Bad_NS'],
      exit.USAGE,
      /--namespace .*DNS-1123 label/,
    ],
    ['non-numeric days', ['--days', 'ten'], exit.USAGE, /--days .*whole number/],
    ['days beyond 397', ['--days', '398'], exit.USAGE, /--days .*from 1 to 397/],
    ['zero CA days', ['--ca-days', '0'], exit.USAGE, /--ca-days .*from 1 to 3650/],
    [
      'an unsupported key size',
      ['--key-size', '1024'],
      exit.USAGE,
      /--key-size .*one of 2048, 3072, 4096/,
    ],
    ['an unknown option', ['--colour', 'red'], exit.USAGE, /unknown option --colour; see --help/],
  ];
  for (const [what, args, code, message] of cases) {
    it(`refuses ${what}`, async () => {
      const out = await tempDir();
      try {
        const r = await runTs('scripts/gen-certs.ts', [
          '--out',
          out.path,
          '--k8s-dir',
          out.path,
          ...args,
        ]);
        expect(r.code).toBe(code);
        expect(r.stderr).toMatch(message);
        expect(await readdir(out.path)).toEqual([]);
      } finally {
        await out.remove();
      }
    });
  }

  it('refuses an output folder that cannot be written, leaving nothing behind', async () => {
    const out = await tempDir();
    try {
      await writeFile(join(out.path, 'file'), 'not a folder');
      const r = await runTs('scripts/gen-certs.ts', [
        '--out',
        join(out.path, 'file', 'certs'),
        '--k8s-dir',
        join(out.path, 'k8s'),
      ]);
      expect(r.code).toBe(exit.OUTPUT_UNWRITABLE);
      expect(r.stderr).toMatch(/cannot create .*file\/certs/);
      await expect(
        generateBundle(bundleOptions(join(out.path, 'file', 'x'))),
      ).rejects.toBeInstanceOf(OutputError);
    } finally {
      await out.remove();
    }
  });

  it('refuses a CA key that does not match ca.crt instead of replacing it', async () => {
    const out = await tempDir();
    const other = await tempDir();
    try {
      await generateBundle(bundleOptions(out.path));
      await generateBundle(bundleOptions(other.path));
      const caBefore = await readFile(join(out.path, 'ca.crt'), 'utf8');
      await writeFile(join(out.path, 'ca.key'), await readFile(join(other.path, 'ca.key')));
      const r = await runTs('scripts/gen-certs.ts', ['--out', out.path, '--k8s-dir', out.path]);
      expect(r.code).toBe(exit.CA_KEY_INVALID);
      expect(r.stderr).toMatch(/ca\.key does not match .*ca\.crt/);
      expect(await readFile(join(out.path, 'ca.crt'), 'utf8')).toBe(caBefore);
    } finally {
      await out.remove();
      await other.remove();
    }
  });

  it('refuses a CA key that cannot be read', async () => {
    const out = await tempDir();
    try {
      await generateBundle(bundleOptions(out.path));
      await writeFile(join(out.path, 'ca.key'), 'garbage');
      await expect(generateBundle(bundleOptions(out.path))).rejects.toThrow(CaKeyError);
      await expect(generateBundle(bundleOptions(out.path))).rejects.toThrow(
        /ca\.key is not a readable private key/,
      );
    } finally {
      await out.remove();
    }
  });
});

describe('gen-certs --rotate-ca and --status', () => {
  it('rolls the CA over in three steps, trusting both CAs until the old one retires', async () => {
    const out = await tempDir();
    try {
      const certs = join(out.path, 'certs');
      const k8sDir = join(out.path, 'k8s');
      const args = ['--out', certs, '--k8s-dir', k8sDir];
      expect((await runTs('scripts/gen-certs.ts', args)).code).toBe(0);
      const oldCa = new X509Certificate(await readFile(join(certs, 'ca.crt')));
      const bundleSize = async () =>
        (await readFile(join(certs, 'ca.crt'), 'utf8')).match(/BEGIN CERTIFICATE/g)?.length;
      const serverIssuer = async () =>
        new X509Certificate(await readFile(join(certs, 'server.crt'))).issuer;
      const secretCa = async () =>
        Buffer.from(
          /^ {2}ca\.crt: (.+)$/m.exec(
            await readFile(join(k8sDir, 'secret-grpc-server-tls.yaml'), 'utf8'),
          )?.[1] ?? '',
          'base64',
        ).toString();

      const one = await runTs('scripts/gen-certs.ts', [...args, '--rotate-ca']);
      expect(one.stdout).toContain('CA rollover step 1 of 3');
      expect(await bundleSize()).toBe(2);
      expect(await serverIssuer()).toBe(oldCa.subject);
      expect(await secretCa()).toBe(await readFile(join(certs, 'ca.crt'), 'utf8'));
      expect((await readdir(certs)).sort()).toContain('ca-next.key');
      expect((await runTs('scripts/gen-certs.ts', args)).stderr).toMatch(
        /a CA rollover is in progress/,
      );

      const two = await runTs('scripts/gen-certs.ts', [...args, '--rotate-ca']);
      expect(two.stdout).toContain('CA rollover step 2 of 3');
      const newCa = new X509Certificate(await readFile(join(certs, 'ca-next.crt')));
      expect(
        new X509Certificate(await readFile(join(certs, 'server.crt'))).verify(newCa.publicKey),
      ).toBe(true);
      expect(await bundleSize()).toBe(2);

      const three = await runTs('scripts/gen-certs.ts', [...args, '--rotate-ca']);
      expect(three.stdout).toContain('CA rollover step 3 of 3');
      expect(await bundleSize()).toBe(1);
      expect(new X509Certificate(await readFile(join(certs, 'ca.crt'))).fingerprint256).toBe(
        newCa.fingerprint256,
      );
      expect((await readdir(certs)).some((f) => f.startsWith('ca-next'))).toBe(false);
      expect(await secretCa()).toBe(await readFile(join(certs, 'ca.crt'), 'utf8'));
      await run('openssl', [
        'verify',
        '-CAfile',
        join(certs, 'ca.crt'),
        join(certs, 'server.crt'),
        join(certs, 'client.crt'),
        join(certs, 'probe.crt'),
      ]);
      const again = await runTs('scripts/gen-certs.ts', args);
      expect(again.stdout).toContain('Kept the existing CA');
    } finally {
      await out.remove();
    }
  });

  it('lists every certificate with its days left and exits 8 when one expires within --warn-days', async () => {
    const out = await tempDir();
    try {
      await generateBundle(bundleOptions(out.path, { days: 10 }));
      const fine = await runTs('scripts/gen-certs.ts', [
        '--out',
        out.path,
        '--status',
        '--warn-days',
        '5',
      ]);
      expect(fine.code).toBe(0);
      expect(fine.stdout).toMatch(
        /server\.crt .*CN=grpc-server .*CN=grpc-mtls-service CA .*DNS:localhost.* (9|10) +ok/,
      );
      const warned = await runTs('scripts/gen-certs.ts', [
        '--out',
        out.path,
        '--status',
        '--warn-days',
        '30',
      ]);
      expect(warned.code).toBe(exit.CERT_EXPIRING);
      expect(warned.stdout).toMatch(/client\.crt .* expiring/);
      expect(warned.stderr).toMatch(/3 certificate\(s\) expired or expiring within 30 days/);
      expect(
        (await runTs('scripts/gen-certs.ts', ['--out', out.path, '--status', '--new-ca'])).code,
      ).toBe(exit.USAGE);
    } finally {
      await out.remove();
    }
  });
});
