// How soon the client looks a dns:/// name up again when the addresses behind it change,
// as they do for a headless Service during a rolling restart: every old pod goes and new
// pods with new addresses take their place.
//
// The name lives only in this test: grpc-js asks node:dns `promises.lookup` for it at each
// resolution, and the test answers with the loopback addresses of the servers it runs.
import dns from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { channelOptions } from '../src/client/client.js';
import type { EchoServer } from '../src/server/server.js';
import { makePki, tempDir } from './helpers/pki.js';
import { clientFor, startInProcess } from './helpers/server.js';

const NAME = 'replicas.resolve-test.invalid';

let dir: Awaited<ReturnType<typeof tempDir>>;
let answer: string[] = [];
let lookups = 0;
const realLookup = dns.promises.lookup;

beforeAll(async () => {
  dir = await tempDir();
  await makePki(dir.path);
  // Only this test's name is answered here; every other name goes to the real resolver.
  const fake = ((host: string, opts: unknown) => {
    if (host !== NAME) return (realLookup as (h: string, o: unknown) => unknown)(host, opts);
    lookups += 1;
    return Promise.resolve(answer.map((address) => ({ address, family: 4 })));
  }) as typeof dns.promises.lookup;
  dns.promises.lookup = fake;
});
afterAll(async () => {
  dns.promises.lookup = realLookup;
  await dir.remove();
});

async function replica(address: string, id: string): Promise<{ server: EchoServer; port: number }> {
  const { server, port } = await startInProcess(dir.path, {
    GRPC_ADDRESS: address,
    SERVER_ID: id,
    LOG_LEVEL: 'silent',
  });
  return { server, port };
}

describe('name resolution of the client', () => {
  it('asks DNS again within a second, not grpc-js’s default of 30 s', () => {
    expect(
      channelOptions({ target: `dns:///${NAME}:1` })['grpc.dns_min_time_between_resolutions_ms'],
    ).toBeLessThanOrEqual(1000);
  });

  it('reaches the new replicas of a name at once when all its old ones go, right after it started', async () => {
    // Old replica on 127.0.0.2; the new one will take the same port on 127.0.0.3, as new pods
    // of a Deployment take the same port on new addresses.
    const old = await replica('127.0.0.2:0', 'old');
    answer = ['127.0.0.2'];
    const client = clientFor(dir.path, `dns:///${NAME}:${old.port}`, 'client', {
      serverName: 'localhost',
      deadlineMs: 5000,
    });
    let next: { server: EchoServer; port: number } | undefined;
    try {
      expect((await client.echo('before')).server_id).toBe('old');
      const lookupsBefore = lookups;

      // The rollout: the new replica is ready and in DNS, then the old one stops, well
      // within 30 s of the client's first lookup.
      next = await replica(`127.0.0.3:${old.port}`, 'new');
      answer = ['127.0.0.3'];
      await old.server.shutdown();

      // Within the call's 5 s deadline the client has looked again and reached the new one;
      // with grpc-js's default it would wait until 30 s after its first lookup.
      const started = Date.now();
      expect((await client.echo('after')).server_id).toBe('new');
      expect(Date.now() - started).toBeLessThan(5000);
      expect(lookups).toBeGreaterThan(lookupsBefore);
    } finally {
      client.close();
      await old.server.shutdown();
      await next?.server.shutdown();
    }
  });
});
