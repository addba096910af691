// The log output: access lines gathered and written together, every other line
// at once and in order, nothing lost when the process exits.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs, { closeSync, openSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { accessEntry } from '../src/shared/access-log.js';
import { createLoggers, isoTimeCached } from '../src/shared/logging.js';
import { LogOutput } from '../src/shared/log-output.js';
import { PROJECT_ROOT } from '../src/shared/proto.js';
import { tempDir } from './helpers/pki.js';

/** A target that records each write and can be awaited for the next one. */
class Recorder {
  readonly chunks: string[] = [];
  private waiting: ((chunk: string) => void)[] = [];
  write(chunk: string): void {
    this.chunks.push(chunk);
    for (const resolve of this.waiting.splice(0)) resolve(chunk);
  }
  next(): Promise<string> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }
}

const outputs: LogOutput[] = [];
function output(options = { flushMs: 60_000, maxPendingBytes: 1_000_000 }) {
  const target = new Recorder();
  const out = new LogOutput(target, options);
  outputs.push(out);
  return { target, out };
}

afterAll(() => {
  for (const out of outputs) out.close();
});

describe('the log output', () => {
  it('writes gathered access lines together once the flush interval has passed', async () => {
    const { target, out } = output({ flushMs: 20, maxPendingBytes: 1_000_000 });
    const written = target.next();
    out.batched.write('a\n');
    out.batched.write('b\n');
    out.batched.write('c\n');
    expect(target.chunks).toEqual([]);
    expect(await written).toBe('a\nb\nc\n');
    expect(target.chunks).toHaveLength(1);
  });

  it('writes gathered access lines at the end of the turn in which they reach the size limit', async () => {
    const { target, out } = output({ flushMs: 60_000, maxPendingBytes: 10 });
    const written = target.next();
    out.batched.write('12345\n');
    out.batched.write('67890\n');
    out.batched.write('abc\n');
    // Not in the middle of the turn, where it would delay the response being sent.
    expect(target.chunks).toEqual([]);
    expect(await written).toBe('12345\n67890\nabc\n');
  });

  it('writes any other line at once, after the access lines gathered before it', () => {
    const { target, out } = output();
    out.batched.write('rpc 1\n');
    out.batched.write('rpc 2\n');
    out.immediate.write('warning\n');
    expect(target.chunks.join('')).toBe('rpc 1\nrpc 2\nwarning\n');
    out.immediate.write('serving\n');
    expect(target.chunks.join('')).toBe('rpc 1\nrpc 2\nwarning\nserving\n');
  });

  it('writes what is gathered when pino flushes', () => {
    const { target, out } = output();
    const { log, access } = createLoggers('info', 'test', out);
    access?.write(accessEntry('/echo.v1.EchoService/Echo', 'spiffe://x/y', 'r'), 0, 1.23456);
    expect(target.chunks).toEqual([]);
    let called = false;
    log.flush(() => (called = true));
    expect(called).toBe(true);
    expect(JSON.parse(target.chunks.join(''))).toMatchObject({ msg: 'rpc', ms: 1.235 });
  });
});

describe('the log output on a file descriptor that fails', () => {
  it('keeps the process going and says so once on stderr', () => {
    const fd = openSync('/dev/full', 'w'); // every write fails with ENOSPC
    const said: string[] = [];
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      said.push(String(chunk));
      return true;
    });
    try {
      const out = new LogOutput(fd);
      outputs.push(out);
      for (let i = 0; i < 100; i++) {
        out.batched.write('access line\n');
        out.immediate.write('other line\n');
      }
      out.flush();
    } finally {
      stderr.mockRestore();
      closeSync(fd);
    }
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/log output: cannot write to file descriptor \d+ \(ENOSPC\)/);
  });

  it('writes the lines it held back unchanged and in order once writing works again', async () => {
    const dir = await tempDir('log-held-');
    const file = join(dir.path, 'out.log');
    const fd = openSync(file, 'w');
    // The first three writes fail, as on a disk that is full for a while.
    const realWriteSync = fs.writeSync;
    let failures = 3;
    const writeSync = vi.spyOn(fs, 'writeSync').mockImplementation((...args) => {
      if (failures > 0) {
        failures -= 1;
        throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
      }
      return (realWriteSync as (...a: unknown[]) => number)(...args);
    });
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const lines: string[] = [];
    try {
      const out = new LogOutput(fd);
      outputs.push(out);
      // Each flush gathers new lines in the buffer the failed writes were made
      // from: had it been reused while held, the held lines would be overwritten.
      for (let round = 0; round < 6; round++) {
        for (let i = 0; i < 20; i++) {
          const line = `round ${round} line ${i} ${'x'.repeat(i)}\n`;
          lines.push(line);
          out.batched.write(line);
        }
        out.flush();
      }
      out.close();
      expect(failures).toBe(0);
      expect(readFileSync(file, 'utf8')).toBe(lines.join(''));
    } finally {
      writeSync.mockRestore();
      stderr.mockRestore();
      closeSync(fd);
      await dir.remove();
    }
  });
});

