// Authorization: which verified identity may call which service. Enforced in a
// server interceptor, before any handler runs.
//
// Policy (policy-file.ts): the health service is open to every verified caller
// (probes, load balancers); every other method, reflection included, only to
// the identities a rule names for it. Anything no rule allows is denied: new
// services start closed. The policy can be swapped while serving (a reload):
// each call is decided once, when it starts, against the policy of that
// moment, so a swap never touches a call already running.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { peerOutcome } from '../tls/identity.js';
import { LogLimiter } from '../shared/log-limiter.js';
import { logRpc } from '../shared/logging.js';
import type { AuthzPolicy } from './policy-file.js';
import { PolicyMatcher } from './policy-match.js';

type AuthContext = ReturnType<grpc.ServerInterceptingCallInterface['getAuthContext']>;
type Listener = Parameters<grpc.ServerInterceptingCallInterface['start']>[0];
type Status = Parameters<grpc.ServerInterceptingCallInterface['sendStatus']>[0];

/** What an allowed call's access line names besides its status and duration. */
interface AccessEntry {
  access: Logger;
  path: string;
  identity: string;
  rule: string;
}

/**
 * An allowed call as the handler sees it: every event goes straight to the
 * call grpc-js made, with no layer of its own in between. grpc-js's
 * ServerInterceptingCall would allocate a responder, two listeners and a
 * closure per event for every call; this is one object per call, which is
 * also the listener it hands grpc-js.
 *
 * It gives the handler the auth context the interceptor already read (grpc-js
 * would otherwise go back to the socket, through Node's HTTP/2 socket proxy,
 * for every call to getAuthContext()), and, with an access log, writes the
 * call's line once: when its status is sent, or when grpc-js ends the call
 * itself (deadline, client cancel, a request over the size limit), which
 * never passes sendStatus here but always ends in onCancel.
 */
class AllowedCall implements grpc.ServerInterceptingCallInterface, Listener {
  private listener: Listener | null = null;
  /** Set until the line is written: null without an access log, and once written. */
  private entry: AccessEntry | null;

  constructor(
    private readonly next: grpc.ServerInterceptingCallInterface,
    private readonly auth: AuthContext,
    entry: AccessEntry | null,
    private readonly started: number,
  ) {
    this.entry = entry;
  }

  /** Takes the entry, so that the line is written once whichever end comes first. */
  private takeEntry(): AccessEntry | null {
    const e = this.entry;
    this.entry = null;
    return e;
  }

  start(listener: Listener): void {
    this.listener = listener;
    this.next.start(this);
  }

  onReceiveMetadata(metadata: grpc.Metadata): void {
    this.listener?.onReceiveMetadata(metadata);
  }

  onReceiveMessage(message: unknown): void {
    this.listener?.onReceiveMessage(message);
  }

  onReceiveHalfClose(): void {
    this.listener?.onReceiveHalfClose();
  }

  onCancel(): void {
    const e = this.takeEntry();
    if (e !== null) {
      const ms = performance.now() - this.started;
      logRpc(e.access, e.path, e.identity, endedWithoutStatus(this.next), ms, e.rule);
    }
    this.listener?.onCancel();
  }

  sendStatus(status: Status): void {
    const e = this.takeEntry();
    const ms = e === null ? 0 : performance.now() - this.started;
    this.next.sendStatus(status); // the response first, then the line
    if (e !== null) logRpc(e.access, e.path, e.identity, status.code, ms, e.rule);
  }

  sendMetadata(metadata: grpc.Metadata): void {
    this.next.sendMetadata(metadata);
  }

  sendMessage(message: unknown, callback: () => void): void {
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

  getConnectionInfo(): ReturnType<grpc.ServerInterceptingCallInterface['getConnectionInfo']> {
    return this.next.getConnectionInfo();
  }

  getMetricsRecorder(): ReturnType<grpc.ServerInterceptingCallInterface['getMetricsRecorder']> {
    return this.next.getMetricsRecorder();
  }
}

export type Decision =
  | { allowed: true; identity: string; rule: string }
  | { allowed: false; identity: string | null; reason: string };

export class Authorizer {
  private matcher: PolicyMatcher;
  /** Told of each refused call once it is answered (the metrics count it). */
  onDenied: ((path: string, code: grpc.status, startedMs: number) => void) | null = null;

