// Who is calling: read from the certificate the TLS layer verified, never from
// anything the caller merely says (metadata, headers).
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';

export interface CallerIdentity {
  /** What authorization matches: the SPIFFE ID when present, else the CN. */
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

/** Identities by certificate fingerprint: parsing once per certificate, not per call. */
const cache = new Map<string, CallerIdentity>();
/** Enough for every workload of a large namespace; bounded so hostile churn cannot grow it. */
const CACHE_LIMIT = 1024;

/** The identity in a verified peer certificate, or null when it carries none we accept. */
export function identityFromPeer(peer: PeerCertificate | undefined): CallerIdentity | null {
  if (peer?.raw === undefined) return null;
  const key = peer.fingerprint256;
  const hit = cache.get(key);
  if (hit) return hit;
  const identity = identityFromCertificate(new X509Certificate(peer.raw));
  if (identity === null) return null;
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(key, identity);
  return identity;
}

export function identityFromCertificate(cert: X509Certificate): CallerIdentity | null {
  const spiffe = parseSubjectAltName(cert.subjectAltName ?? '')
    .filter((e) => e.type === 'URI' && e.value.startsWith('spiffe://'))
    .map((e) => e.value);
  // The SPIFFE X.509-SVID spec allows exactly one SPIFFE ID; two would be ambiguous.
  if (spiffe.length > 1) return null;
  const cn = /^CN=(.*)$/m.exec(cert.subject)?.[1] ?? '';
  const id = spiffe[0] ?? cn;
  if (id === '') return null;
  return {
    id,
    spiffeId: spiffe[0] ?? '',
    commonName: cn,
    serial: cert.serialNumber.toUpperCase(),
    notAfter: new Date(cert.validTo).toISOString(),
  };
}
