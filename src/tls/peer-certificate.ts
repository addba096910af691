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
// object the first time it is read, once per connection. Every field reads as
// Node's does, and JSON.stringify gives Node's object; the one difference is
// that Object.keys() and a spread see only `raw` and `fingerprint256`.
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

type Read = () => PeerCertificate;

class LazyPeerCertificate {
  #read: Read | null;
  #full: PeerCertificate | undefined;

  constructor(
    readonly raw: Buffer,
    readonly fingerprint256: string,
    read: Read,
  ) {
    this.#read = read;
  }

  /** Node's whole object, built on first use. */
  full(): PeerCertificate {
    if (this.#full === undefined) {
      this.#full = (this.#read as Read)();
      this.#read = null;
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
 * it; `read` is Node's own getPeerCertificate, bound to the socket. Without a
 * peer certificate, Node's answer (an empty object) as it is.
 */
export function peerCertificate(
  socket: TLSSocket,
  read: (detailed?: boolean) => PeerCertificate,
): PeerCertificate {
  const x509 = socket.getPeerX509Certificate();
  if (x509 === undefined) return read(false);
  const lazy = new LazyPeerCertificate(x509.raw, x509.fingerprint256, () => read(false));
  return lazy as unknown as PeerCertificate;
}
