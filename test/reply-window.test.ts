// Back-pressure in the streaming handlers, against stand-ins for grpc-js's calls.
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { echoHandlers } from '../src/server/echo-service.js';
import { loadEchoProto } from '../src/shared/proto.js';
import { REPLY_WINDOW_BYTES, ReplyWindow, readOneAhead } from '../src/server/reply-window.js';

/** A stand-in for grpc-js's duplex call: replies wait until flushed; requests are pushed in. */
class FakeChatCall extends EventEmitter {
  paused = false;
  ended = false;
  readonly replies: string[] = [];
  private done: (() => void)[] = [];
  readonly _readableState = { highWaterMark: 16 };
  getAuthContext() {
    return {};
  }
  get writableNeedDrain(): boolean {
    return this.done.length >= 16;
  }
  write(reply: { message: string }, done: () => void): boolean {
    this.replies.push(reply.message);
    this.done.push(done);
    return !this.writableNeedDrain;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  end(): void {
    this.ended = true;
  }
  /** The peer reads every reply waiting. */
  flush(): void {
    const done = this.done;
    this.done = [];
    for (const d of done) d();
  }
}
const chat = (call: FakeChatCall) =>
  (
    echoHandlers('s', loadEchoProto().echo.v1.EchoService.service.Echo.responseSerialize)
      .Chat as unknown as (c: FakeChatCall) => void
  )(call);

describe('Chat back-pressure', () => {
  it('stops reading requests once its replies fill the window, and reads on when they are sent', () => {
    const call = new FakeChatCall();
    chat(call);
    const big = 'x'.repeat(REPLY_WINDOW_BYTES / 4);
    for (let i = 0; i < 4; i++) call.emit('data', { message: big });
    expect(call.paused).toBe(false);
    call.emit('data', { message: big });
    expect(call.paused).toBe(true);
    call.flush();
    expect(call.paused).toBe(false);
    expect(call.replies).toHaveLength(5);
  });

  it('stops reading requests when grpc-js asks it to wait for drain, even for small replies', () => {
    const call = new FakeChatCall();
    chat(call);
    for (let i = 0; i < 16; i++) call.emit('data', { message: 'm' });
    expect(call.paused).toBe(true);
    call.flush();
    call.emit('drain');
    expect(call.paused).toBe(false);
  });

  it('reads one request ahead, not 16', () => {
    const call = new FakeChatCall();
    chat(call);
    expect(call._readableState.highWaterMark).toBe(1);
  });
});

describe('ReplyWindow', () => {
  it('calls the waiter once, when the bytes in flight fall back under the limit', () => {
    const call = new FakeChatCall();
    const window = new ReplyWindow(call, 10);
    expect(window.write({ message: 'a' }, 8)).toBe(true);
    expect(window.write({ message: 'b' }, 8)).toBe(false);
    let resumed = 0;
    window.whenRoom(() => resumed++);
    expect(resumed).toBe(0);
    call.flush();
    call.flush();
    expect(resumed).toBe(1);
  });
});

describe('readOneAhead', () => {
  it("lowers a real Node object-mode Readable's read-ahead to one message", () => {
    let reads = 0;
    const r = new Readable({
      objectMode: true,
      read() {
        reads++;
        this.push({ n: reads });
      },
    });
    readOneAhead(r);
    expect(r.readableHighWaterMark).toBe(1);
    r.pause();
    r.read(0);
    // Paused, it buffers one message, not Node's default 16.
    expect(r.readableLength).toBe(1);
  });
});
