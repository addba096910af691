// Raw HTTP/2 over an authenticated TLS connection, for attacks below gRPC:
// a frame encoder (RFC 9113 section 4), the few HPACK representations the
// attacks need (RFC 7541; literals without Huffman coding), and a reader
// that records what the server answers: GOAWAY and RST_STREAM codes, which
// streams got HEADERS or DATA, and when the connection closed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';

export const TYPE = {
  DATA: 0x0,
  HEADERS: 0x1,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
/** Error codes (RFC 9113 section 7). */
export const CODE = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;
export const SETTING = { HEADER_TABLE_SIZE: 0x1, INITIAL_WINDOW_SIZE: 0x4 } as const;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

export function settingsFrame(entries: [number, number][] = []): Buffer {
  const payload = Buffer.alloc(6 * entries.length);
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, 6 * i);
    payload.writeUInt32BE(value >>> 0, 6 * i + 2);
  });
  return frame(TYPE.SETTINGS, 0, 0, payload);
}

export const pingFrame = (n: number) => {
  const data = Buffer.alloc(8);
  data.writeUInt32BE(n >>> 0, 4);
  return frame(TYPE.PING, 0, 0, data);
};

export const rstFrame = (stream: number, code: number) => {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code, 0);
  return frame(TYPE.RST_STREAM, 0, stream, p);
};

/** An HPACK integer with an N-bit prefix (RFC 7541 section 5.1); `high` holds the pattern bits. */
export function hpackInt(value: number, prefixBits: number, high: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([high | value]);
  const out = [high | max];
  for (let rest = value - max; ; rest = Math.floor(rest / 128)) {
    if (rest < 128) {
      out.push(rest);
      break;
    }
    out.push((rest % 128) | 0x80);
  }
  return Buffer.from(out);
}

const hpackString = (s: string) =>
  Buffer.concat([hpackInt(Buffer.byteLength(s), 7, 0x00), Buffer.from(s)]);

/** A header field, literal without indexing, new name (section 6.2.2). */
export const literal = (name: string, value: string) =>
  Buffer.concat([Buffer.from([0x00]), hpackString(name), hpackString(value)]);
/** A header field, literal with incremental indexing: it enters the dynamic table (6.2.1). */
export const literalIndexed = (name: string, value: string) =>
  Buffer.concat([Buffer.from([0x40]), hpackString(name), hpackString(value)]);
/** A reference to table entry `index` (6.1); 62 is the newest dynamic entry. */
export const indexed = (index: number) => hpackInt(index, 7, 0x80);
/** A dynamic table size update (6.3). */
export const tableSizeUpdate = (size: number) => hpackInt(size, 5, 0x20);

/** The header block of a gRPC request to `method` of EchoService. */
export function grpcRequestBlock(method: string, extra: Buffer[] = []): Buffer {
  return Buffer.concat([
    literal(':method', 'POST'),
    literal(':scheme', 'https'),
    literal(':path', `/echo.v1.EchoService/${method}`),
    literal(':authority', 'localhost'),
    literal('content-type', 'application/grpc'),
    literal('te', 'trailers'),
    ...extra,
  ]);
}

export const headersFrame = (stream: number, block: Buffer, flags: number = FLAG.END_HEADERS) =>
  frame(TYPE.HEADERS, flags, stream, block);

/** What the server sent on one raw connection. */
export class RawH2 {
  readonly counts = new Map<number, number>();
  readonly rstCodes = new Map<number, number>();
  readonly headersOn = new Set<number>();
  readonly dataBytes = new Map<number, number>();
  goaway: { lastStream: number; code: number } | null = null;
  readonly closed: Promise<void>;
  private buffered: Buffer = Buffer.alloc(0);
  /**
   * Flow control as a correct peer keeps it (RFC 9113 section 6.9): DATA is
   * sent only within the server's windows, so frames queue here in order
   * until the server's WINDOW_UPDATE frames make room.
   */
  private queue: Buffer[] = [];
  private connectionWindow = 65_535;
  private initialStreamWindow = 65_535;
  private readonly streamWindows = new Map<number, number>();
  private waiters: { check: () => boolean; resolve: () => void }[] = [];

