// The server's Prometheus metrics, served on METRICS_ADDRESS (metrics-http.ts):
// the per-call grpc_server_* series (call-metrics.ts), the Node process
// metrics, and the kit's own:
//   grpc_mtls_tls_handshake_refused_total{reason}      refused client handshakes
//   grpc_mtls_authz_denied_total{grpc_service,grpc_method,reason}
//   grpc_mtls_tls_reloads_total{result}                 rotated TLS files used or refused
//   grpc_mtls_policy_reloads_total{result}              policy file changes used or refused
//   grpc_mtls_certificate_expiration_timestamp_seconds{role,subject,serial}
//   grpc_mtls_crl_next_update_timestamp_seconds
// Every label takes values from a fixed set or from the files the operator
// loaded, never from what a caller sends: refusal reasons are mapped onto the
// list below, and a denied call to a path the server does not serve counts as
// grpc_service="unknown".
import { status as grpcStatus } from '@grpc/grpc-js';
import { Counter, Gauge, Registry } from '../shared/prom.js';
import { collectProcessMetrics } from '../shared/metrics-process.js';
import { MetricsEndpoint } from '../shared/metrics-http.js';
import { UNKNOWN, splitMethodPath } from '../shared/metrics-grpc.js';
import type { TlsMaterial } from '../tls/material.js';
import type { ReloadResult } from '../tls/reloader.js';
import { ServerCallMetrics } from './call-metrics.js';

/** Node/OpenSSL refusal codes (listeners.ts) → the bounded `reason` label. */
const HANDSHAKE_REASONS: Record<string, string> = {
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 'no_certificate',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'untrusted',
  UNABLE_TO_GET_ISSUER_CERT: 'untrusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'untrusted',
  SELF_SIGNED_CERT_IN_CHAIN: 'untrusted',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'untrusted',
  CERT_SIGNATURE_FAILURE: 'untrusted',
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not_yet_valid',
  CERT_REVOKED: 'revoked',
  INVALID_PURPOSE: 'wrong_usage',
  CERTIFICATE_POLICY: 'certificate_policy',
  CERTIFICATE_UNREADABLE: 'unreadable',
  ETIMEDOUT: 'timeout',
};
export const HANDSHAKE_REASON_VALUES = [
  ...new Set([...Object.values(HANDSHAKE_REASONS), 'protocol', 'other']),
];

export function handshakeReason(code: string): string {
  return HANDSHAKE_REASONS[code] ?? (code.startsWith('ERR_SSL_') ? 'protocol' : 'other');
}

const RELOAD_RESULTS = ['reloaded', 'rejected'] as const;

export class ServerMetrics {
  readonly registry = new Registry();
  readonly calls: ServerCallMetrics;
  private readonly endpoint: MetricsEndpoint;
  private readonly refused: Counter<'reason'>;
  private readonly denied: Counter<'grpc_service' | 'grpc_method' | 'reason'>;
  private readonly tlsReloads: Counter<'result'>;
  private readonly policyReloads: Counter<'result'>;
  private material: TlsMaterial;

  constructor(material: TlsMaterial) {
    this.material = material;
    const registers = [this.registry];
    collectProcessMetrics(this.registry);
    this.calls = new ServerCallMetrics(this.registry);
    this.refused = new Counter({
      name: 'grpc_mtls_tls_handshake_refused_total',
      help: `Client TLS handshakes the server refused, by reason (${HANDSHAKE_REASON_VALUES.join(', ')}).`,
      labelNames: ['reason'],
      registers,
    });
    for (const reason of HANDSHAKE_REASON_VALUES) this.refused.inc({ reason }, 0);
    this.denied = new Counter({
      name: 'grpc_mtls_authz_denied_total',
      help: 'Calls refused by the authorization policy: reason no_identity (UNAUTHENTICATED) or no_rule (PERMISSION_DENIED).',
      labelNames: ['grpc_service', 'grpc_method', 'reason'],
      registers,
    });
    this.tlsReloads = reloadCounter('grpc_mtls_tls_reloads_total', 'TLS file sets', registers);
    this.policyReloads = reloadCounter('grpc_mtls_policy_reloads_total', 'policy files', registers);
    const current = (): TlsMaterial => this.material;
    new Gauge({
      name: 'grpc_mtls_certificate_expiration_timestamp_seconds',
      help: 'The date after which each loaded certificate is invalid (role server: the serving certificate; ca: each CA of the trusted bundle), in seconds since the epoch.',
      labelNames: ['role', 'subject', 'serial'],
      registers,
      collect() {
        this.reset();
        const { leaf, cas } = current();
        for (const [role, cert] of [
          ['server', leaf] as const,
          ...cas.map((c) => ['ca', c] as const),
        ])
          this.set(
            { role, subject: cert.subject.replaceAll('\n', ', '), serial: cert.serialNumber },
            Math.floor(new Date(cert.validTo).getTime() / 1000),
          );
      },
    });
    new Gauge({
      name: 'grpc_mtls_crl_next_update_timestamp_seconds',
      help: 'The earliest nextUpdate of the loaded CRLs, in seconds since the epoch (absent without TLS_CRL_FILE): past it every reload and then every peer is refused.',
      registers,
      collect() {
        this.reset();
        // With several CRLs (one per CA during a rollover), the first to expire is the one that matters.
        const next = Math.min(...(current().crls ?? []).map((c) => c.nextUpdate.getTime()));
        if (Number.isFinite(next)) this.set(Math.floor(next / 1000));
      },
    });
    this.endpoint = new MetricsEndpoint(this.registry);
  }

  /** The TLS set in use, for the expiry gauges. */
  tlsLoaded(material: TlsMaterial): void {
    this.material = material;
  }

  handshakeRefused(code: string): void {
    this.refused.inc({ reason: handshakeReason(code) });
  }

  /** A call the authorizer refused (authz.ts), answered at once with `code`. */
  callDenied(path: string, code: grpcStatus, startedMs: number): void {
    this.calls.ended(path, code, startedMs);
    const known = this.calls.knows(path);
    const { service, method } = known
      ? splitMethodPath(path)
      : { service: UNKNOWN, method: UNKNOWN };
    // UNAUTHENTICATED: the caller has no usable identity; otherwise no rule allows it.
    const reason = code === grpcStatus.UNAUTHENTICATED ? 'no_identity' : 'no_rule';
    this.denied.inc({ grpc_service: service, grpc_method: method, reason });
  }

  tlsReload(result: ReloadResult): void {
    if (result === 'reloaded' || result === 'rejected') this.tlsReloads.inc({ result });
  }

  policyReload(result: ReloadResult): void {
    if (result === 'reloaded' || result === 'rejected') this.policyReloads.inc({ result });
  }

  listen(address: string): Promise<number> {
    return this.endpoint.listen(address);
  }

  close(): Promise<void> {
    return this.endpoint.close();
  }
}

function reloadCounter(name: string, what: string, registers: Registry[]): Counter<'result'> {
  const c = new Counter({
    name,
    help: `Changed ${what} the server checked: result reloaded (in use) or rejected (the last good one stays).`,
    labelNames: ['result'],
    registers,
  });
  for (const result of RELOAD_RESULTS) c.inc({ result }, 0);
  return c;
}
