// The standard gRPC health service (grpc.health.v1.Health: Check, Watch, List),
// telling the truth: NOT_SERVING until the server is bound with its credentials
// loaded, SERVING while it serves, NOT_SERVING again the moment shutdown begins.
import * as grpc from '@grpc/grpc-js';
import {
  HealthImplementation,
  service as healthServiceDefinition,
  type ServingStatus,
} from 'grpc-health-check';

/** The whole server; grpc-health-check answers NOT_FOUND for it unless set explicitly. */
export const WHOLE_SERVER = '';

type WatchCall = grpc.ServerWritableStream<unknown, unknown>;

export class HealthReporter {
  private readonly impl: HealthImplementation;
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watches = new Set<WatchCall>();

  constructor(private readonly services: string[]) {
    for (const name of [WHOLE_SERVER, ...services]) this.statuses.set(name, 'NOT_SERVING');
    this.impl = new HealthImplementation(Object.fromEntries(this.statuses));
  }

  /** Registers Check, Watch and List; Watch calls are tracked so shutdown can end them. */
  addToServer(server: grpc.Server): void {
    const wrapper = {
      addService: (definition: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation) => {
        const watch = impl.watch as grpc.handleServerStreamingCall<unknown, unknown>;
        server.addService(definition, {
          ...impl,
          watch: (call: WatchCall) => {
            this.watches.add(call);
            const forget = () => this.watches.delete(call);
            call.once('cancelled', forget);
            call.once('finish', forget);
            watch(call);
          },
        });
      },
    };
    this.impl.addToServer(wrapper);
  }

  /** Sets one service; Watch streams only hear real changes (the library resends unchanged ones). */
  set(serviceName: string, status: ServingStatus): void {
    if (this.statuses.get(serviceName) === status) return;
    this.statuses.set(serviceName, status);
    this.impl.setStatus(serviceName, status);
  }

  /** Sets the whole server and every registered service at once. */
  setAll(status: ServingStatus): void {
    for (const name of [WHOLE_SERVER, ...this.services]) this.set(name, status);
  }

  get(serviceName: string): ServingStatus | undefined {
    return this.statuses.get(serviceName);
  }

  /** Ends open Watch streams (UNAVAILABLE) so they cannot hold a graceful shutdown open. */
  endWatches(): void {
    for (const call of this.watches) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'server is shutting down' });
    }
    this.watches.clear();
  }
}

export { healthServiceDefinition };
