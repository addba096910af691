// The same Echo and ServerStream on @connectrpc/connect-node, serving the gRPC
// protocol only, over Node's HTTP/2 with the same mutual TLS: what a TypeScript
// team would pick instead of grpc-js. Nothing else (no authorization, no logging).
// ECHO_DESCRIPTOR_FILE names the serialized echo.proto the harness wrote.
import { Code, ConnectError, type ConnectRouter } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { once } from 'node:events';
import { createSecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { STREAM_LIMITS, SettingsError, logServing, readSettings, runMain } from './common.js';
import { loadEchoService, type EchoServiceDesc } from './echo-descriptor.js';

function routes(service: EchoServiceDesc, serverId: string) {
  return (router: ConnectRouter) =>
    router.service(service, {
      echo(req) {
        return { message: req.message, serverId };
      },
      async *serverStream(req, context) {
        const { message, count, intervalMs } = req;
        if (count < 1 || count > STREAM_LIMITS.maxCount || intervalMs > STREAM_LIMITS.maxIntervalMs)
          throw new ConnectError(
            `count must be 1 to ${STREAM_LIMITS.maxCount} and interval_ms 0 to ${STREAM_LIMITS.maxIntervalMs}`,
            Code.InvalidArgument,
          );
        for (let sequence = 0; sequence < count; sequence++) {
          yield { message, serverId, sequence };
          if (intervalMs > 0 && sequence + 1 < count)
            await delay(intervalMs, undefined, { signal: context.signal });
        }
      },
    });
}

async function main(): Promise<void> {
  const settings = readSettings(process.argv.slice(2), process.env, false);
  const descriptorFile = process.env.ECHO_DESCRIPTOR_FILE ?? '';
  if (descriptorFile === '')
    throw new SettingsError(
      'ECHO_DESCRIPTOR_FILE must name the serialized echo.proto (echo.binpb)',
    );
  const tls = settings.tls!;
  const handler = connectNodeAdapter({
    routes: routes(loadEchoService(descriptorFile), settings.serverId),
    grpc: true,
    grpcWeb: false,
    connect: false,
  });
  const server = createSecureServer(
    {
      cert: tls.cert,
      key: tls.key,
      ca: tls.ca,
      requestCert: true,
      rejectUnauthorized: true,
      // The same floor as our server (src/tls/server-credentials.ts).
      minVersion: 'TLSv1.2',
    },
    handler,
  );
  server.listen(settings.port, settings.host);
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([err]) => {
      throw new Error(
        `cannot listen on ${settings.host}:${settings.port}: ${(err as Error).message}`,
      );
    }),
  ]);
  logServing(settings.host, (server.address() as AddressInfo).port);
  const stop = () => server.close();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

runMain('connect-server', main);