describe('the loggers', () => {
  it('write access lines with method, caller, status and duration, and an ISO time', () => {
    const { target, out } = output();
    const { access } = createLoggers('info', 'grpc-server', out);
    const before = Date.now();
    access?.write(accessEntry('/echo.v1.EchoService/Echo', null), 7, 0.5);
    out.flush();
    const line = JSON.parse(target.chunks.join('')) as Record<string, unknown>;
    expect(line).toMatchObject({
      level: 'info',
      name: 'grpc-server',
      pid: process.pid,
      method: '/echo.v1.EchoService/Echo',
      caller: 'unknown',
      code: 'PERMISSION_DENIED',
      ms: 0.5,
      msg: 'rpc',
    });
    const time = Date.parse(String(line.time));
    expect(new Date(time).toISOString()).toBe(line.time);
    expect(time).toBeGreaterThanOrEqual(before);
    expect(time).toBeLessThanOrEqual(Date.now());
  });

  it("give the time as Date's toISOString() does, whatever instants follow each other", () => {
    // Near instants share a second (the cached part) or cross one; far ones
    // reach before 1970 and past the year 9999 (an extended year).
    const instant = fc.oneof(
      fc.integer({ min: 1_764_698_000_000, max: 1_764_698_003_000 }),
      fc.integer({ min: -8.64e15, max: 8.64e15 }),
      fc.constantFrom(
        -1001,
        -1000,
        -999,
        -1,
        0,
        999,
        1000,
        253_402_300_799_999,
        253_402_300_800_000,
      ),
    );
    fc.assert(
      fc.property(fc.array(instant, { minLength: 1, maxLength: 40 }), (instants) => {
        let now = 0;
        const time = isoTimeCached(() => now);
        for (const at of instants) {
          now = at;
          expect(time()).toBe(`,"time":"${new Date(at).toISOString()}"`);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('drop fields named like key material from general lines', () => {
    const { target, out } = output();
    const { log } = createLoggers('info', 'grpc-server', out);
    log.info({ key: 'SECRET-1', tls: { privateKey: 'SECRET-2', subject: 'CN=x' } }, 'loaded');
    const text = target.chunks.join('');
    expect(text).not.toContain('SECRET');
    expect(JSON.parse(text)).toMatchObject({ tls: { subject: 'CN=x' }, msg: 'loaded' });
  });

  it('have no access log below info, and write nothing below their level', () => {
    const { target, out } = output();
    const { log, access } = createLoggers('warn', 'grpc-server', out);
    expect(access).toBeNull();
    log.info('not shown');
    out.flush();
    expect(target.chunks).toEqual([]);
  });
});

describe('a process that exits with access lines still gathered', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let script: string;

  beforeAll(async () => {
    dir = await tempDir('log-exit-');
    script = join(dir.path, 'exit.ts');
    const module = join(PROJECT_ROOT, 'src', 'shared', 'log-output.ts');
    await writeFile(
      script,
      [
        `import { LogOutput } from ${JSON.stringify(module)};`,
        `const out = new LogOutput(1, { flushMs: 60_000, maxPendingBytes: 1_000_000 });`,
        `out.batched.write('first\\n');`,
        `out.batched.write('second\\n');`,
        `if (process.argv[2] === 'throw') throw new Error('boom');`,
        `process.exit(3);`,
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await dir.remove();
  });

  async function run(arg: string): Promise<{ code: number | null; stdout: string }> {
    const child = spawn(process.execPath, ['--import', 'tsx', script, arg], {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const [code] = (await once(child, 'close')) as [number | null];
    return { code, stdout };
  }

  it('writes them on process.exit', async () => {
    expect(await run('exit')).toEqual({ code: 3, stdout: 'first\nsecond\n' });
  });

  it('writes them when an uncaught error ends the process', async () => {
    expect(await run('throw')).toEqual({ code: 1, stdout: 'first\nsecond\n' });
  });
});
