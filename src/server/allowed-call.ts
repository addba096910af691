// An allowed call as the handler sees it (the authorizer makes one per call,
// authz.ts): every event goes straight to the call grpc-js made, with no layer
// of its own in between, and the call's end is recorded here, once, for the
// access line and the per-call metrics alike.
//
// grpc-js's ServerInterceptingCall would allocate a responder, two listeners
// and a closure per event for every call; this is one object per call, which
// is also the listener it hands grpc-js. It gives the handler the auth context
// the interceptor already read (grpc-js would otherwise go back to the socket,
// through Node's HTTP/2 socket proxy, for every getAuthContext()).
//
// The end is the status the call is answered with (sendStatus), or, when
// grpc-js ends the call itself (deadline, client cancel, a request over the
// size limit), which never passes sendStatus here, onCancel: DEADLINE_EXCEEDED
// once the deadline has passed, otherwise CANCELLED (interceptors do not see
// grpc-js's own RESOURCE_EXHAUSTED for an oversized request in grpc-js 1.14).
import * as grpc from '@grpc/grpc-js';
import type { AccessEntry, AccessLog } from '../shared/access-log.js';
import { recordHandled, type MethodSeries } from '../shared/metrics-grpc.js';

type Interface = grpc.ServerInterceptingCallInterface;
export type AuthContext = ReturnType<Interface['getAuthContext']>;
type Listener = Parameters<Interface['start']>[0];
type Status = Parameters<Interface['sendStatus']>[0];

export class AllowedCall implements Interface, Listener {
  private listener: Listener | null = null;
  /** Until the end is recorded. */
  private open = true;

  /**
   * @param access  the access log, or null without one; `entry` is this call's fixed fields
   * @param series  the method's metrics, or null without metrics
   * @param started performance.now() when the call arrived (0 when neither is kept)
   */
  constructor(
    private readonly next: Interface,
    private readonly auth: AuthContext,
    private readonly access: AccessLog | null,
    private readonly entry: AccessEntry,
    private readonly series: MethodSeries | null,
    private readonly started: number,
  ) {
    if (series !== null) series.started.value += 1;
  }

  /** Records the call's end once, whichever of sendStatus and onCancel comes first. */
  private end(code: grpc.status): void {
    if (!this.open) return;
    this.open = false;
    if (this.access === null && this.series === null) return;
    const now = performance.now();
    if (this.series !== null) recordHandled(this.series, code, this.started, now);
    if (this.access !== null) this.access.write(this.entry, code, now - this.started);
  }

  start(listener: Listener): void {
    this.listener = listener;
    this.next.start(this);
  }

  onReceiveMetadata(metadata: grpc.Metadata): void {
    this.listener?.onReceiveMetadata(metadata);
  }

  onReceiveMessage(message: unknown): void {
    if (this.series !== null) this.series.received.value += 1;
    this.listener?.onReceiveMessage(message);
  }

  onReceiveHalfClose(): void {
    this.listener?.onReceiveHalfClose();
  }

  onCancel(): void {
    if (this.open) this.end(endedWithoutStatus(this.next));
    this.listener?.onCancel();
  }

  sendStatus(status: Status): void {
    this.next.sendStatus(status); // the response first, then the line
    this.end(status.code);
  }

  sendMetadata(metadata: grpc.Metadata): void {
    this.next.sendMetadata(metadata);
  }

  sendMessage(message: unknown, callback: () => void): void {
    if (this.series !== null) this.series.sent.value += 1;
    this.next.sendMessage(message, callback);
  }

  startRead(): void {
    this.next.startRead();
  }

  getPeer(): string {
    return this.next.getPeer();
  }

  getDeadline(): grpc.Deadline {
    return this.next.getDeadline();
  }

  getHost(): string {
    return this.next.getHost();
  }

  getAuthContext(): AuthContext {
    return this.auth;
  }

  getConnectionInfo(): ReturnType<Interface['getConnectionInfo']> {
    return this.next.getConnectionInfo();
  }

  getMetricsRecorder(): ReturnType<Interface['getMetricsRecorder']> {
    return this.next.getMetricsRecorder();
  }
}

/**
 * Each HTTP/2 session's auth context, read once. grpc-js's getAuthContext()
 * reads it from the session's socket on every call, through Node's socket
 * proxy (a trap per property, a bound function per method) and instanceof;
 * on the benchmark that was about 0.2 µs of every call. A session's is the same
 * for all its calls: its socket never changes, nor what that socket's handshake
 * verified (HTTP/2 forbids renegotiation; listeners.ts).
 */
const authBySession = new WeakMap<object, AuthContext>();

/**
 * A call's auth context. grpc-js keeps the call's HTTP/2 stream in a private
 * field (`stream`, since 1.10); without one, or once the stream has left its
 * session, this asks the call itself, every time, as grpc-js would.
 */
export function authContextOf(call: Interface): AuthContext {
  const session = (call as { stream?: { session?: object } }).stream?.session;
  if (session === undefined) return call.getAuthContext();
  let auth = authBySession.get(session);
  if (auth === undefined) {
    // Shared by the session's calls: frozen, so that no handler can change
    // what the authorizer reads for the next one.
    auth = Object.freeze(call.getAuthContext());
    authBySession.set(session, auth);
  }
  return auth;
}

/** The status of a call that grpc-js ended without one passing sendStatus here. */
function endedWithoutStatus(call: Interface): grpc.status {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Date.now() >= at ? grpc.status.DEADLINE_EXCEEDED : grpc.status.CANCELLED;
}
