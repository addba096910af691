// The bare @grpc/grpc-js server of `npm run bench`: Echo and ServerStream with
// grpc-js's own defaults and nothing else (no authorization, no logging, no
// health, no identity). With TLS_* set it requires a client certificate from the
// CA, as ours does; with --insecure-plaintext it is the no-TLS baseline.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { EchoServiceHandlers } from '../../src/generated/echo/v1/EchoService.js';
import type { ProtoGrpcType } from '../../src/generated/echo.js';
import { STREAM_LIMITS, logServing, protoRoot, readSettings, runMain } from './common.js';

type Handlers = Pick<EchoServiceHandlers, 'Echo' | 'ServerStream'>;

function handlers(serverId: string): Handlers {
  return {
    Echo(call, callback) {
      callback(null, { message: call.request.message, server_id: serverId, sequence: 0 });
    },
    ServerStream(call) {
      const { message, count, interval_ms: interval } = call.request;
      if (count < 1 || count > STREAM_LIMITS.maxCount || interval > STREAM_LIMITS.maxIntervalMs) {
        call.emit('error', {
          code: grpc.status.INVALID_ARGUMENT,
          details: `count must be 1 to ${STREAM_LIMITS.maxCount} and interval_ms 0 to ${STREAM_LIMITS.maxIntervalMs}`,
        });
        return;
      }
      // The plain way: write them all, leaving flow control to grpc-js's buffers.
      if (interval === 0) {
        for (let i = 0; i < count; i++) call.write({ message, server_id: serverId, sequence: i });
        call.end();
        return;
      }
      let sent = 0;
      const timer = setInterval(() => {
        call.write({ message, server_id: serverId, sequence: sent++ });
        if (sent >= count) {
          clearInterval(timer);
          call.end();
        }
      }, interval);
      call.on('cancelled', () => clearInterval(timer));
    },
  };
}

async function main(): Promise<void> {
  const settings = readSettings(process.argv.slice(2), process.env, true);
  const definition = protoLoader.loadSync('echo/v1/echo.proto', {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [protoRoot()],
  });
  const proto = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
  const server = new grpc.Server();
  server.addService(proto.echo.v1.EchoService.service, handlers(settings.serverId));
  const credentials = settings.tls
    ? grpc.ServerCredentials.createSsl(
        settings.tls.ca,
        [{ cert_chain: settings.tls.cert, private_key: settings.tls.key }],
        true,
      )
    : grpc.ServerCredentials.createInsecure();
  const target = `${settings.host}:${settings.port}`;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(target, credentials, (err, bound) =>
      err ? reject(new Error(`cannot listen on ${target}: ${err.message}`)) : resolve(bound),
    ),
  );
  logServing(settings.host, port);
  const stop = () => server.forceShutdown();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

runMain('grpc-js-server', main);
