import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as exit from '../src/shared/exit-codes.js';
import { SERVER_SETTINGS } from '../src/server/config.js';
import { loadCa, makePki, tempDir, writeCa, writeLeaf } from './helpers/pki.js';
import { echoOnce, expectHandshakeRefused, presentingCredentials } from './helpers/refusal.js';
import {
  clientFor,
  killProcess,
  pkiEnv,
  runTs,
  startServerProcess,
  type ServerProcess,
} from './helpers/server.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let pki: string;
const started: ServerProcess[] = [];

beforeAll(async () => {
  dir = await tempDir();
  pki = join(dir.path, 'pki');
  await makePki(pki);
});
afterAll(async () => {
  for (const s of started) await killProcess(s.child);
  await dir.remove();
});

const serverLeaf = async (name: string, spec: Parameters<typeof writeLeaf>[3] = {}) =>
  writeLeaf(dir.path, name, await loadCa(pki), {
    usage: 'server',
    dnsNames: ['localhost'],
    ...spec,
  });

describe('npm start', () => {
  it('lists every setting with its variable and default in --help', async () => {
    const r = await runTs('src/bin/server.ts', ['--help']);
    expect(r.code).toBe(0);
    for (const s of Object.values(SERVER_SETTINGS)) {
      expect(r.stdout).toContain(`--${s.flag}`);
      expect(r.stdout).toContain(s.env);
    }
  });

  it('logs a start-up summary without key material, serves, logs the call, and exits 0 on SIGTERM after NOT_SERVING', async () => {
    const s = await startServerProcess({ ...pkiEnv(pki), SHUTDOWN_DRAIN_DELAY_MS: '200' });
    started.push(s);
    const summary = s.lines.find((l) => l.msg === 'serving');
    expect(summary).toMatchObject({
      certificate: { subject: expect.stringContaining('CN=grpc-server') as unknown },
      policy: { allowedIdentities: ['spiffe://cluster.local/ns/grpc-mtls/sa/grpc-client'] },
    });
    expect(JSON.stringify(s.lines)).not.toContain('PRIVATE KEY');
    const c = clientFor(pki, `127.0.0.1:${s.port}`, 'client', { serverName: 'localhost' });
    expect((await c.echo('over a real process')).message).toBe('over a real process');
    c.close();
    s.child.kill('SIGTERM');
    await s.waitForLog((l) => l.msg === 'shutting down: NOT_SERVING, draining');
    expect(await s.exited).toBe(0);
    await s.waitForLog((l) => l.msg === 'stopped');
    expect(s.lines.at(-1)).toMatchObject({ msg: 'stopped', outcome: 'graceful' });
    // The access line is batched, yet it comes out, and before the lines logged after it.
    const rpc = s.lines.findIndex((l) => l.msg === 'rpc' && l.code === 'OK');
    expect(rpc).toBeGreaterThan(-1);
    expect(rpc).toBeLessThan(s.lines.findIndex((l) => l.msg === 'signal received'));
  });

  it('stops at once on a second SIGTERM during the drain, exiting 143 with its access lines written', async () => {
    const s = await startServerProcess({ ...pkiEnv(pki), SHUTDOWN_DRAIN_DELAY_MS: '30000' });
    started.push(s);
    const c = clientFor(pki, `127.0.0.1:${s.port}`, 'client', { serverName: 'localhost' });
    await c.echo('before the signals');
    c.close();
    s.child.kill('SIGTERM');
    await s.waitForLog((l) => l.msg === 'shutting down: NOT_SERVING, draining');
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(143);
    await s.waitForLog((l) => l.msg === 'second signal during shutdown: stopping at once');
    expect(s.lines.some((l) => l.msg === 'rpc' && l.code === 'OK')).toBe(true);
  });

  it('warns when its certificate expires within 7 days', async () => {
    const short = await serverLeaf('short-lived', { days: 5 });
    const s = await startServerProcess({
      ...pkiEnv(pki),
      TLS_CERT_FILE: short.certFile,
      TLS_KEY_FILE: short.keyFile,
    });
    started.push(s);
    const warning = await s.waitForLog((l) => l.level === 'warn');
    expect(String(warning.msg)).toMatch(/server certificate expires in [45]\.\d days; rotate it/);
    await killProcess(s.child);
  });

  it('serves the same mTLS on a Unix socket', async () => {
    const socket = join(dir.path, 'grpc.sock');
    const s = await startServerProcess({ ...pkiEnv(pki), GRPC_UNIX_SOCKET: socket });
    started.push(s);
    const c = clientFor(pki, `unix://${socket}`);
    expect((await c.echo('over a socket')).caller).toBe(
      'spiffe://cluster.local/ns/grpc-mtls/sa/grpc-client',
    );
    c.close();
    // And refuses a caller there that presents no certificate at all.
    await expectHandshakeRefused(
      { lines: s.lines, waitFor: s.waitForLog },
      async () =>
        echoOnce(`unix://${socket}`, await presentingCredentials({ caFile: join(pki, 'ca.crt') })),
      {
        code: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE',
        reason: /peer did not return a certificate/,
      },
    );
    await killProcess(s.child);
  });
});

