// `npx tsx bench/keylog-cost.ts [--handshakes N] [--rounds R] [--callgrind]`:
// what the 'keylog' hook of src/tls/listeners.ts costs per mTLS handshake.
//
// Two Node TLS servers with ALPN h2, requestCert and rejectUnauthorized, as
// grpc-js makes them, with gen-certs' default certificates (RSA-2048): one
// plain, one with a server 'keylog' listener that puts a listener in front of
// each socket's 'secure' event on its first line, as listeners.ts does. A
// client in another process opens N connections one after another; each
// server reports its own CPU time per handshake, rounds alternating.
//
// With --callgrind the servers run under valgrind's callgrind (Debian's
// valgrind), which counts instructions and so is not moved by what else the
// machine is doing: each server runs twice, for N and for 6N handshakes, and
// the difference over 5N is its instructions per handshake (start-up cancels).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createSecureServer } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultBundleOptions, generateBundle } from '../src/pki/cert-bundle.js';
import { pkiFiles } from './lib/servers.js';
import { median } from './lib/stats.js';

type Mode = 'plain' | 'keylog';
const MODES: readonly Mode[] = ['plain', 'keylog'];
const SELF = fileURLToPath(import.meta.url);

async function serve(mode: Mode, handshakes: number, dir: string): Promise<void> {
  const pki = pkiFiles(dir);
  const server = createSecureServer({
    key: await readFile(pki.serverKey),
    cert: await readFile(pki.serverCert),
    ca: await readFile(pki.ca),
    requestCert: true,
    rejectUnauthorized: true,
  });
  if (mode === 'keylog') {
    const hooked = new WeakSet<TLSSocket>();
    server.on('keylog', (_line: Buffer, socket: TLSSocket) => {
      if (hooked.has(socket)) return;
      hooked.add(socket);
      socket.prependListener('secure', () => socket.authorized);
    });
  }
  // The first handshake warms up; the rest are timed.
  let done = 0;
  let start = process.cpuUsage();
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.destroy();
    done += 1;
    if (done === 1) start = process.cpuUsage();
    if (done < handshakes + 1) return;
    const used = process.cpuUsage(start);
    process.stdout.write(`${JSON.stringify({ cpuUs: (used.user + used.system) / handshakes })}\n`);
    process.exit(0);
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    process.stderr.write(`port ${address.port}\n`);
  });
}

async function handshake(port: number, n: number, dir: string): Promise<void> {
  const pki = pkiFiles(dir);
  const [ca, key, cert] = await Promise.all(
    [pki.ca, pki.clientKey, pki.clientCert].map((f) => readFile(f)),
  );
  for (let i = 0; i < n; i++) {
    const socket = connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca,
      key,
      cert,
      ALPNProtocols: ['h2'],
    });
    socket.on('error', () => {}); // the server closes each connection as soon as it is secure
    await once(socket, 'close');
  }
}

/** Starts one server (under callgrind if asked), drives it, and returns what it reported. */
async function round(mode: Mode, n: number, dir: string, callgrindOut?: string) {
  const args = [
    ...process.execArgv,
    SELF,
    '--serve',
    mode,
    '--handshakes',
    String(n),
    '--dir',
    dir,
  ];
  const child: ChildProcess = callgrindOut
    ? spawn(
        'valgrind',
        [
          '--tool=callgrind',
          '--smc-check=all-non-file',
          `--callgrind-out-file=${callgrindOut}`,
          process.execPath,
          ...args,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      )
    : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /port (\d+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', () => reject(new Error(`server exited before listening:\n${err}`)));
  });
  const exited = once(child, 'exit');
  await handshake(port, n + 1, dir);
  await exited;
  const instructions = /Collected : (\d+)/.exec(err)?.[1];
  return {
    cpuUs: (JSON.parse(out) as { cpuUs: number }).cpuUs,
    instructions: Number(instructions),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      handshakes: { type: 'string', default: '300' },
      rounds: { type: 'string', default: '6' },
      callgrind: { type: 'boolean', default: false },
      serve: { type: 'string' },
      dir: { type: 'string' },
    },
  });
  const n = Number(values.handshakes);
  if (values.serve !== undefined) return serve(values.serve as Mode, n, values.dir ?? '');
  const dir = await mkdtemp(join(tmpdir(), 'keylog-cost-'));
  try {
    await generateBundle(defaultBundleOptions(dir));
    if (values.callgrind) {
      for (const mode of MODES) {
        const small = await round(mode, n, dir, join(dir, `cg.${mode}.small`));
        const large = await round(mode, 6 * n, dir, join(dir, `cg.${mode}.large`));
        const perHandshake = (large.instructions - small.instructions) / (5 * n);
        console.log(`${mode}: ${(perHandshake / 1e6).toFixed(3)} M instructions per handshake`);
      }
      return;
    }
    const cpu: Record<Mode, number[]> = { plain: [], keylog: [] };
    for (let r = 0; r < Number(values.rounds); r++) {
      for (const mode of r % 2 ? [...MODES].reverse() : MODES)
        cpu[mode].push((await round(mode, n, dir)).cpuUs);
    }
    for (const mode of MODES)
      console.log(
        `${mode}: ${(median(cpu[mode]) ?? NaN).toFixed(0)} µs CPU per handshake (rounds: ${cpu[mode].map(Math.round).join(', ')})`,
      );
    console.log(
      `keylog ÷ plain: ${((median(cpu.keylog) ?? NaN) / (median(cpu.plain) ?? NaN)).toFixed(3)}`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
