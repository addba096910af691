import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cp, readdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../src/shared/proto.js';
import { tempDir } from './helpers/pki.js';

/** What a fresh clone holds: everything tracked, no certs, no build output. */
const SKIP = new Set(['node_modules', '.git', 'certs', 'dist', 'coverage', '.tools', 'bench']);

let copy: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  copy = await tempDir('grpc-mtls-demo-copy-');
  for (const entry of await readdir(PROJECT_ROOT)) {
    if (!SKIP.has(entry))
      await cp(join(PROJECT_ROOT, entry), join(copy.path, entry), { recursive: true });
  }
  // `npm ci` would fetch the same packages; reuse the installed ones.
  await symlink(join(PROJECT_ROOT, 'node_modules'), join(copy.path, 'node_modules'));
});
afterAll(() => copy.remove());

describe('npm run demo', () => {
  it('runs every step from a copy without certs/ and exits 0', async () => {
    const child = spawn('npm', ['run', '--silent', 'demo'], {
      cwd: copy.path,
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    expect(out).toContain('generated a throw-away dev PKI');
    expect(out).toMatch(/Echo +-> "hello over mTLS" from demo-server/);
    expect(out).toContain('refused: UNAVAILABLE');
    expect(out).toContain(
      'PERMISSION_DENIED: identity spiffe://cluster.local/ns/grpc-mtls/sa/grpc-probe',
    );
    expect(out).toMatch(/grpc_server_handled_total Echo OK: [1-9]\d*, PermissionDenied: [1-9]/);
    expect(out).toContain('Watch saw: SERVING -> NOT_SERVING');
    expect(out).toContain('Demo complete: every step passed.');
    expect(code).toBe(0);
  });
});
