// A connection's peer certificate, as TLSSocket.getPeerCertificate() gives it,
// made cheaply for what the server itself reads of it.
//
// Node's getPeerCertificate() builds the whole object in C++ every time: the
// names, the key, three fingerprints, the extended key usages. On this
// project's benchmark machine that is about 20 µs, on every new connection
// (listeners.ts reads each client certificate at the end of its handshake, and
// grpc-js's getAuthContext() hands the same object to the authorizer and the
// handlers). The server reads only `raw` and `fingerprint256` (identity.ts,
// listeners.ts), which getPeerX509Certificate() gives for about 4 µs.
//
// So a LazyPeerCertificate holds those two, and any other field builds Node's
// object the first time it is read, once per connection, from the certificate
// itself (X509Certificate.toLegacyObject(), the same object on Node 20 and 24
// for RSA, EC and Ed25519 keys), so it works after the connection has closed
// and does not keep the socket. Every field reads as Node's does, and
// JSON.stringify gives Node's object; Object.keys(), a spread, `in` on an
// absent field and util.inspect see the class, not Node's plain object.
import type { X509Certificate } from 'node:crypto';
import type { PeerCertificate, TLSSocket } from 'node:tls';

/** The fields of Node's PeerCertificate other than raw and fingerprint256 (Node 20 and 24). */
const OTHER_FIELDS = [
  'ca',
  'subject',
  'issuer',
  'subjectaltname',
  'infoAccess',
  'bits',
  'modulus',
  'exponent',
  'pubkey',
  'asn1Curve',
  'nistCurve',
  'valid_from',
  'valid_to',
  'fingerprint',
  'fingerprint512',
  'ext_key_usage',
  'serialNumber',
] as const;

class LazyPeerCertificate {
  readonly raw: Buffer;
  readonly fingerprint256: string;
  #x509: X509Certificate | null;
  #full: PeerCertificate | undefined;

  constructor(x509: X509Certificate) {
    this.raw = x509.raw;
    this.fingerprint256 = x509.fingerprint256;
    this.#x509 = x509;
  }

  /** Node's whole object, built on first use. */
  full(): PeerCertificate {
    if (this.#full === undefined) {
      this.#full = (this.#x509 as X509Certificate).toLegacyObject();
      this.#x509 = null;
    }
    return this.#full;
  }

  toJSON(): PeerCertificate {
    return this.full();
  }
}

for (const field of OTHER_FIELDS) {
  Object.defineProperty(LazyPeerCertificate.prototype, field, {
    get(this: LazyPeerCertificate): unknown {
      return (this.full() as unknown as Record<string, unknown>)[field];
    },
    enumerable: true,
  });
}

/**
 * The peer certificate of `socket` as getPeerCertificate() (not detailed) gives
 * it; `read` is Node's own getPeerCertificate, bound to the socket, for a peer
 * that sent none (Node's answer, an empty object, as it is).
 */
export function peerCertificate(
  socket: TLSSocket,
  read: (detailed?: boolean) => PeerCertificate,
): PeerCertificate {
  const x509 = socket.getPeerX509Certificate();
  if (x509 === undefined) return read(false);
  return new LazyPeerCertificate(x509) as unknown as PeerCertificate;
}
