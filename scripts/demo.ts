// `npm run demo`: the whole kit working, step by step, on a fresh clone.
// Every step either prints what it showed or stops the demo with the reason
// and a non-zero exit; every process it starts is stopped on the way out.
import * as grpc from '@grpc/grpc-js';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultBundleOptions, generateBundle } from '../src/pki/cert-bundle.js';
import { EchoClient, type ServingStatus } from '../src/client/client.js';
import { loadEchoProto, PROJECT_ROOT } from '../src/shared/proto.js';
import {
  freePort,
  killProcess,
  startServerProcess,
  type ServerProcess,
} from './lib/server-process.js';

const FILES = [
  'ca.crt',
  'server.crt',
  'server.key',
  'client.crt',
  'client.key',
  'probe.crt',
  'probe.key',
];
/** Long enough to see the server answer NOT_SERVING while it still serves, short enough to wait for. */
const DEMO_DRAIN_MS = 1500;

let stepNo = 0;
const TOTAL = 10;
async function step<T>(title: string, run: () => Promise<T>): Promise<T> {
  stepNo += 1;
  process.stdout.write(`\n[${stepNo}/${TOTAL}] ${title}\n`);
  try {
    return await run();
  } catch (err) {
    throw new Error(`step ${stepNo} (${title}) failed: ${(err as Error).message}`, { cause: err });
  }
}
const show = (text: string): void => void process.stdout.write(`      ${text}\n`);

