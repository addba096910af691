// Back-pressure for the streaming handlers. grpc-js hands every reply written
// to a call to an unbounded Writable buffer, and reads requests ahead into a
// Readable buffer of 16 messages: a caller that never reads its replies, or
// one that sends without end, could make the server hold any amount of memory.
// A ReplyWindow counts the reply bytes still waiting in grpc-js and says when
// to stop producing; the handler then stops reading requests too, and HTTP/2
// flow control pushes back to the caller.

/** Reply bytes a call may have waiting before it stops producing (four default HTTP/2 frames). */
export const REPLY_WINDOW_BYTES = 64 * 1024;

/** What a ReplyWindow needs from a grpc-js writable call. */
export interface WritableCall<T> {
  write(reply: T, done: () => void): boolean;
  readonly writableNeedDrain: boolean;
  on(event: 'drain', listener: () => void): unknown;
}

export class ReplyWindow<T> {
  private pending = 0;
  private waiter: (() => void) | null = null;

  constructor(
    private readonly call: WritableCall<T>,
    private readonly limit = REPLY_WINDOW_BYTES,
  ) {
    call.on('drain', () => this.check());
  }

  /** True while the caller should wait for `whenRoom` before producing more. */
  get full(): boolean {
    return this.pending > this.limit || this.call.writableNeedDrain;
  }

  /** Writes a reply of about `bytes`; returns false when the window is now full. */
  write(reply: T, bytes: number): boolean {
    this.pending += bytes;
    this.call.write(reply, () => {
      this.pending -= bytes;
      this.check();
    });
    return !this.full;
  }

  /** Calls `resume` once, as soon as the window has room (at once if it has). */
  whenRoom(resume: () => void): void {
    this.waiter = resume;
    this.check();
  }

  private check(): void {
    if (this.waiter === null || this.full) return;
    const resume = this.waiter;
    this.waiter = null;
    resume();
  }
}

/**
 * grpc-js's request stream is a Readable in object mode, which reads ahead up
 * to 16 messages (Node's default) even while paused: up to 16 maximum-size
 * messages per call. One is enough for handlers that take one message at a
 * time. `_readableState` is Node's, present since Node 0.10; if it ever goes,
 * the call keeps Node's default and the memory tests notice.
 */
export function readOneAhead(call: object): void {
  const state = (call as { _readableState?: { highWaterMark?: unknown } })._readableState;
  if (state && typeof state.highWaterMark === 'number') state.highWaterMark = 1;
}
