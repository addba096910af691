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
import { accessEntry, type AccessEntry, type AccessLog } from '../shared/access-log.js';
import { LogLimiter } from '../shared/log-limiter.js';
import { AllowedCall, authContextOf } from './allowed-call.js';
import type { ServerCallMetrics } from './call-metrics.js';
import type { AuthzPolicy } from './policy-file.js';
import { PolicyMatcher } from './policy-match.js';

/** An allowed (caller, method) pair: the rule that allows it and its access line's fixed fields. */
interface Allowance {
  rule: string;
  entry: AccessEntry;
}

/**
 * How many allowed (caller, method) pairs are remembered before the memory
 * starts over. Callers are verified identities of our CA and methods are the
 * server's own (grpc-js answers any other path before the interceptor), so
 * this is far above what a deployment has; it bounds a CA that issues many.
 */
const MAX_ALLOWANCES = 4096;

export type Decision =
  | { allowed: true; identity: string; rule: string }
  | { allowed: false; identity: string | null; reason: string };
type Denial = Extract<Decision, { allowed: false }>;

export class Authorizer {
  private matcher: PolicyMatcher;
  /** Allowed pairs by caller, then method, for the policy in use. */
  private allowances = new Map<string, Map<string, Allowance>>();
  private allowanceCount = 0;
  /** Told of each refused call once it is answered (the metrics count it). */
  onDenied: ((path: string, code: grpc.status, startedMs: number) => void) | null = null;

  constructor(policy: AuthzPolicy) {
    this.matcher = new PolicyMatcher(policy);
  }

  /** Swaps the policy for the calls that start from now on (one reference assignment). */
  replace(policy: AuthzPolicy): void {
    this.matcher = new PolicyMatcher(policy);
    this.allowances = new Map();
    this.allowanceCount = 0;
  }

  /** The decision for an allowed pair seen before, or it decided now (and remembered if allowed). */
  private allowance(path: string, identity: string): Allowance | null {
    const known = this.allowances.get(identity)?.get(path);
    if (known !== undefined) return known;
    const rule = this.matcher.match(path, identity);
    if (rule === null) return null;
    if (this.allowanceCount >= MAX_ALLOWANCES) {
      this.allowances = new Map();
      this.allowanceCount = 0;
    }
    const allowance = { rule, entry: accessEntry(path, identity, rule) };
    let byPath = this.allowances.get(identity);
    if (byPath === undefined)
      this.allowances.set(identity, (byPath = new Map<string, Allowance>()));
    byPath.set(path, allowance);
    this.allowanceCount += 1;
    return allowance;
  }

  /** `problem` says why a caller without an identity has none (identity.ts). */
  decide(path: string, identity: string | null, problem?: string): Decision {
    const allowance = identity === null ? null : this.allowance(path, identity);
    if (identity !== null && allowance !== null)
      return { allowed: true, identity, rule: allowance.rule };
    return denial(path, identity, problem);
  }

  /**
   * The one interceptor every call passes: it authorizes and hands an allowed
   * call on as an AllowedCall, which writes its access line (with `access`) and
   * counts it (with `metrics`) when it ends. One layer: each grpc-js
   * interceptor layer costs wrapper objects and a hop per event.
   */
  interceptor(
    log: Logger,
    access: AccessLog | null,
    metrics: ServerCallMetrics | null = null,
  ): grpc.ServerInterceptor {
    // Any caller of our CA can be denied at will: its warnings are rate-limited.
    const denials = new LogLimiter(log, 'permission denials not logged');
    const timed = access !== null || metrics !== null;
    return (method, call) => {
      const started = timed ? performance.now() : 0;
      const auth = authContextOf(call);
      const outcome = peerOutcome(auth.sslPeerCertificate);
      const identity = outcome.identity?.id ?? null;
      const allowance = identity === null ? null : this.allowance(method.path, identity);
      if (allowance !== null) {
        // grpc-js's type asks for its class, but grpc-js only calls the interface's
        // methods on what an interceptor returns (1.14.7: no instanceof anywhere).
        return new AllowedCall(
          call,
          auth,
          access,
          allowance.entry,
          metrics === null ? null : metrics.seriesOf(method.path),
          started,
        ) as unknown as grpc.ServerInterceptingCall;
      }
      const refused = denial(method.path, identity, outcome.problem ?? undefined);
      return this.refuse(call, method.path, refused, log, denials, access, started);
    };
  }

  /** Answers a denied call before its request is read: a denied caller gets nothing processed. */
  private refuse(
    call: grpc.ServerInterceptingCallInterface,
    path: string,
    decision: Denial,
    log: Logger,
    denials: LogLimiter,
    access: AccessLog | null,
    started: number,
  ): grpc.ServerInterceptingCall {
    const { reason } = decision;
    if (denials.allow()) {
      log.warn(
        {
          method: path,
          caller: decision.identity,
          peer: call.getPeer(),
          // The log says why; the caller is not told how the policy is built.
          reason: decision.identity === null ? reason : `${reason}: no rule matched`,
        },
        'permission denied',
      );
    }
    const code =
      decision.identity === null ? grpc.status.UNAUTHENTICATED : grpc.status.PERMISSION_DENIED;
    const deniedAt = performance.now();
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: () => {
            const ms = performance.now() - started;
            call.sendStatus({ code, details: reason, metadata: new grpc.Metadata() });
            if (access !== null) access.write(accessEntry(path, decision.identity), code, ms);
            this.onDenied?.(path, code, deniedAt);
          },
          onReceiveMessage: () => {},
          onReceiveHalfClose: () => {},
          onCancel: () => {},
        });
      },
    });
  }
}

/** Why a call is refused: no usable identity, or no rule for it. `problem` as in decide(). */
function denial(path: string, identity: string | null, problem?: string): Denial {
  if (identity === null) {
    return {
      allowed: false,
      identity,
      reason: `${problem ?? 'the client certificate carries no usable identity'}; refused ${path}`,
    };
  }
  return {
    allowed: false,
    identity,
    reason: `identity ${identity} is not allowed to call ${path}`,
  };
}
