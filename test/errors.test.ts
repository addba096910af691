// Every error class of the kit carries its exit code, and a wrapping error keeps
// the one it wraps as `cause`; describeFailure ends any failure from both.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CaKeyError, readIfPresent } from '../src/pki/ca-store.js';
import { OutputError, ensureOutputDirs } from '../src/pki/cert-bundle.js';
import { BindError } from '../src/server/server.js';
import { PolicyError } from '../src/server/policy-file.js';
import { describeFailure } from '../src/shared/errors.js';
import * as exit from '../src/shared/exit-codes.js';
import { UsageError } from '../src/shared/options.js';
import { CrlError } from '../src/tls/crl.js';
import { TlsFileError, TlsInvalidError, loadTlsMaterial } from '../src/tls/material.js';
import { bundleOptions } from './helpers/pki.js';

describe('errors and exit codes', () => {
  it('gives each error class the exit code of its cause', () => {
    const cases: [Error, number][] = [
      [new UsageError('u'), exit.USAGE],
      [new PolicyError('p'), exit.USAGE],
      [new TlsFileError('f'), exit.FILE_UNREADABLE],
      [new TlsInvalidError('i'), exit.TLS_INVALID],
      [new CrlError('c'), exit.TLS_INVALID],
      [new BindError('b'), exit.BIND_FAILED],
      [new CaKeyError('k'), exit.CA_KEY_INVALID],
      [new OutputError('o'), exit.OUTPUT_UNWRITABLE],
    ];
    for (const [err, code] of cases) {
      expect(describeFailure(err), err.name).toEqual({ message: err.message, exitCode: code });
    }
  });

  it('ends anything else as unexpected, with its stack', () => {
    const bug = new TypeError('x is undefined');
    expect(describeFailure(bug)).toEqual({ message: bug.stack, exitCode: exit.UNEXPECTED });
    expect(describeFailure('thrown string')).toEqual({
      message: 'thrown string',
      exitCode: exit.UNEXPECTED,
    });
  });

  it('keeps the system error as cause when a file cannot be read or written', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'errors-'));
    try {
      const missing = join(dir, 'missing.crt');
      const tls = await loadTlsMaterial(
        { certFile: missing, keyFile: missing, caFile: missing },
        'server',
      ).catch((e: unknown) => e);
      expect(tls).toBeInstanceOf(TlsFileError);
      expect((tls as Error).cause).toMatchObject({ code: 'ENOENT' });

      const ca = await readIfPresent(dir).catch((e: unknown) => e);
      expect(ca).toBeInstanceOf(CaKeyError);
      expect((ca as Error).cause).toMatchObject({ code: 'EISDIR' });

      await writeFile(join(dir, 'file'), '');
      const out = await ensureOutputDirs(bundleOptions(join(dir, 'file', 'x'))).catch(
        (e: unknown) => e,
      );
      expect(out).toBeInstanceOf(OutputError);
      expect(describeFailure(out).exitCode).toBe(exit.OUTPUT_UNWRITABLE);
      expect((out as Error).cause).toMatchObject({ code: 'ENOTDIR' });
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});