function expectThat(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

async function hasPki(dir: string): Promise<boolean> {
  const present = await Promise.all(
    FILES.map((f) =>
      access(join(dir, f)).then(
        () => true,
        () => false,
      ),
    ),
  );
  return present.every(Boolean);
}

async function main(): Promise<void> {
  let temp: string | null = null;
  let server: ServerProcess | null = null;
  const clients: EchoClient[] = [];
  try {
    const certs = join(PROJECT_ROOT, 'certs');
    const pki = await step('A private CA and workload certificates', async () => {
      if (await hasPki(certs)) {
        show(`using the PKI already in ${certs}`);
        return certs;
      }
      temp = await mkdtemp(join(tmpdir(), 'grpc-mtls-demo-'));
      const result = await generateBundle(
        defaultBundleOptions(temp, { days: 1, caDays: 1, newCa: true }),
      );
      for (const c of result.certificates)
        show(
          `${c.file.replace(`${temp}/`, '')}: ${c.subject}${c.sans ? ` (${c.sans.split(', ').length} SANs)` : ''}`,
        );
      show(
        `generated a throw-away dev PKI in ${temp} (run \`npm run gen-certs\` to keep one in certs/)`,
      );
      return temp;
    });

    const metricsPort = await freePort();
    server = await step('Start the mTLS server', async () => {
      const s = await startServerProcess({
        METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
        TLS_CERT_FILE: join(pki, 'server.crt'),
        TLS_KEY_FILE: join(pki, 'server.key'),
        TLS_CA_FILE: join(pki, 'ca.crt'),
        SHUTDOWN_DRAIN_DELAY_MS: String(DEMO_DRAIN_MS),
        SERVER_ID: 'demo-server',
      });
      show(`listening on 127.0.0.1:${s.port}, client certificates required (pid ${s.child.pid})`);
      show(`Prometheus metrics on http://127.0.0.1:${metricsPort}/metrics (plain HTTP, own port)`);
      return s;
    });
    const target = `localhost:${server.port}`;
    const as = (who: 'client' | 'probe') => {
      const c = new EchoClient({
        target,
        caFile: join(pki, 'ca.crt'),
        certFile: join(pki, `${who}.crt`),
        keyFile: join(pki, `${who}.key`),
        deadlineMs: 5000,
      });
      clients.push(c);
      return c;
    };
    const client = as('client');
    const probe = as('probe');

    await step('Call every RPC kind as the client identity', async () => {
      const echo = await client.echo('hello over mTLS');
      show(`Echo          -> "${echo.message}" from ${echo.server_id}, caller ${echo.caller}`);
      const streamed: number[] = [];
      for await (const r of client.serverStream('tick', 3, 100)) streamed.push(r.sequence);
      show(`ServerStream  -> ${streamed.length} responses (${streamed.join(', ')})`);
      const collected = await client.clientStream(['alpha', 'beta', 'gamma']);
      show(
        `ClientStream  -> ${collected.count} messages, ${collected.total_bytes} bytes, "${collected.summary}"`,
      );
      const chat: string[] = [];
      for await (const r of client.chat(['ping', 'pong'])) chat.push(r.message);
      show(`Chat          -> answered ${chat.map((m) => `"${m}"`).join(', ')}`);
      expectThat(
        streamed.length === 3 && collected.count === 3 && chat.length === 2,
        'a call returned fewer messages than sent',
      );
    });

    await step('WhoAmI: the identity the server verified', async () => {
      const who = await client.whoAmI();
      show(`identity ${who.identity}`);
      show(`CN ${who.common_name}, serial ${who.serial}, valid until ${who.not_after}`);
    });

    await step('Health, as the probe identity', async () => {
      for (const service of ['', 'echo.v1.EchoService']) {
        const status = await probe.checkHealth(service);
        show(`Check "${service}" -> ${status}`);
        expectThat(status === 'SERVING', `health of "${service}" is ${status}`);
      }
    });

    await step('A client without a certificate is refused at the handshake', async () => {
      const Ctor = loadEchoProto().echo.v1.EchoService;
      const bare = new Ctor(
        target,
        grpc.credentials.createSsl(await readFile(join(pki, 'ca.crt'))),
      );
      const err = await new Promise<grpc.ServiceError | null>((resolve) =>
        bare.Echo({ message: 'x' }, { deadline: Date.now() + 3000 }, (e) => resolve(e)),
      );
      bare.close();
      expectThat(
        err !== null && err.code !== grpc.status.PERMISSION_DENIED,
        'a client without a certificate got an answer',
      );
      show(`refused: ${grpc.status[err?.code ?? 0]} (no TLS session, no RPC reached the server)`);
    });

    await step('The probe identity is refused by EchoService', async () => {
      const err = await probe.echo('x').then(
        () => null,
        (e: grpc.ServiceError) => e,
      );
      expectThat(
        err?.code === grpc.status.PERMISSION_DENIED,
        `expected PERMISSION_DENIED, got ${err ? grpc.status[err.code] : 'an answer'}`,
      );
      show(`PERMISSION_DENIED: ${err?.details}`);
    });

    await step('Metrics: what the server counted, as Prometheus scrapes it', async () => {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      expectThat(res.ok, `GET /metrics answered ${res.status}`);
      const text = await res.text();
      const value = (pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? NaN);
      const echoOk = value(
        /^grpc_server_handled_total\{[^}]*grpc_method="Echo"[^}]*grpc_code="OK"[^}]*\} (\S+)$/m,
      );
      const denied = value(
        /^grpc_server_handled_total\{[^}]*grpc_method="Echo"[^}]*grpc_code="PermissionDenied"[^}]*\} (\S+)$/m,
      );
      const refused = text
        .split('\n')
        .filter((l) => l.startsWith('grpc_mtls_tls_handshake_refused_total{'))
        .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
      expectThat(echoOk >= 1, `expected Echo OK counted, got ${echoOk}`);
      expectThat(denied >= 1, `expected the probe's denied Echo counted, got ${denied}`);
      show(`grpc_server_handled_total Echo OK: ${echoOk}, PermissionDenied: ${denied}`);
      show(`grpc_mtls_tls_handshake_refused_total (all reasons): ${refused}`);
    });

    await step('Graceful shutdown: NOT_SERVING first, then exit 0', async () => {
      const s = server!;
      const seen: ServingStatus[] = [];
      const watched = (async () => {
        for await (const status of probe.watchHealth('')) {
          seen.push(status);
          if (status === 'NOT_SERVING') return;
        }
      })();
      await probe.checkHealth('');
      s.child.kill('SIGTERM');
      show('sent SIGTERM');
      await watched;
      show(`Watch saw: ${seen.join(' -> ')}`);
      const during = await probe.checkHealth('echo.v1.EchoService');
      show(
        `Check during the ${DEMO_DRAIN_MS} ms drain -> ${during} (still answering, so load balancers can drain it)`,
      );
      const code = await s.exited;
      expectThat(code === 0, `the server exited with ${code}`);
      show('the server exited with 0');
      server = null;
    });

    await step('Clean up', async () => {
      for (const c of clients.splice(0)) c.close();
      if (temp) await rm(temp, { recursive: true, force: true });
      show(temp ? `removed ${temp}` : 'nothing to remove');
      temp = null;
    });
    process.stdout.write('\nDemo complete: every step passed.\n');
  } finally {
    for (const c of clients) c.close();
    if (server) await killProcess(server.child);
    if (temp) await rm(temp, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`\ndemo: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
