// Callers built on node:http2 rather than grpc-js, so a test decides exactly
// what is read and written, over a real mTLS connection: a hostile caller that
// sends as fast as the server lets it and never reads a reply, and one that
// sends a deadline and never cancels.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

function varint(n: number): number[] {
  const out: number[] = [];
  for (; n >= 0x80; n >>>= 7) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return out;
}

/** A gRPC length-prefixed message around protobuf bytes. */
export function grpcFrame(proto: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(proto.length, 1);
  return Buffer.concat([prefix, proto]);
}

/** One gRPC message holding an EchoRequest whose `message` (field 1) is `text`. */
export function grpcMessage(text: string | Buffer): Buffer {
  const body = Buffer.isBuffer(text) ? text : Buffer.from(text);
  return grpcFrame(Buffer.concat([Buffer.from([0x0a, ...varint(body.length)]), body]));
}

/** One gRPC message holding a ServerStreamRequest (message 1, count 2, interval_ms 3). */
export function serverStreamRequest(text: string, count: number, intervalMs = 0): Buffer {
  const body = Buffer.from(text);
  return grpcFrame(
    Buffer.from([
      0x0a,
      ...varint(body.length),
      ...body,
      0x10,
      ...varint(count),
      0x18,
      ...varint(intervalMs),
    ]),
  );
}

/** An mTLS HTTP/2 session to our server as `who` (a PKI folder's client or probe). */
export function mtlsSession(pki: string, port: number, who = 'client'): ClientHttp2Session {
  const session = connect(`https://127.0.0.1:${port}`, {
    servername: 'localhost',
    ca: readFileSync(join(pki, 'ca.crt')),
    cert: readFileSync(join(pki, `${who}.crt`)),
    key: readFileSync(join(pki, `${who}.key`)),
  });
  session.on('error', () => {});
  return session;
}

/**
 * Opens an EchoService call, with any `headers` added (a grpc-timeout), whose
 * replies are not read unless the caller adds a 'data' listener.
 */
export function openCall(
  session: ClientHttp2Session,
  method: string,
  headers: Record<string, string> = {},
): ClientHttp2Stream {
  const req = session.request({
    ':method': 'POST',
    ':path': `/echo.v1.EchoService/${method}`,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...headers,
  });
  req.on('error', () => {});
  // No 'data' listener: the stream stays paused, so Node stops granting the server window.
  return req;
}

/**
 * A ServerStream call with a deadline (`timeout` in grpc-timeout's form, "300m")
 * that is never cancelled, so that the server's own deadline timer ends it; the
 * trailers it ends with. A grpc-js client cancels at its own deadline, and on a
 * loaded machine that RST_STREAM can reach the server before the server's
 * deadline, which it counts from when it read the headers: the call is then
 * CANCELLED, not DEADLINE_EXCEEDED.
 */
export async function callPastDeadline(
  pki: string,
  port: number,
  request: Buffer,
  timeout: string,
): Promise<Record<string, string>> {
  const session = mtlsSession(pki, port);
  try {
    const req = openCall(session, 'ServerStream', { 'grpc-timeout': timeout });
    req.on('data', () => {});
    req.end(request);
    const [trailers] = (await once(req, 'trailers')) as [Record<string, string>];
    return trailers;
  } finally {
    session.destroy();
  }
}

/**
 * Writes `message` on `req` as fast as the server's flow control allows until
 * `untilMs` (an absolute Date.now() time) or the stream ends; resolves with the bytes written.
 */
export async function flood(
  req: ClientHttp2Stream,
  message: Buffer,
  untilMs: number,
): Promise<number> {
  let written = 0;
  while (Date.now() < untilMs && !req.destroyed && !req.closed) {
    written += message.length;
    if (!req.write(message)) {
      const drained = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => done(false), Math.max(0, untilMs - Date.now()));
        const done = (ok: boolean) => {
          clearTimeout(timer);
          req.off('drain', onDrain);
          req.off('close', onClose);
          resolve(ok);
        };
        const onDrain = () => done(true);
        const onClose = () => done(false);
        req.once('drain', onDrain);
        req.once('close', onClose);
      });
      if (!drained) break;
    }
  }
  return written;
}

/** A process's resident memory in MiB, read from outside it. */
export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
  if (!Number.isFinite(kb)) throw new Error(`no VmRSS for process ${pid}`);
  return kb / 1024;
}
