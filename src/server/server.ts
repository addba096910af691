// The mTLS gRPC server: wires credentials, authorization, logging, health,
// reflection and the echo service together, and owns start-up and shutdown.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { Authorizer } from './authz.js';
import { passEncodedReplies } from './echo-replies.js';
import { echoHandlers } from './echo-service.js';
import { HealthReporter } from './health.js';
import { describePolicy } from './policy-file.js';
import { kitMethods } from './policy-methods.js';
import { PolicyReloader } from './policy-reloader.js';
import { PinoAccessLog, type AccessLog } from '../shared/access-log.js';
import { KitError } from '../shared/errors.js';
import { BIND_FAILED } from '../shared/exit-codes.js';
import { ECHO_PROTO, ECHO_SERVICE, LOADER_OPTIONS, loadEchoProto } from '../shared/proto.js';
import type { ServerConfig } from './config.js';
import { instrumentTlsListeners } from '../tls/listeners.js';
import { TlsReloader } from '../tls/reloader.js';
import { ServerMetrics } from './metrics.js';
import {
  LimitedServerCredentials,
  grpcServerOptions,
  destroySessions,
  limitConnections,
  memoryBound,
} from './transport-limits.js';
import {
  EXPIRY_WARNING_DAYS,
  daysLeft,
  describeCertificate,
  loadTlsMaterial,
  type TlsMaterial,
} from '../tls/material.js';

/** The server could not bind an address; the message names it and the reason. */
export class BindError extends KitError {
  override name = 'BindError';
  readonly exitCode = BIND_FAILED;
}

const DAY_MS = 86_400_000;

type Reflection = typeof import('@grpc/reflection').ReflectionService;

const mebibytes = (b: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(b).map(([k, v]) => [k, Math.round((v / 1048576) * 10) / 10]));

export class EchoServer {
  readonly health = new HealthReporter([ECHO_SERVICE]);
  readonly reloader: TlsReloader;
  /** Follows AUTHZ_POLICY_FILE; null when the policy came from the settings. */
  readonly policyReloader: PolicyReloader | null;
  readonly authorizer: Authorizer;
  /** Null unless METRICS_ADDRESS is set. */
  readonly metrics: ServerMetrics | null;
  /** The port the metrics endpoint bound, once started (0 when off). */
  metricsPort = 0;
  private readonly server: grpc.Server;
  private readonly credentials: LimitedServerCredentials;
  private expiryTimer: NodeJS.Timeout | null = null;
  private shutdownPromise: Promise<'graceful' | 'forced'> | null = null;
  private leaf: TlsMaterial['leaf'];

  private constructor(
    readonly config: ServerConfig,
    private readonly log: Logger,
    access: AccessLog | null,
    material: TlsMaterial,
    reflection: Reflection | null,
  ) {
    this.leaf = material.leaf;
    this.metrics = config.metricsAddress === '' ? null : new ServerMetrics(material);
    // The settings name the TLS files and the limits with the fields these take.
    this.credentials = new LimitedServerCredentials(material, config, config);
    this.reloader = new TlsReloader(config, 'server', material, log, (m) => {
      this.credentials.replace(m);
      this.leaf = m.leaf;
      this.metrics?.tlsLoaded(m);
    });
    this.authorizer = new Authorizer(config.policy);
    this.policyReloader =
      config.policyFile === ''
        ? null
        : new PolicyReloader(config.policyFile, config.policyText, kitMethods(), log, (p) =>
            this.authorizer.replace(p),
          );
    // Per-RPC lines only when they would be written: turning them off removes their cost.
    const interceptors = [
      this.authorizer.interceptor(
        log,
        config.accessLog ? access : null,
        this.metrics?.calls ?? null,
      ),
    ];
    if (this.metrics) {
      const m = this.metrics;
      this.authorizer.onDenied = (path, code, at) => m.callDenied(path, code, at);
      this.reloader.onResult = (r) => m.tlsReload(r);
      if (this.policyReloader) this.policyReloader.onResult = (r) => m.policyReload(r);
    }
    this.server = new grpc.Server({ ...grpcServerOptions(config), interceptors });
    // Per-call metrics: every service added from here on gets its series made once.
    this.metrics?.calls.instrument(this.server);
    const echo = passEncodedReplies(loadEchoProto().echo.v1.EchoService.service);
    this.server.addService(echo, echoHandlers(config.serverId, echo.Echo.responseSerialize));
    this.health.addToServer(this.server);
    if (reflection !== null) {
      const definition = protoLoader.loadSync([ECHO_PROTO, healthProtoPath], LOADER_OPTIONS);
      new reflection(definition).addToServer(this.server);
    }
  }

