// Per-method authorization on a real server: rules that tell identities apart,
// a policy file changed while calls run (through a ConfigMap-style `..data`
// symlink swap), an invalid update refused with the old policy kept, the older
// forms, and a bad file refused at start-up.
import * as grpc from '@grpc/grpc-js';
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EchoClient } from '../src/client/client.js';
import * as exit from '../src/shared/exit-codes.js';
import type { EchoServer } from '../src/server/server.js';
import { CLIENT_ID, PROBE_ID, makePki, tempDir } from './helpers/pki.js';
import {
  clientFor,
  killProcess,
  pkiEnv,
  runTs,
  startInProcess,
  startServerProcess,
  type LogCapture,
} from './helpers/server.js';

const ECHO = '/echo.v1.EchoService/Echo';
const WHOAMI = '/echo.v1.EchoService/WhoAmI';
const STREAM = '/echo.v1.EchoService/ServerStream';

let dir: Awaited<ReturnType<typeof tempDir>>;
let pki: string;
beforeAll(async () => {
  dir = await tempDir();
  pki = join(dir.path, 'pki');
  await makePki(pki);
});
afterAll(() => dir.remove());

/**
 * A folder updated as the kubelet updates a ConfigMap volume: each version in
 * its own timestamped folder, `..data` pointing at the current one, and
 * `policy.json` a symlink through `..data`; an update renames a new `..data`
 * link over the old one (atomic), then removes the old folder.
 */
class ConfigMapVolume {
  private version = 0;
  private current = '';
  constructor(readonly root: string) {}
  get file(): string {
    return join(this.root, 'policy.json');
  }
  async write(policy: unknown): Promise<void> {
    const name = `..2026_12_01_00_00_00.${++this.version}`;
    await mkdir(join(this.root, name), { recursive: true });
    await writeFile(join(this.root, name, 'policy.json'), JSON.stringify(policy));
    await symlink(name, join(this.root, '..data_tmp'));
    await rename(join(this.root, '..data_tmp'), join(this.root, '..data'));
    if (this.version === 1) await symlink('..data/policy.json', this.file);
    if (this.current !== '') await rm(join(this.root, this.current), { recursive: true });
    this.current = name;
  }
}

const open: { server: EchoServer; clients: EchoClient[] }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    for (const c of o.clients) c.close();
    await o.server.shutdown();
  }
});

async function serve(env: Record<string, string>) {
  const s = await startInProcess(pki, { TLS_RELOAD_INTERVAL_MS: '100', ...env });
  const target = `127.0.0.1:${s.port}`;
  const client = clientFor(pki, target, 'client', { serverName: 'localhost' });
  const probe = clientFor(pki, target, 'probe', { serverName: 'localhost' });
  open.push({ server: s.server, clients: [client, probe] });
  return { ...s, client, probe };
}

const accessLine = (logs: LogCapture, method: string, caller: string) =>
  logs.lines.filter((l) => l.msg === 'rpc' && l.method === method && l.caller === caller).at(-1);
const denied = { code: grpc.status.PERMISSION_DENIED };

