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

/**
 * Gives the handler the auth context the interceptor already read: grpc-js
 * would otherwise go back to the socket (through Node's HTTP/2 socket proxy)
 * for every call to getAuthContext().
 */
class AuthorizedCall extends grpc.ServerInterceptingCall {
  constructor(
    next: grpc.ServerInterceptingCallInterface,
    responder: grpc.Responder | undefined,
    private readonly auth: AuthContext,
  ) {
    super(next, responder);
  }

  override getAuthContext(): AuthContext {
    return this.auth;
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
        const { rule } = decision;
        if (access === null) return new AuthorizedCall(call, undefined, auth);
        let logged = false;
        return new AuthorizedCall(
          call,
          {
            // A call that grpc-js ends itself (deadline, client cancel, a request
            // over the size limit) never reaches sendStatus below, but is cancelled.
            start: (next) => {
              next({
                onCancel: () => {
                  if (logged) return;
                  logged = true;
                  const ms = performance.now() - started;
                  logRpc(access, method.path, identity, endedWithoutStatus(call), ms, rule);
                },
              });
            },
            sendStatus: (status, next) => {
              const ms = performance.now() - started;
              const first = !logged;
              logged = true;
              next(status); // the response first, then the line
              if (first) logRpc(access, method.path, identity, status.code, ms, rule);
            },
          },
          auth,
        );
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
