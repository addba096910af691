// EchoResponse bytes made with less work per reply. grpc-js sends a reply by
// calling the method's serializer, which proto-loader builds from protobufjs:
// a Message object made from the plain object (fromObject), then a Writer that
// queues one operation per field and runs them all into a new buffer. For a
// server that answers every call with its own id and the caller's identity,
// two of the four fields are the same for every reply of a caller, and in a
// stream three are.
//
// So those fields are encoded once, by protobufjs itself (the method's own
// serializer), and each reply is those bytes with the message (field 1) in
// front and the sequence (field 4) behind, written here. protobufjs writes the
// fields in field-number order and writes a set field even when it holds the
// default ("" or 0), and so does this: the bytes are the same as the
// serializer's (test/echo-replies.test.ts holds them to it over generated
// replies). One difference, on purpose: a string holding a lone UTF-16
// surrogate (which no valid UTF-8 request decodes to) is written with U+FFFD,
// as Buffer writes it, where protobufjs writes the surrogate's own three bytes
// (invalid UTF-8, which grpc-go and others refuse) for strings under 40 units.
//
// The serializer passes an EncodedReply's bytes through (passEncodedReplies).
import type * as grpc from '@grpc/grpc-js';
import type { EchoResponse } from '../generated/echo/v1/EchoResponse.js';

type Serialize = (value: EchoResponse) => Buffer;

/** A whole EchoResponse, already encoded. */
export class EncodedReply {
  constructor(readonly bytes: Buffer) {}
}

/** Field 1 (message), length-delimited; field 4 (sequence), varint. */
const MESSAGE_TAG = 0x0a;
const SEQUENCE_TAG = 0x20;

function varintLength(n: number): number {
  let length = 1;
  while (n >= 0x80) {
    n >>>= 7;
    length += 1;
  }
  return length;
}

function writeVarint(buf: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    buf[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[at++] = n;
  return at;
}

/** Bytes of field 4 holding `n`: its tag, then the varint. */
const sequenceLength = (n: number): number => 1 + varintLength(n);

function writeSequence(buf: Buffer, at: number, n: number): void {
  buf[at] = SEQUENCE_TAG;
  writeVarint(buf, at + 1, n);
}

/**
 * A reply of `message` (field 1, written here), `middle` (fields 2 and 3,
 * encoded by protobufjs) and `sequence` (field 4, a uint32 as protobufjs takes it).
 */
function encode(message: string, middle: Buffer, sequence: number): EncodedReply {
  const length = Buffer.byteLength(message);
  const n = sequence >>> 0;
  const start = 1 + varintLength(length);
  const at = start + length + middle.length;
  const bytes = Buffer.allocUnsafe(at + sequenceLength(n));
  bytes[0] = MESSAGE_TAG;
  writeVarint(bytes, 1, length);
  bytes.write(message, start);
  middle.copy(bytes, start + length);
  writeSequence(bytes, at, n);
  return new EncodedReply(bytes);
}

/** The replies to one caller: server_id and caller (fields 2 and 3) encoded once. */
export class ReplyEncoder {
  private readonly middle: Buffer;

  constructor(serialize: Serialize, serverId: string, caller: string) {
    this.middle = serialize({ server_id: serverId, caller });
  }

  /** A reply carrying `message` and `sequence`. */
  reply(message: string, sequence: number): EncodedReply {
    return encode(message, this.middle, sequence);
  }

  /** The replies of a stream that repeats one message: fields 1 to 3 are encoded once. */
  repeating(message: string): (sequence: number) => EncodedReply {
    const first = encode(message, this.middle, 0).bytes;
    const fixed = first.subarray(0, first.length - sequenceLength(0));
    return (sequence) => {
      const n = sequence >>> 0;
      const bytes = Buffer.allocUnsafe(fixed.length + sequenceLength(n));
      fixed.copy(bytes, 0);
      writeSequence(bytes, fixed.length, n);
      return new EncodedReply(bytes);
    };
  }
}

/** Encoders by caller, for one server id; bounded, so that hostile churn cannot grow it. */
export class ReplyEncoders {
  private readonly byCaller = new Map<string, ReplyEncoder>();

  constructor(
    private readonly serialize: Serialize,
    private readonly serverId: string,
    private readonly limit = 1024,
  ) {}

  of(caller: string): ReplyEncoder {
    let encoder = this.byCaller.get(caller);
    if (encoder === undefined) {
      if (this.byCaller.size >= this.limit) this.byCaller.clear();
      encoder = new ReplyEncoder(this.serialize, this.serverId, caller);
      this.byCaller.set(caller, encoder);
    }
    return encoder;
  }
}

/**
 * `service` with each method's response serializer passing an EncodedReply's
 * bytes through, and serializing anything else as before.
 */
export function passEncodedReplies<S extends grpc.ServiceDefinition>(service: S): S {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service)) {
    const serialize = method.responseSerialize;
    out[name] = {
      ...method,
      responseSerialize: (value: unknown) =>
        value instanceof EncodedReply ? value.bytes : serialize(value),
    };
  }
  return out as S;
}
