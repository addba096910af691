// The replies the server encodes itself are the bytes protobufjs would make
// (src/server/echo-replies.ts), and grpc-js sends them as they are.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EncodedReply,
  ReplyEncoder,
  ReplyEncoders,
  passEncodedReplies,
} from '../src/server/echo-replies.js';
import { loadEchoProto } from '../src/shared/proto.js';

const SERVICE = loadEchoProto().echo.v1.EchoService.service;
const ECHO = passEncodedReplies(SERVICE);
/** protobufjs's own serializer, as proto-loader made it. */
const serialize = SERVICE.Echo.responseSerialize;

/**
 * Strings of whole code points (no lone surrogates): short ones, past the 40
 * units where protobufjs switches UTF-8 writers, and ones whose UTF-8 length
 * sits at a varint boundary (127, 128, 16,383 and 16,384 bytes).
 */
const text = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 60 }),
  fc.constantFrom(127, 128, 16_383, 16_384).map((n) => 'x'.repeat(n)),
  fc.constantFrom(63, 64, 8_191, 8_192).map((n) => 'é'.repeat(n)),
);
/** Every varint length of a uint32, and the edges between them. */
const sequence = fc.oneof(
  fc.constantFrom(0, 1, 127, 128, 16_383, 16_384, 2 ** 21 - 1, 2 ** 21, 2 ** 28, 2 ** 32 - 1),
  fc.nat({ max: 2 ** 32 - 1 }),
);

describe('encoded echo replies', () => {
  it('are byte for byte what protobufjs makes of the same reply', () => {
    fc.assert(
      fc.property(text, text, text, sequence, (message, serverId, caller, seq) => {
        const expected = serialize({ message, server_id: serverId, caller, sequence: seq });
        const encoder = new ReplyEncoder(serialize, serverId, caller);
        expect(encoder.reply(message, seq).bytes.equals(expected)).toBe(true);
        expect(encoder.repeating(message)(seq).bytes.equals(expected)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('decode to the reply they stand for, long messages included', () => {
    const message = 'ü'.repeat(70_000); // a length of three varint bytes
    const reply = new ReplyEncoder(serialize, 'pod-1', 'spiffe://d/x').reply(message, 300);
    expect(SERVICE.Echo.responseDeserialize(reply.bytes)).toEqual({
      message,
      server_id: 'pod-1',
      caller: 'spiffe://d/x',
      sequence: 300,
    });
  });

  it('go through the service serializer as they are, and anything else is serialized as before', () => {
    const reply = new ReplyEncoder(serialize, 's', 'c').reply('m', 1);
    expect(ECHO.Echo.responseSerialize(reply as never)).toBe(reply.bytes);
    expect(ECHO.ServerStream.responseSerialize(reply as never)).toBe(reply.bytes);
    const plain = { message: 'm', server_id: 's', caller: 'c', sequence: 1 };
    expect(ECHO.Echo.responseSerialize(plain).equals(serialize(plain))).toBe(true);
    expect(ECHO.Echo.path).toBe(SERVICE.Echo.path);
    expect(reply).toBeInstanceOf(EncodedReply);
  });

  it('keep one encoder per caller, and forget them all past the limit', () => {
    const encoders = new ReplyEncoders(serialize, 's', 2);
    const a = encoders.of('a');
    expect(encoders.of('a')).toBe(a);
    encoders.of('b');
    encoders.of('c'); // the limit: every encoder is dropped, then c's is made
    expect(encoders.of('a')).not.toBe(a);
    expect(SERVICE.Echo.responseDeserialize(encoders.of('a').reply('x', 0).bytes).caller).toBe('a');
  });
});