  /**
   * Loads and checks the TLS files first: the server is never built around bad credentials.
   * `access` takes the per-RPC lines (logging.ts gives one on a batched output; null
   * when the level is above info); by default they go through `log`, at info.
   */
  static async create(
    config: ServerConfig,
    log: Logger,
    access: AccessLog | null = log.isLevelEnabled('info') ? new PinoAccessLog(log) : null,
  ): Promise<EchoServer> {
    const material = await loadTlsMaterial(config, 'server');
    // Loaded only when turned on (it is off by default): 5 MiB and part of start-up otherwise.
    const reflection = config.reflection
      ? (await import('@grpc/reflection')).ReflectionService
      : null;
    return new EchoServer(config, log, access, material, reflection);
  }

  private bind(target: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(target, this.credentials, (err, port) => {
        if (err) reject(new BindError(`cannot listen on ${target}: ${err.message}`));
        else resolve(port);
      });
    });
  }

  /** Binds every listener, then reports SERVING; returns the TCP port actually bound. */
  async start(): Promise<{ port: number }> {
    const port = await this.bind(this.config.address);
    if (this.config.unixSocket !== '') await this.bind(`unix://${this.config.unixSocket}`);
    const metrics = this.metrics;
    instrumentTlsListeners(
      this.server,
      this.log,
      metrics ? (c) => metrics.handshakeRefused(c) : undefined,
    );
    if (metrics) this.metricsPort = await metrics.listen(this.config.metricsAddress);
    limitConnections(this.server, this.config.maxConnections, this.log);
    this.reloader.start(this.config.reloadIntervalMs);
    // One interval for every file followed: TLS files and the policy come from the same kind of volume.
    this.policyReloader?.start(this.config.reloadIntervalMs);
    this.health.setAll('SERVING');
    this.log.info(
      {
        address: this.config.address.replace(/:\d+$/, `:${port}`),
        unixSocket: this.config.unixSocket || undefined,
        metrics: metrics
          ? this.config.metricsAddress.replace(/:\d+$/, `:${this.metricsPort}`)
          : 'off',
        certificate: describeCertificate(this.leaf),
        policy: { source: this.config.policySource, ...describePolicy(this.config.policy) },
        reflection: this.config.reflection,
        memoryBoundMiB: mebibytes(memoryBound(this.config)),
        startupMs: Math.round(performance.now()),
      },
      'serving',
    );
    this.checkExpiry();
    // Daily reminder in the last week: a certificate that silently expires takes the service down.
    this.expiryTimer = setInterval(() => this.checkExpiry(), DAY_MS);
    this.expiryTimer.unref();
    return { port };
  }

  /** SIGHUP: look at every followed file now instead of at the next poll. */
  async reloadNow(): Promise<void> {
    await Promise.all([this.reloader.check(), this.policyReloader?.check()]);
  }

  private checkExpiry(): void {
    const days = daysLeft(this.leaf);
    if (days < EXPIRY_WARNING_DAYS) {
      this.log.warn(
        { certificate: describeCertificate(this.leaf) },
        `server certificate expires in ${days.toFixed(1)} days; rotate it`,
      );
    }
  }

  /**
   * Graceful shutdown: NOT_SERVING at once, keep serving through the drain delay
   * (so Kubernetes takes the pod out of its endpoints), then let calls in flight
   * finish until the deadline, then cut what is left.
   */
  shutdown(): Promise<'graceful' | 'forced'> {
    this.shutdownPromise ??= this.runShutdown();
    return this.shutdownPromise;
  }

  private async runShutdown(): Promise<'graceful' | 'forced'> {
    this.health.setAll('NOT_SERVING');
    this.log.info(
      { drainDelayMs: this.config.drainDelayMs, shutdownTimeoutMs: this.config.shutdownTimeoutMs },
      'shutting down: NOT_SERVING, draining',
    );
    await delay(this.config.drainDelayMs);
    this.reloader.stop();
    this.policyReloader?.stop();
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    this.health.endWatches();
    const outcome = await new Promise<'graceful' | 'forced'>((resolve) => {
      const timer = setTimeout(() => {
        // With channelz off, forceShutdown() does not find the sessions: cut them here.
        const cut = destroySessions(this.server);
        this.server.forceShutdown();
        this.log.warn({ connections: cut }, 'shutdown deadline passed: connections cut');
        resolve('forced');
      }, this.config.shutdownTimeoutMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve('graceful');
      });
    });
    // Last: a scrape during the drain still sees the calls finishing.
    await this.metrics?.close();
    this.log.info({ outcome }, 'stopped');
    return outcome;
  }
}
