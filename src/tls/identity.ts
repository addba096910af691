// Who is calling: read from the certificate the TLS layer verified, never from
// anything the caller merely says (metadata, headers).
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { certificateProblem } from './cert-policy.js';

export interface CallerIdentity {
  /** What authorization matches: the SPIFFE ID from the URI SAN (never the CN). */
  id: string;
  spiffeId: string;
  commonName: string;
  /** Upper-case hex serial. */
  serial: string;
  /** RFC 3339. */
  notAfter: string;
}

/**
 * Splits Node's `subjectAltName` string ("DNS:a, URI:spiffe://…") into entries.
 * Node quotes an entry as a JSON string when its value holds a comma or quote,
 * so a crafted SAN cannot smuggle in a second entry.
 */
export function parseSubjectAltName(san: string): { type: string; value: string }[] {
  const entries: { type: string; value: string }[] = [];
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(':', i);
    if (colon < 0) break;
    const type = san.slice(i, colon).trim();
    let value: string;
    let next: number;
    if (san[colon + 1] === '"') {
      // JSON-quoted value: find the closing quote, honouring escapes.
      let j = colon + 2;
      while (j < san.length && san[j] !== '"') j += san[j] === '\\' ? 2 : 1;
      value = JSON.parse(san.slice(colon + 1, j + 1)) as string;
      next = san.indexOf(',', j + 1);
    } else {
      next = san.indexOf(', ', colon + 1);
      value = san.slice(colon + 1, next < 0 ? san.length : next);
    }
    entries.push({ type, value });
    if (next < 0) break;
    i = next + 1;
    while (san[i] === ' ') i++;
  }
  return entries;
}

/** What a verified certificate says about its holder: an identity, or why it has none. */
export type PeerOutcome =
  { identity: CallerIdentity; problem: null } | { identity: null; problem: string };

/** Outcomes by certificate fingerprint: parsing once per certificate, not per call. */
const cache = new Map<string, PeerOutcome>();
/** Enough for every workload of a large namespace; bounded so hostile churn cannot grow it. */
const CACHE_LIMIT = 1024;

/**
 * `spiffe://trust-domain/path`, as the SPIFFE ID spec writes it: a lower-case
 * trust domain, then path segments, all of letters, digits, dots, dashes and underscores.
 */
export const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._-]+)+$/;

/** True for a string shaped like a SPIFFE ID (any case): such a string is an identity only in a URI SAN. */
export function looksLikeSpiffeId(value: string): boolean {
  return /^\s*spiffe:/i.test(value);
}

/** The identity in a verified peer certificate, with the reason when there is none. */
export function peerOutcome(peer: PeerCertificate | undefined): PeerOutcome {
  if (peer?.raw === undefined) return { identity: null, problem: 'no client certificate' };
  const key = peer.fingerprint256;
  const hit = cache.get(key);
  if (hit) return hit;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(peer.raw);
  } catch (err) {
    return { identity: null, problem: `unreadable client certificate: ${(err as Error).message}` };
  }
  // The handshake refuses these already (listeners.ts); checked again here so
  // that a certificate the policy refuses never authorizes a call, whatever the transport did.
  const problem = certificateProblem(cert);
  const outcome: PeerOutcome =
    problem !== null
      ? { identity: null, problem: `the client certificate is refused: ${problem}` }
      : identityOrProblem(cert);
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(key, outcome);
  return outcome;
}

/** The identity in a verified peer certificate, or null when it carries none we accept. */
export function identityFromPeer(peer: PeerCertificate | undefined): CallerIdentity | null {
  return peerOutcome(peer).identity;
}

export function identityFromCertificate(cert: X509Certificate): CallerIdentity | null {
  return identityOrProblem(cert).identity;
}

/**
 * The rule: the identity is the certificate's one SPIFFE ID, from a URI SAN
 * (SPIFFE X.509-SVID). The Common Name is reported but never an identity: a CN
 * is free text that CAs check less than SANs, and a CN of "spiffe://…" must not
 * pass for the SPIFFE ID it spells.
 */
function identityOrProblem(cert: X509Certificate): PeerOutcome {
  const uris = parseSubjectAltName(cert.subjectAltName ?? '')
    .filter((e) => e.type === 'URI' && looksLikeSpiffeId(e.value))
    .map((e) => e.value);
  const cn = /^CN=(.*)$/m.exec(cert.subject)?.[1] ?? '';
  if (uris.length === 0) {
    return {
      identity: null,
      problem: `the client certificate carries no SPIFFE ID in a URI SAN (its CN ${JSON.stringify(cn)} is not an identity)`,
    };
  }
  // The SPIFFE X.509-SVID spec allows exactly one SPIFFE ID; two would be ambiguous.
  if (uris.length > 1) {
    return {
      identity: null,
      problem: `the client certificate carries ${uris.length} SPIFFE IDs; exactly one is allowed`,
    };
  }
  const id = uris[0] ?? '';
  if (!SPIFFE_ID.test(id)) {
    return {
      identity: null,
      problem: `the client certificate's URI SAN ${JSON.stringify(id)} is not a valid SPIFFE ID`,
    };
  }
  return {
    identity: {
      id,
      spiffeId: id,
      commonName: cn,
      serial: cert.serialNumber.toUpperCase(),
      notAfter: new Date(cert.validTo).toISOString(),
    },
    problem: null,
  };
}
