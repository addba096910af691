// A typed EchoService client over mTLS: promises for unary calls, async
// iterables for streams, round-robin over every address of a dns:/// target,
// and UNAVAILABLE retried with backoff within each call's deadline.
import * as grpc from '@grpc/grpc-js';
import type { ClientStreamResponse__Output } from '../generated/echo/v1/ClientStreamResponse.js';
import type { EchoResponse__Output } from '../generated/echo/v1/EchoResponse.js';
import type { EchoServiceClient } from '../generated/echo/v1/EchoService.js';
import type { WhoAmIResponse__Output } from '../generated/echo/v1/WhoAmIResponse.js';
import type { HealthClient } from '../generated/grpc/health/v1/Health.js';
import type { HealthCheckResponse__Output } from '../generated/grpc/health/v1/HealthCheckResponse.js';
import {
  ReloadingCertificateProvider,
  reloadingChannelCredentials,
} from '../tls/client-credentials.js';
import { ECHO_SERVICE, loadEchoProto, loadHealthProto } from '../shared/proto.js';
import type { ReloadLog } from '../tls/reloader.js';
import type { ClientMetrics } from './metrics.js';

export interface ClientOptions {
  /** `host:port`, `dns:///name:port` or `unix:///path`. */
  target: string;
  caFile: string;
  /** CRL signed by the CA (TLS_CRL_FILE); a revoked server certificate is refused. */
  crlFile?: string;
  certFile: string;
  keyFile: string;
  /** Name to verify the server certificate against, when it differs from the dialled host. */
  serverName?: string;
  /** Deadline of each call unless the call sets its own. */
  deadlineMs: number;
  /** How often to look for rotated TLS files (default 5 s, as the server). */
  reloadIntervalMs?: number;
  /** Where reloads and refused file sets are reported; silent by default. */
  tlsLog?: ReloadLog;
  /** Counts every call into grpc_client_* (metrics.ts); none by default. */
  metrics?: ClientMetrics;
}

const DEFAULT_RELOAD_INTERVAL_MS = 5000;

/** The health service's answer, as generated from health.proto. */
export type ServingStatus = HealthCheckResponse__Output['status'];

/**
 * Retries: only UNAVAILABLE (the call never reached a handler, so retrying is
 * safe), at most 5 attempts (gRPC's cap), backoff 0.2 s doubling to 2 s; the
 * call's deadline bounds it all.
 */
export function serviceConfig(target: string): string {
  const retryPolicy = {
    maxAttempts: 5,
    initialBackoff: '0.2s',
    maxBackoff: '2s',
    backoffMultiplier: 2,
    retryableStatusCodes: ['UNAVAILABLE'],
  };
  return JSON.stringify({
    // Every address of a headless Service gets a share; pick_first would pin one replica.
    loadBalancingConfig: /^(dns|ipv4|ipv6):/.test(target)
      ? [{ round_robin: {} }]
      : [{ pick_first: {} }],
    methodConfig: [
      { name: [{ service: ECHO_SERVICE }, { service: 'grpc.health.v1.Health' }], retryPolicy },
    ],
  });
}

export function channelOptions(
  opts: Pick<ClientOptions, 'target' | 'serverName'>,
): grpc.ChannelOptions {
  // A unix socket has no host name to check; the server certificate carries `localhost`.
  const serverName = opts.serverName ?? (opts.target.startsWith('unix:') ? 'localhost' : undefined);
  return {
    'grpc.service_config': serviceConfig(opts.target),
    'grpc.enable_retries': 1,
    // Ping once a minute when calls are open: above the server's 30 s keepalive, so neither side
    // sees the other as abusive, and often enough to notice a dead connection behind a NAT.
    'grpc.keepalive_time_ms': 60_000,
    'grpc.keepalive_timeout_ms': 20_000,
    // Reconnect quickly after a rolling restart instead of grpc's 1 s first backoff.
    'grpc.initial_reconnect_backoff_ms': 200,
    'grpc.max_reconnect_backoff_ms': 5_000,
    // Look the name up again at most once a second (grpc-js waits 30 s by default). A rolling
    // restart replaces every address of a headless Service; a client that resolved less than
    // 30 s earlier would otherwise have no replica to call until its next lookup. Lookups
    // happen only when a connection is lost, so this costs a query per lost connection at most.
    'grpc.dns_min_time_between_resolutions_ms': 1_000,
    ...(serverName !== undefined
      ? { 'grpc.ssl_target_name_override': serverName, 'grpc.default_authority': serverName }
      : {}),
  };
}

