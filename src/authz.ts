// Authorization: which verified identity may call which service. Enforced in a
// server interceptor, before any handler runs.
//
// Policy: the health service is open to every verified caller (probes, load
// balancers); every other service, reflection included, only to the allowed
// identities. Anything not listed is denied: new services start closed.
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { SPIFFE_ID, peerOutcome } from './identity.js';
import { LogLimiter } from './log-limiter.js';
import { logRpc } from './logging.js';

export const HEALTH_SERVICE = 'grpc.health.v1.Health';
const HEALTH_PATH_PREFIX = `/${HEALTH_SERVICE}/`;

export interface AuthzPolicy {
  /** SPIFFE IDs allowed to call every non-health service. */
  allowedIdentities: string[];
}

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

export class PolicyError extends Error {
  override name = 'PolicyError';
}

/** Reads `{ "allowedIdentities": ["spiffe://…"] }`, refusing anything else by name. */
export function loadPolicyFile(path: string): AuthzPolicy {
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PolicyError(`AUTHZ_POLICY_FILE (${path}) cannot be read: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch (err) {
    throw new PolicyError(
      `AUTHZ_POLICY_FILE (${path}) is not valid JSON: ${(err as Error).message}`,
    );
  }
  const shape = 'expected {"allowedIdentities": ["spiffe://…", …]}';
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new PolicyError(`AUTHZ_POLICY_FILE (${path}): ${shape}`);
  }
  const unknown = Object.keys(data).filter((k) => k !== 'allowedIdentities');
  if (unknown.length > 0) {
    throw new PolicyError(
      `AUTHZ_POLICY_FILE (${path}) has unknown field ${JSON.stringify(unknown[0])}: ${shape}`,
    );
  }
  const ids = (data as { allowedIdentities?: unknown }).allowedIdentities;
  if (!Array.isArray(ids) || !ids.every((i) => typeof i === 'string' && i.trim() !== '')) {
    throw new PolicyError(
      `AUTHZ_POLICY_FILE (${path}): allowedIdentities must be a list of non-empty strings; ${shape}`,
    );
  }
  return checkPolicy({ allowedIdentities: ids as string[] }, `AUTHZ_POLICY_FILE (${path})`);
}

/**
 * Refuses an entry that is not a SPIFFE ID: identities come only from URI SANs
 * (identity.ts), so a CN or a typo in the policy would silently match nobody.
 */
export function checkPolicy(policy: AuthzPolicy, label: string): AuthzPolicy {
  for (const id of policy.allowedIdentities) {
    if (!SPIFFE_ID.test(id)) {
      throw new PolicyError(
        `${label}: ${JSON.stringify(id)} is not a SPIFFE ID (spiffe://trust-domain/path); identities come only from the certificate's URI SAN, never its CN`,
      );
    }
  }
  return policy;
}

export type Decision =
  { allowed: true; identity: string } | { allowed: false; identity: string | null; reason: string };

export class Authorizer {
  private readonly allowed: Set<string>;

  constructor(policy: AuthzPolicy) {
    this.allowed = new Set(policy.allowedIdentities);
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
    if (path.startsWith(HEALTH_PATH_PREFIX) || this.allowed.has(identity))
      return { allowed: true, identity };
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
                  logRpc(access, method.path, identity, endedWithoutStatus(call), ms);
                },
              });
            },
            sendStatus: (status, next) => {
              const ms = performance.now() - started;
              const first = !logged;
              logged = true;
              next(status); // the response first, then the line
              if (first) logRpc(access, method.path, identity, status.code, ms);
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
            reason: decision.reason,
          },
          'permission denied',
        );
      }
      const code =
        decision.identity === null ? grpc.status.UNAUTHENTICATED : grpc.status.PERMISSION_DENIED;
      // Answer before reading the request: a denied caller gets nothing processed.
      return new grpc.ServerInterceptingCall(call, {
        start: (next) => {
          next({
            onReceiveMetadata: () => {
              const ms = performance.now() - started;
              call.sendStatus({ code, details: decision.reason, metadata: new grpc.Metadata() });
              if (access !== null) logRpc(access, method.path, identity, code, ms);
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
