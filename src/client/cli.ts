// The commands of `npm run client`: each prints JSON lines on standard output
// and returns an exit code; failures are explained by errors.ts.
import type * as grpc from '@grpc/grpc-js';
import { createInterface } from 'node:readline';
import { EchoClient } from './client.js';
import { runLoop } from './loop.js';
import { ClientMetrics } from './metrics.js';
import { MetricsBindError, MetricsEndpoint } from '../shared/metrics-http.js';
import type { ClientInvocation } from './config.js';
import { explainCallError } from './errors.js';
import * as exit from '../shared/exit-codes.js';
import { identityFromCertificate } from '../tls/identity.js';
import { KitError } from '../shared/errors.js';
import { loadTlsMaterial } from '../tls/material.js';

const print = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value)}\n`);

async function* stdinLines(): AsyncIterable<string> {
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (line.trim() !== '') yield line;
  }
}

async function runCommand(
  client: EchoClient,
  inv: ClientInvocation,
  stopped: AbortSignal,
): Promise<number> {
  switch (inv.command) {
    case 'echo':
      print(await client.echo(inv.args[0] ?? ''));
      return exit.OK;
    case 'whoami':
      print(await client.whoAmI());
      return exit.OK;
    case 'stream':
      for await (const res of client.serverStream(
        inv.args[0] ?? 'stream',
        inv.count,
        inv.intervalMs,
      ))
        print(res);
      return exit.OK;
    case 'collect':
      print(await client.clientStream(inv.args));
      return exit.OK;
    case 'chat':
      for await (const res of client.chat(stdinLines(), Infinity)) print(res);
      return exit.OK;
    case 'health': {
      if (!inv.watch) {
        const status = await client.checkHealth(inv.service);
        print({ service: inv.service, status });
        return status === 'SERVING' ? exit.OK : exit.NOT_SERVING;
      }
      let last = 'UNKNOWN';
      for await (const status of client.watchHealth(inv.service, stopped)) {
        last = status;
        print({ time: new Date().toISOString(), service: inv.service, status });
      }
      return last === 'SERVING' ? exit.OK : exit.NOT_SERVING;
    }
    case 'loop':
      return runLoop(client, inv, stopped, print);
  }
}

/** Runs one invocation; the caller exits with the returned code. */
export async function runClient(inv: ClientInvocation, stopped: AbortSignal): Promise<number> {
  let ownIdentity: string;
  try {
    const own = await loadTlsMaterial(inv.options, 'client');
    ownIdentity = identityFromCertificate(own.leaf)?.id ?? 'unknown';
  } catch (err) {
    // Unusable TLS files: the error names the setting, the file and its exit code.
    if (!(err instanceof KitError)) throw err;
    process.stderr.write(`client: ${err.message}\n`);
    return err.exitCode;
  }
  // A long-running loop (the client pod) reports certificate reloads in its log;
  // one-shot commands finish long before a reload could matter.
  const tlsLog =
    inv.command === 'loop'
      ? {
          info: (obj: object, msg: string) =>
            print({ time: new Date().toISOString(), event: msg, ...obj }),
          error: (obj: object, msg: string) =>
            print({ time: new Date().toISOString(), event: msg, ...obj }),
        }
      : undefined;
  // The loop serves its grpc_client_* metrics when asked (METRICS_ADDRESS).
  const metrics = inv.command === 'loop' && inv.metricsAddress !== '' ? new ClientMetrics() : null;
  const endpoint = metrics ? new MetricsEndpoint(metrics.registry) : null;
  if (endpoint) {
    try {
      const port = await endpoint.listen(inv.metricsAddress);
      const address = inv.metricsAddress.replace(/:\d+$/, `:${port}`);
      print({ time: new Date().toISOString(), event: 'serving metrics', address });
    } catch (err) {
      if (!(err instanceof MetricsBindError)) throw err;
      process.stderr.write(`client: ${err.message}\n`);
      return exit.BIND_FAILED;
    }
  }
  const client = new EchoClient({
    ...inv.options,
    ...(tlsLog ? { tlsLog } : {}),
    ...(metrics ? { metrics } : {}),
  });
  try {
    return await runCommand(client, inv, stopped);
  } catch (err) {
    const e = err as grpc.ServiceError;
    if (typeof e.code !== 'number') throw err;
    if (stopped.aborted && inv.watch) return exit.OK;
    const { exitCode, message } = await explainCallError(e, inv.options, ownIdentity);
    process.stderr.write(`client: ${message}\n`);
    return exitCode;
  } finally {
    client.close();
    await endpoint?.close();
  }
}