/** A unary callback that settles a promise; an empty response is an error, never `undefined`. */
function settle<T>(resolve: (value: T) => void, reject: (reason: Error) => void) {
  return (err: grpc.ServiceError | null, res?: T): void => {
    if (err) reject(err);
    else if (res === undefined) reject(new Error('the server sent no response message'));
    else resolve(res);
  };
}

export class EchoClient {
  readonly raw: EchoServiceClient;
  readonly health: HealthClient;

  private readonly certificates: ReloadingCertificateProvider;

  constructor(readonly options: ClientOptions) {
    this.certificates = new ReloadingCertificateProvider(
      {
        certFile: options.certFile,
        keyFile: options.keyFile,
        caFile: options.caFile,
        crlFile: options.crlFile,
      },
      options.reloadIntervalMs ?? DEFAULT_RELOAD_INTERVAL_MS,
      options.tlsLog,
    );
    const creds = reloadingChannelCredentials(this.certificates);
    const channelOpts = {
      ...channelOptions(options),
      ...(options.metrics ? { interceptors: [options.metrics.interceptor] } : {}),
    };
    this.raw = new (loadEchoProto().echo.v1.EchoService)(options.target, creds, channelOpts);
    // Share the echo client's channel so health and echo calls use one connection.
    this.health = new (loadHealthProto().grpc.health.v1.Health)(options.target, creds, {
      ...channelOpts,
      channelOverride: this.raw.getChannel(),
    });
  }

  private callOptions(deadlineMs?: number): grpc.CallOptions {
    return { deadline: Date.now() + (deadlineMs ?? this.options.deadlineMs) };
  }

  echo(message: string, deadlineMs?: number): Promise<EchoResponse__Output> {
    return new Promise((resolve, reject) => {
      this.raw.Echo({ message }, this.callOptions(deadlineMs), settle(resolve, reject));
    });
  }

  whoAmI(deadlineMs?: number): Promise<WhoAmIResponse__Output> {
    return new Promise((resolve, reject) => {
      this.raw.WhoAmI({}, this.callOptions(deadlineMs), settle(resolve, reject));
    });
  }

  serverStream(
    message: string,
    count: number,
    intervalMs: number,
    deadlineMs?: number,
  ): AsyncIterable<EchoResponse__Output> {
    return this.raw.ServerStream(
      { message, count, interval_ms: intervalMs },
      this.callOptions(deadlineMs),
    );
  }

  async clientStream(
    messages: Iterable<string> | AsyncIterable<string>,
    deadlineMs?: number,
  ): Promise<ClientStreamResponse__Output> {
    let call!: grpc.ClientWritableStream<{ message: string }>;
    const result = new Promise<ClientStreamResponse__Output>((resolve, reject) => {
      call = this.raw.ClientStream(this.callOptions(deadlineMs), settle(resolve, reject));
    });
    for await (const message of messages) call.write({ message });
    call.end();
    return result;
  }

  /** Sends each message as it comes and yields the answers as they arrive. */
  chat(
    messages: AsyncIterable<string> | Iterable<string>,
    deadlineMs?: number,
  ): AsyncIterable<EchoResponse__Output> {
    const call = this.raw.Chat(this.callOptions(deadlineMs));
    void (async () => {
      try {
        for await (const message of messages) call.write({ message });
        call.end();
      } catch (err) {
        call.cancel();
        throw err;
      }
    })();
    return call;
  }

  checkHealth(service = '', deadlineMs?: number): Promise<ServingStatus> {
    return new Promise((resolve, reject) => {
      this.health.Check(
        { service },
        this.callOptions(deadlineMs),
        settle((res: HealthCheckResponse__Output) => resolve(res.status), reject),
      );
    });
  }

  /** Streams every status change until the server ends the stream or the call is cancelled. */
  async *watchHealth(service = '', signal?: AbortSignal): AsyncIterable<ServingStatus> {
    const call = this.health.Watch({ service }, {});
    signal?.addEventListener('abort', () => call.cancel(), { once: true });
    const updates: AsyncIterable<HealthCheckResponse__Output> = call;
    for await (const update of updates) yield update.status;
  }

  close(): void {
    this.certificates.close();
    this.health.close();
    this.raw.close();
  }
}