describe('per-method authorization', () => {
  it('allows a method to one identity and denies it to another, naming the allowing rule in the access line', async () => {
    const volume = new ConfigMapVolume(join(dir.path, 'two-rules'));
    await volume.write({
      rules: [
        { name: 'client-echo', identities: [CLIENT_ID], methods: [ECHO] },
        { name: 'probe-whoami', identities: [PROBE_ID], methods: [WHOAMI] },
      ],
    });
    const { client, probe, logs } = await serve({ AUTHZ_POLICY_FILE: volume.file });
    expect((await client.echo('mine')).message).toBe('mine');
    expect((await probe.whoAmI()).identity).toBe(PROBE_ID);
    await expect(probe.echo('not mine')).rejects.toMatchObject(denied);
    await expect(client.whoAmI()).rejects.toMatchObject(denied);
    expect(await probe.checkHealth()).toBe('SERVING');

    expect(accessLine(logs, ECHO, CLIENT_ID)).toMatchObject({ code: 'OK', rule: 'client-echo' });
    expect(accessLine(logs, WHOAMI, PROBE_ID)).toMatchObject({ code: 'OK', rule: 'probe-whoami' });
    expect(accessLine(logs, '/grpc.health.v1.Health/Check', PROBE_ID)).toMatchObject({
      rule: 'health',
    });
    const refusedLine = accessLine(logs, ECHO, PROBE_ID);
    expect(refusedLine).toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(refusedLine).not.toHaveProperty('rule');
    expect(
      logs.lines.find((l) => l.msg === 'permission denied' && l.caller === PROBE_ID),
    ).toMatchObject({
      method: ECHO,
      reason: `identity ${PROBE_ID} is not allowed to call ${ECHO}: no rule matched`,
    });
    expect(logs.lines.find((l) => l.msg === 'serving')).toMatchObject({
      policy: { source: volume.file, rules: [{ name: 'client-echo' }, { name: 'probe-whoami' }] },
    });
  });

  it('takes a rule change from a ConfigMap-style swap without a restart, failing no call in flight', async () => {
    const volume = new ConfigMapVolume(join(dir.path, 'swap'));
    await volume.write({
      rules: [{ name: 'v1', identities: [CLIENT_ID], methods: ['/echo.v1.EchoService/*'] }],
    });
    const { client, probe, logs } = await serve({ AUTHZ_POLICY_FILE: volume.file });
    await expect(probe.echo('not yet')).rejects.toMatchObject(denied);

    // A stream opened under v1, which v2 no longer allows the client: it runs to its end.
    const stream = client.serverStream('long', 100, 20)[Symbol.asyncIterator]();
    expect((await stream.next()).value).toMatchObject({ message: 'long', sequence: 0 });

    // Calls keep running, four at a time, across the swap; bounded in count and time.
    const results: { ok: boolean; err?: unknown }[] = [];
    let swapped = false;
    let afterSwap = 0;
    const until = Date.now() + 20_000;
    const worker = async () => {
      while (results.length < 5000 && Date.now() < until && afterSwap < 50) {
        try {
          await client.echo('loop');
          results.push({ ok: true });
        } catch (err) {
          results.push({ ok: false, err });
        }
        if (swapped) afterSwap += 1;
      }
    };
    const loop = Promise.all([worker(), worker(), worker(), worker()]);
    await volume.write({
      rules: [
        { name: 'v2-echo', identities: [CLIENT_ID, PROBE_ID], methods: [ECHO] },
        { name: 'v2-whoami', identities: [CLIENT_ID], methods: [WHOAMI] },
      ],
    });
    await logs.waitFor((l) => l.msg === 'reloaded authorization policy; new calls use it');
    swapped = true;
    // The stream is still running on the server: it has no access line yet.
    expect(accessLine(logs, STREAM, CLIENT_ID)).toBeUndefined();
    await loop;

    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(afterSwap).toBeGreaterThanOrEqual(50);
    const rules = new Set(
      logs.lines
        .filter((l) => l.msg === 'rpc' && l.method === ECHO && l.caller === CLIENT_ID)
        .map((l) => l.rule),
    );
    expect(rules).toEqual(new Set(['v1', 'v2-echo']));
    let received = 1;
    for (let r = await stream.next(); !r.done; r = await stream.next()) received += 1;
    expect(received).toBe(100);
    expect(accessLine(logs, STREAM, CLIENT_ID)).toMatchObject({ code: 'OK', rule: 'v1' });

    // New calls follow v2: the probe may echo now, a new stream is denied.
    expect((await probe.echo('now allowed')).message).toBe('now allowed');
    const again = client.serverStream('again', 1, 0)[Symbol.asyncIterator]();
    await expect(again.next()).rejects.toMatchObject(denied);
    expect(
      logs.lines.find((l) => l.msg === 'reloaded authorization policy; new calls use it'),
    ).toMatchObject({
      file: volume.file,
      policy: { rules: [{ name: 'v2-echo' }, { name: 'v2-whoami' }] },
    });
  });

  it('refuses an invalid update, logs the reason once, keeps the old policy, then takes the fixed file', async () => {
    const file = join(dir.path, 'plain-policy.json');
    const good = { rules: [{ name: 'good', identities: [CLIENT_ID], methods: [ECHO] }] };
    await writeFile(file, JSON.stringify(good));
    const { server, client, probe, logs } = await serve({ AUTHZ_POLICY_FILE: file });
    const refused = (l: Record<string, unknown>) =>
      l.msg === 'refused new authorization policy; still using the last good policy';

    await writeFile(
      file,
      JSON.stringify({
        rules: [
          {
            name: 'typo',
            identities: [CLIENT_ID, PROBE_ID],
            methods: ['/echo.v1.EchoService/Ech*'],
          },
        ],
      }),
    );
    expect(await logs.waitFor(refused)).toMatchObject({
      level: 50,
      file,
      err: expect.stringMatching(
        /^AUTHZ_POLICY_FILE \(.*plain-policy\.json\): rules\[0\]\.methods\[0\]: "\/echo\.v1\.EchoService\/Ech\*" is not a method pattern/,
      ) as unknown,
    });
    expect(await server.policyReloader!.check()).toBe('rejected');
    expect(logs.lines.filter(refused)).toHaveLength(1);
    expect((await client.echo('still allowed')).message).toBe('still allowed');
    await expect(probe.echo('still denied')).rejects.toMatchObject(denied);
    expect(accessLine(logs, ECHO, CLIENT_ID)).toMatchObject({ rule: 'good' });

    // Half a file (a writer caught mid-way) is refused the same way.
    await writeFile(file, JSON.stringify(good).slice(0, 20));
    expect(await server.policyReloader!.check()).toBe('rejected');
    expect(logs.lines.filter(refused).at(-1)).toMatchObject({
      err: expect.stringContaining('is not valid JSON') as unknown,
    });
    expect((await client.echo('still allowed')).message).toBe('still allowed');

    await writeFile(
      file,
      JSON.stringify({ rules: [{ name: 'fixed', identities: [PROBE_ID], methods: [ECHO] }] }),
    );
    await logs.waitFor((l) => l.msg === 'reloaded authorization policy; new calls use it');
    expect((await probe.echo('allowed now')).message).toBe('allowed now');
    await expect(client.echo('denied now')).rejects.toMatchObject(denied);
  });

  it('still reads the older forms, as the one rule "allowedIdentities", and follows the older file too', async () => {
    const env = await serve({ AUTHZ_ALLOWED_IDENTITIES: PROBE_ID });
    expect((await env.probe.whoAmI()).identity).toBe(PROBE_ID);
    await expect(env.client.echo('not listed')).rejects.toMatchObject(denied);
    expect(accessLine(env.logs, WHOAMI, PROBE_ID)).toMatchObject({ rule: 'allowedIdentities' });
    expect(env.server.policyReloader).toBeNull();

    const file = join(dir.path, 'old-policy.json');
    await writeFile(file, JSON.stringify({ allowedIdentities: [CLIENT_ID] }));
    const old = await serve({ AUTHZ_POLICY_FILE: file });
    expect(old.logs.lines.find((l) => l.msg === 'serving')).toMatchObject({
      policy: { source: file, allowedIdentities: [CLIENT_ID] },
    });
    expect((await old.client.echo('listed')).message).toBe('listed');
    expect(accessLine(old.logs, ECHO, CLIENT_ID)).toMatchObject({ rule: 'allowedIdentities' });
    await expect(old.probe.echo('not listed')).rejects.toMatchObject(denied);
    await writeFile(file, JSON.stringify({ allowedIdentities: [CLIENT_ID, PROBE_ID] }));
    await old.logs.waitFor((l) => l.msg === 'reloaded authorization policy; new calls use it');
    expect((await old.probe.echo('listed now')).message).toBe('listed now');
  });
});