  constructor(policy: AuthzPolicy) {
    this.matcher = new PolicyMatcher(policy);
  }

  /** Swaps the policy for the calls that start from now on (one reference assignment). */
  replace(policy: AuthzPolicy): void {
    this.matcher = new PolicyMatcher(policy);
  }

  /** `problem` says why a caller without an identity has none (identity.ts). */
  decide(path: string, identity: string | null, problem?: string): Decision {
    if (identity === null) {
      return {
        allowed: false,
        identity,
        reason: `${problem ?? 'the client certificate carries no usable identity'}; refused ${path}`,
      };
    }
    const rule = this.matcher.match(path, identity);
    if (rule !== null) return { allowed: true, identity, rule };
    return {
      allowed: false,
      identity,
      reason: `identity ${identity} is not allowed to call ${path}`,
    };
  }

  /**
   * The one interceptor every call passes: it authorizes and, when given an
   * access logger, writes the call's line once its status is sent. One layer
   * instead of two: each grpc-js interceptor layer costs wrapper objects and a
   * hop per event.
   */
  interceptor(log: Logger, access: Logger | null): grpc.ServerInterceptor {
    // Any caller of our CA can be denied at will: its warnings are rate-limited.
    const denials = new LogLimiter(log, 'permission denials not logged');
    return (method, call) => {
      const started = access === null ? 0 : performance.now();
      const auth = call.getAuthContext();
      const outcome = peerOutcome(auth.sslPeerCertificate);
      const identity = outcome.identity?.id ?? null;
      const decision = this.decide(method.path, identity, outcome.problem ?? undefined);
      if (decision.allowed) {
        const entry =
          access === null
            ? null
            : { access, path: method.path, identity: decision.identity, rule: decision.rule };
        // grpc-js's type asks for its class, but grpc-js only calls the interface's
        // methods on what an interceptor returns (1.14.7: no instanceof anywhere).
        return new AllowedCall(
          call,
          auth,
          entry,
          started,
        ) as unknown as grpc.ServerInterceptingCall;
      }
      if (denials.allow()) {
        log.warn(
          {
            method: method.path,
            caller: decision.identity,
            peer: call.getPeer(),
            // The log says why; the caller is not told how the policy is built.
            reason:
              decision.identity === null ? decision.reason : `${decision.reason}: no rule matched`,
          },
          'permission denied',
        );
      }
      const code =
        decision.identity === null ? grpc.status.UNAUTHENTICATED : grpc.status.PERMISSION_DENIED;
      const deniedAt = performance.now();
      // Answer before reading the request: a denied caller gets nothing processed.
      return new grpc.ServerInterceptingCall(call, {
        start: (next) => {
          next({
            onReceiveMetadata: () => {
              const ms = performance.now() - started;
              call.sendStatus({ code, details: decision.reason, metadata: new grpc.Metadata() });
              if (access !== null) logRpc(access, method.path, identity, code, ms);
              this.onDenied?.(method.path, code, deniedAt);
            },
            onReceiveMessage: () => {},
            onReceiveHalfClose: () => {},
            onCancel: () => {},
          });
        },
      });
    };
  }
}

/**
 * The status of a call that grpc-js ended without the interceptor seeing one:
 * DEADLINE_EXCEEDED once its deadline has passed, otherwise CANCELLED (which
 * also stands for a request grpc-js refused as over the size limit: interceptors
 * do not see that status in grpc-js 1.14).
 */
function endedWithoutStatus(call: grpc.ServerInterceptingCallInterface): grpc.status {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Date.now() >= at ? grpc.status.DEADLINE_EXCEEDED : grpc.status.CANCELLED;
}