describe('npm start refuses to run with bad inputs', () => {
  const refusal = async (env: Record<string, string>, code: number, message: RegExp) => {
    const r = await runTs('src/bin/server.ts', [], {
      GRPC_ADDRESS: '127.0.0.1:0',
      ...pkiEnv(pki),
      ...env,
    });
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(code);
  };

  it('refuses a missing certificate file, naming the setting and the file', () =>
    refusal(
      { TLS_CERT_FILE: join(dir.path, 'nope.crt') },
      exit.FILE_UNREADABLE,
      /TLS_CERT_FILE \(.*nope\.crt\) does not exist/,
    ));

  it('refuses an unreadable key file', async () => {
    const folder = join(dir.path, 'a-folder.key');
    await mkdir(folder, { recursive: true });
    await refusal(
      { TLS_KEY_FILE: folder },
      exit.FILE_UNREADABLE,
      /TLS_KEY_FILE \(.*a-folder\.key\) EISDIR/,
    );
  });

  it('refuses a key that does not match the certificate', () =>
    refusal(
      { TLS_KEY_FILE: join(pki, 'client.key') },
      exit.TLS_INVALID,
      /TLS_KEY_FILE \(.*client\.key\) does not match TLS_CERT_FILE \(.*server\.crt\)/,
    ));

  it('refuses an expired certificate', async () => {
    const old = await serverLeaf('expired-server', {
      days: 1,
      now: new Date(Date.now() - 3 * 86_400_000),
    });
    await refusal(
      { TLS_CERT_FILE: old.certFile, TLS_KEY_FILE: old.keyFile },
      exit.TLS_INVALID,
      /expired on/,
    );
  });

  it('refuses a certificate that is not yet valid', async () => {
    const future = await serverLeaf('future-server', {
      now: new Date(Date.now() + 3 * 86_400_000),
    });
    await refusal(
      { TLS_CERT_FILE: future.certFile, TLS_KEY_FILE: future.keyFile },
      exit.TLS_INVALID,
      /is not valid until/,
    );
  });

  it('refuses a certificate that does not chain to the CA bundle', async () => {
    const other = await writeCa(dir.path, 'unrelated-ca');
    await writeFile(join(dir.path, 'unrelated-ca.pem'), other.certPem);
    await refusal(
      { TLS_CA_FILE: join(dir.path, 'unrelated-ca.pem') },
      exit.TLS_INVALID,
      /is not signed by a CA in TLS_CA_FILE/,
    );
  });

  it('refuses a certificate the certificate policy refuses, naming the reason', async () => {
    const weak = await writeLeaf(
      dir.path,
      'weak-own-server',
      await loadCa(pki),
      { usage: 'server', dnsNames: ['localhost'] },
      { rsaBits: 1024 },
    );
    await refusal(
      { TLS_CERT_FILE: weak.certFile, TLS_KEY_FILE: weak.keyFile },
      exit.TLS_INVALID,
      /TLS_CERT_FILE \(.*weak-own-server\.crt\) is refused by the certificate policy: RSA key of 1024 bits/,
    );
  });

  it('refuses an allowed identity that is not a SPIFFE ID', () =>
    refusal(
      { AUTHZ_ALLOWED_IDENTITIES: 'grpc-client' },
      exit.USAGE,
      /AUTHZ_ALLOWED_IDENTITIES \(--allowed-identity\): "grpc-client" is not a SPIFFE ID/,
    ));

  it('refuses a certificate without serverAuth', () =>
    refusal(
      { TLS_CERT_FILE: join(pki, 'client.crt'), TLS_KEY_FILE: join(pki, 'client.key') },
      exit.TLS_INVALID,
      /lacks the serverAuth extended key usage/,
    ));

  it('refuses an invalid setting, naming it', () =>
    refusal(
      { GRPC_ADDRESS: 'not-an-address' },
      exit.USAGE,
      /invalid --address \(GRPC_ADDRESS\) "not-an-address" from the environment: must be HOST:PORT/,
    ));

  it('refuses a policy file and an identity list at once', async () => {
    const policy = join(dir.path, 'policy.json');
    await writeFile(policy, JSON.stringify({ allowedIdentities: ['spiffe://x/y'] }));
    await refusal(
      { AUTHZ_POLICY_FILE: policy, AUTHZ_ALLOWED_IDENTITIES: 'spiffe://a/b' },
      exit.USAGE,
      /set either AUTHZ_POLICY_FILE .* not both/,
    );
  });

  it('refuses a policy file with an unknown field', async () => {
    const policy = join(dir.path, 'bad-policy.json');
    await writeFile(policy, JSON.stringify({ allowedIdentity: ['spiffe://x/y'] }));
    await refusal({ AUTHZ_POLICY_FILE: policy }, exit.USAGE, /unknown field "allowedIdentity"/);
  });

  it('exits with the bind code when the port is taken, naming the address', async () => {
    const blocker = createServer();
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const port = (blocker.address() as { port: number }).port;
    try {
      await refusal(
        { GRPC_ADDRESS: `127.0.0.1:${port}` },
        exit.BIND_FAILED,
        new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`),
      );
    } finally {
      blocker.close();
    }
  });

  it('reads the allowed identities from a policy file', async () => {
    const policy = join(dir.path, 'probe-policy.json');
    await writeFile(
      policy,
      JSON.stringify({ allowedIdentities: ['spiffe://cluster.local/ns/grpc-mtls/sa/grpc-probe'] }),
    );
    const s = await startServerProcess({ ...pkiEnv(pki), AUTHZ_POLICY_FILE: policy });
    started.push(s);
    expect(s.lines.find((l) => l.msg === 'serving')).toMatchObject({
      policy: {
        source: policy,
        allowedIdentities: ['spiffe://cluster.local/ns/grpc-mtls/sa/grpc-probe'],
      },
    });
    const probe = clientFor(pki, `127.0.0.1:${s.port}`, 'probe', { serverName: 'localhost' });
    expect((await probe.echo('allowed now')).caller).toBe(
      'spiffe://cluster.local/ns/grpc-mtls/sa/grpc-probe',
    );
    probe.close();
    // The file replaced the default policy: the default client identity is denied now.
    const c = clientFor(pki, `127.0.0.1:${s.port}`, 'client', { serverName: 'localhost' });
    await expect(c.echo('no longer allowed')).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
    });
    c.close();
    await killProcess(s.child);
  });
});