  constructor(readonly socket: TLSSocket) {
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => this.receive(d));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    void this.closed.then(() => this.notify());
  }

  get isClosed(): boolean {
    return this.socket.destroyed;
  }

  /**
   * Sends `frames` in order; a DATA frame (and all after it) waits until the
   * server's stream and connection windows hold it, and is split to fit them.
   */
  send(...frames: Buffer[]): void {
    this.queue.push(...frames);
    this.flush();
  }

  private flush(): void {
    const out: Buffer[] = [];
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      if (next[3] !== TYPE.DATA || next.length === 9) {
        out.push(this.queue.shift()!);
        continue;
      }
      const stream = next.readUInt32BE(5) & 0x7fffffff;
      const length = next.length - 9;
      const room = Math.min(
        this.connectionWindow,
        this.streamWindows.get(stream) ?? this.initialStreamWindow,
      );
      if (room <= 0) break;
      const take = Math.min(room, length);
      this.connectionWindow -= take;
      this.streamWindows.set(
        stream,
        (this.streamWindows.get(stream) ?? this.initialStreamWindow) - take,
      );
      if (take === length) {
        out.push(this.queue.shift()!);
        continue;
      }
      // The part that fits now, without END_STREAM; the rest stays first in line.
      out.push(frame(TYPE.DATA, 0, stream, next.subarray(9, 9 + take)));
      this.queue[0] = frame(TYPE.DATA, next[4]!, stream, next.subarray(9 + take));
    }
    if (out.length > 0 && !this.socket.destroyed) this.socket.write(Buffer.concat(out));
  }

  /** Resolves once `check` holds (checked on every frame and at close), or rejects after `ms`. */
  until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      this.waiters.push({
        check,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private notify(): void {
    this.waiters = this.waiters.filter((w) => (w.check() ? (w.resolve(), false) : true));
  }

  private receive(data: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, data]);
    while (this.buffered.length >= 9) {
      const length = this.buffered.readUIntBE(0, 3);
      if (this.buffered.length < 9 + length) break;
      const type = this.buffered[3]!;
      const flags = this.buffered[4]!;
      const stream = this.buffered.readUInt32BE(5) & 0x7fffffff;
      const payload = this.buffered.subarray(9, 9 + length);
      this.buffered = this.buffered.subarray(9 + length);
      this.counts.set(type, (this.counts.get(type) ?? 0) + 1);
      if (type === TYPE.SETTINGS && !(flags & FLAG.ACK)) {
        for (let at = 0; at + 6 <= payload.length; at += 6) {
          if (payload.readUInt16BE(at) !== SETTING.INITIAL_WINDOW_SIZE) continue;
          // A new initial window moves every open stream's window by the difference (6.9.2).
          const delta = payload.readUInt32BE(at + 2) - this.initialStreamWindow;
          this.initialStreamWindow += delta;
          for (const [id, w] of this.streamWindows) this.streamWindows.set(id, w + delta);
        }
        // The acknowledgement goes at once, ahead of any DATA still waiting.
        this.socket.write(frame(TYPE.SETTINGS, FLAG.ACK, 0));
      }
      if (type === TYPE.WINDOW_UPDATE) {
        const increment = payload.readUInt32BE(0) & 0x7fffffff;
        if (stream === 0) this.connectionWindow += increment;
        else
          this.streamWindows.set(
            stream,
            (this.streamWindows.get(stream) ?? this.initialStreamWindow) + increment,
          );
      }
      if (type === TYPE.GOAWAY)
        this.goaway = {
          lastStream: payload.readUInt32BE(0) & 0x7fffffff,
          code: payload.readUInt32BE(4),
        };
      if (type === TYPE.RST_STREAM) this.rstCodes.set(stream, payload.readUInt32BE(0));
      if (type === TYPE.HEADERS) this.headersOn.add(stream);
      if (type === TYPE.DATA)
        this.dataBytes.set(stream, (this.dataBytes.get(stream) ?? 0) + length);
    }
    this.flush();
    this.notify();
  }
}

/**
 * Opens TLS with the client certificate of `who` and ALPN h2, sends the
 * connection preface with `settings`, and resolves once the server's SETTINGS
 * arrived (so the server took the connection as HTTP/2).
 */
export async function rawH2(
  pki: string,
  port: number,
  settings: [number, number][] = [],
  who = 'client',
): Promise<RawH2> {
  const socket = connect({
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    ca: readFileSync(join(pki, 'ca.crt')),
    cert: readFileSync(join(pki, `${who}.crt`)),
    key: readFileSync(join(pki, `${who}.key`)),
    ALPNProtocols: ['h2'],
  });
  const conn = new RawH2(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  if (socket.alpnProtocol !== 'h2') throw new Error(`ALPN gave ${String(socket.alpnProtocol)}`);
  conn.send(PREFACE, settingsFrame(settings));
  await conn.until(() => (conn.counts.get(TYPE.SETTINGS) ?? 0) > 0, 'the server SETTINGS');
  return conn;
}

/** `bytes` as DATA frames of at most 16 KiB (the default SETTINGS_MAX_FRAME_SIZE). */
export function dataFrames(stream: number, bytes: Buffer, endStream = false): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length || out.length === 0; at += 16_384) {
    const last = at + 16_384 >= bytes.length;
    out.push(
      frame(
        TYPE.DATA,
        last && endStream ? FLAG.END_STREAM : 0,
        stream,
        bytes.subarray(at, at + 16_384),
      ),
    );
  }
  return out;
}

/** A header block of any size: HEADERS, then CONTINUATION frames, 16 KiB each at most. */
export function headerFrames(stream: number, block: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < block.length || out.length === 0; at += 16_384) {
    const last = at + 16_384 >= block.length;
    const type = out.length === 0 ? TYPE.HEADERS : TYPE.CONTINUATION;
    out.push(frame(type, last ? FLAG.END_HEADERS : 0, stream, block.subarray(at, at + 16_384)));
  }
  return out;
}