describe('npm start with a policy file', () => {
  it('takes a changed policy at once on SIGHUP, long before the next poll', async () => {
    const file = join(dir.path, 'hup-policy.json');
    await writeFile(
      file,
      JSON.stringify({ rules: [{ name: 'before', identities: [CLIENT_ID], methods: [ECHO] }] }),
    );
    // An hour between polls: only the signal can explain a reload within the test.
    const s = await startServerProcess({
      ...pkiEnv(pki),
      AUTHZ_POLICY_FILE: file,
      TLS_RELOAD_INTERVAL_MS: '3600000',
    });
    const probe = clientFor(pki, `127.0.0.1:${s.port}`, 'probe', { serverName: 'localhost' });
    try {
      // A call answered shows the entry point ran on past "serving" to install its signal handlers.
      await expect(probe.echo('before the signal')).rejects.toMatchObject(denied);
      await writeFile(
        file,
        JSON.stringify({ rules: [{ name: 'after', identities: [PROBE_ID], methods: [ECHO] }] }),
      );
      s.child.kill('SIGHUP');
      const reloaded = await Promise.race([
        s.waitForLog((l) => l.msg === 'reloaded authorization policy; new calls use it'),
        s.exited.then((code): never => {
          throw new Error(`server exited (${code}, ${s.child.signalCode}): ${s.stderr()}`);
        }),
      ]);
      expect(reloaded).toMatchObject({
        file,
        policy: { rules: [{ name: 'after' }] },
      });
      expect((await probe.echo('after the signal')).message).toBe('after the signal');
    } finally {
      probe.close();
      await killProcess(s.child);
    }
  });
});

describe('npm start with a bad policy file', () => {
  it.each([
    [
      { rules: [{ identities: [CLIENT_ID], methods: ['/echo.v1.EchoService/Ech*'] }] },
      /rules\[0\]\.methods\[0\]: "\/echo\.v1\.EchoService\/Ech\*" is not a method pattern; write "\/pkg\.Service\/Method" for one method, "\/pkg\.Service\/\*" for every method/,
    ],
    [
      { rules: [{ identities: [CLIENT_ID], methods: ['/echo.v1.EchoService/Ecko'] }] },
      /rules\[0\]\.methods\[0\]: "\/echo\.v1\.EchoService\/Ecko": echo\.v1\.EchoService has no such method; its methods: /,
    ],
  ])(
    'refuses to start (exit 2), naming the setting, the file, the problem and the fix',
    async (policy, reason) => {
      const file = join(dir.path, 'bad-start.json');
      await writeFile(file, JSON.stringify(policy));
      const r = await runTs('src/bin/server.ts', [], {
        ...pkiEnv(pki),
        GRPC_ADDRESS: '127.0.0.1:0',
        AUTHZ_POLICY_FILE: file,
      });
      expect(r.code).toBe(exit.USAGE);
      expect(r.stderr).toMatch(/^server: AUTHZ_POLICY_FILE \(.*bad-start\.json\): /);
      expect(r.stderr).toMatch(reason);
      expect(r.stdout).not.toContain('"serving"');
    },
  );
});
