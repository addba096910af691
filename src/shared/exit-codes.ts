// Exit codes of every command in this kit, one table shared by the server, the
// client and gen-certs, and copied into the README. Each cause has its own code
// so that scripts and people can tell a typo from an expired certificate.

/** Success. */
export const OK = 0;
/** An unexpected internal error; the message carries the cause. */
export const UNEXPECTED = 1;
/** A setting or flag is invalid (the message names it and the fix). */
export const USAGE = 2;
/** An input file is missing or unreadable. */
export const FILE_UNREADABLE = 3;
/** TLS material is unusable: key/cert mismatch, expired, not yet valid, wrong CA, wrong usage. */
export const TLS_INVALID = 4;
/** The server could not bind its address or socket. */
export const BIND_FAILED = 5;
/** gen-certs: the existing CA key is unreadable or does not match ca.crt. */
export const CA_KEY_INVALID = 6;
/** gen-certs: the output folder cannot be written. */
export const OUTPUT_UNWRITABLE = 7;
/** gen-certs --status: a certificate has expired or expires within the warning window. */
export const CERT_EXPIRING = 8;

// Client: one code per cause a person would fix differently.
/** The target's name does not resolve. */
export const NAME_NOT_RESOLVED = 10;
/** Nothing accepts connections at the target (refused or unreachable). */
export const CONNECTION_REFUSED = 11;
/** The server certificate does not cover the name dialled. */
export const SERVER_NAME_MISMATCH = 12;
/** The server certificate is not signed by the trusted CA. */
export const SERVER_UNTRUSTED = 13;
/** The server refused our client certificate. */
export const CLIENT_CERT_REFUSED = 14;
/** The server authenticated us but denied the method. */
export const PERMISSION_DENIED = 15;
/** The call's deadline passed. */
export const DEADLINE_EXCEEDED = 16;
/** Any other RPC failure; the gRPC status is printed. */
export const RPC_FAILED = 17;
/** `health`: the service is not SERVING. */
export const NOT_SERVING = 18;
/** The server certificate is on the CRL of TLS_CRL_FILE: the server needs a new one. */
export const SERVER_CERT_REVOKED = 19;

// The server, on a second SIGINT or SIGTERM during shutdown, exits with 128 +
// the signal's number (130, 143), as a shell reports a death by that signal.
