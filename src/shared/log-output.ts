// Where the server's log lines go: standard output, written synchronously so
// that nothing is lost when the process exits. Access lines (one per RPC) are
// the exception: they are gathered, as bytes, and written together, because one
// write system call per RPC was the largest single cost the benchmark found,
// and building each line as a string to join and encode again cost the next
// most (docs/performance.md).
//
// Order is kept: any other line first writes out the gathered access lines.
// Gathered lines wait at most `flushMs`, or until `maxPendingBytes` have built
// up and the current turn of the event loop has ended (so the write never sits
// between an RPC and its response), and are written when the process exits
// through Node (process.exit, the end of the event loop, an uncaught error).
// A death that skips Node's exit handlers (SIGKILL, V8 running out of memory)
// loses at most `flushMs` worth of access lines.
import { pino } from 'pino';

export interface LogSink {
  write(line: string): void;
  /** Writes what is pending, synchronously; pino's `logger.flush(cb)` calls this. */
  flush(cb?: (err?: Error) => void): void;
}

/**
 * The gathered lines: each either one string (`write`) or, for the access
 * line, built from byte parts around a number in one call (`line`), so that a
 * line checks for room once.
 */
export interface LineBatch extends LogSink {
  /**
   * One line: `a`, `b` and `c` (UTF-8, copied as they are), then `n / 1000` as
   * String() writes it (`null` for NaN and ±Infinity, which JSON has not),
   * then `end`, which ends the line.
   */
  line(a: Uint8Array, b: Uint8Array, c: Uint8Array, n: number, end: Uint8Array): void;
}

export interface LogOutputOptions {
  /** How long an access line may wait before it is written. */
  flushMs: number;
  /** Written at the end of the event loop's turn when this much is pending. */
  maxPendingBytes: number;
}

/**
 * 16 KiB a write. Larger writes cost the kernel less per byte on a file, but
 * standard output is often a pipe, which holds 64 KiB: a write larger than
 * what is free there, on a non-blocking pipe, ends in EAGAIN, on which
 * sonic-boom sleeps 100 ms (it is synchronous), stalling the event loop.
 */
export const DEFAULT_LOG_OUTPUT: LogOutputOptions = { flushMs: 200, maxPendingBytes: 16_384 };

/** Output a failing file descriptor may hold back before lines are dropped, so memory stays bounded. */
const MAX_HELD_BYTES = 8 * 1024 * 1024;
/** The gathering buffer's first size; it grows when a turn of the event loop writes more. */
const INITIAL_BYTES = 32 * 1024;
/** Larger than this, the gathering buffer is dropped after a flush rather than kept. */
const MAX_KEPT_BYTES = 256 * 1024;

type Target = number | { write(chunk: string): unknown };
/** Writes a chunk; false while it still holds on to the chunk's memory, which must not change. */
type Writer = (chunk: Buffer) => boolean;

export class LogOutput {
  /** For lines that must appear now: start-up, warnings, errors, shutdown. */
  readonly immediate: LogSink;
  /** For access lines: gathered, written in batches. */
  readonly batched: LineBatch;
  private buffer = Buffer.allocUnsafeSlow(INITIAL_BYTES);
  private used = 0;
  private timer: NodeJS.Timeout | null = null;
  private soon: NodeJS.Immediate | null = null;
  private readonly flushNow = () => this.flush();
  private readonly writeOut: Writer;

  /**
   * @param target  a file descriptor (1 for stdout), or anything with `write(string)`,
   *                which tests use to see exactly what is written and when.
   */
  constructor(
    target: Target,
    private readonly options: LogOutputOptions = DEFAULT_LOG_OUTPUT,
  ) {
    this.writeOut = writerFor(target);
    this.immediate = {
      write: (line) => {
        this.flush();
        this.writeOut(Buffer.from(line));
      },
      flush: (cb) => this.flushThen(cb),
    };
    this.batched = {
      write: (line) => {
        this.room(Buffer.byteLength(line));
        this.used += this.buffer.write(line, this.used, 'utf8');
        this.endLine();
      },
      line: (a, b, c, n, end) => {
        // Under 10^15, n / 1000 with three decimals is its own shortest round
        // trip, which writeThousandths writes; anything else as String() does
        // (ASCII: a digit, '.', '-', 'e', '+'), or null.
        const digits = Number.isInteger(n) && n >= 0 && n < DIGITS_BELOW;
        const text = digits ? '' : Number.isFinite(n) ? String(n / 1000) : 'null';
        this.room(a.length + b.length + c.length + THOUSANDTHS_BYTES + text.length + end.length);
        const buffer = this.buffer;
        let at = this.used;
        buffer.set(a, at);
        at += a.length;
        buffer.set(b, at);
        at += b.length;
        buffer.set(c, at);
        at += c.length;
        if (digits) at = writeThousandths(buffer, at, n);
        else for (let i = 0; i < text.length; i++) buffer[at++] = text.charCodeAt(i);
        buffer.set(end, at);
        this.used = at + end.length;
        this.endLine();
      },
      flush: (cb) => this.flushThen(cb),
    };
    process.on('exit', this.flushNow);
  }

  /** Makes room for `n` more bytes, keeping what is gathered. */
  private room(n: number): void {
    if (this.used + n <= this.buffer.length) return;
    const bigger = Buffer.allocUnsafeSlow(Math.max(2 * this.buffer.length, this.used + n));
    this.buffer.copy(bigger, 0, 0, this.used);
    this.buffer = bigger;
  }

  private endLine(): void {
    if (this.used >= this.options.maxPendingBytes) this.soon ??= setImmediate(this.flushNow);
    else this.timer ??= setTimeout(this.flushNow, this.options.flushMs).unref();
  }

  private flushThen(cb?: (err?: Error) => void): void {
    this.flush();
    cb?.();
  }

  flush(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.soon !== null) {
      clearImmediate(this.soon);
      this.soon = null;
    }
    if (this.used === 0) return;
    // Written from the gathering buffer itself, with no copy. Gathering goes
    // on in it only if the writer is done with it: one that holds the bytes
    // back (a failing descriptor) keeps this buffer, and gathering moves to a
    // new one. A burst may have grown the buffer: it goes back to its first size.
    const released = this.writeOut(this.buffer.subarray(0, this.used));
    this.used = 0;
    if (!released || this.buffer.length > MAX_KEPT_BYTES)
      this.buffer = Buffer.allocUnsafeSlow(INITIAL_BYTES);
  }

  /** Writes what is pending and stops listening for exit (for tests and short-lived loggers). */
  close(): void {
    this.flush();
    process.off('exit', this.flushNow);
  }
}

/** `thousandths` writes digit by digit below this; so at most 12 digits, '.', 3 decimals. */
const DIGITS_BELOW = 1e15;
const THOUSANDTHS_BYTES = 16;

/**
 * Writes `n / 1000` at `at` and returns where it ends: the whole part, then a
 * '.' and up to three decimals without trailing zeros (none when there are no
 * decimals), which is String()'s shortest text for such a number.
 */
function writeThousandths(buffer: Buffer, at: number, n: number): number {
  let whole = Math.floor(n / 1000);
  let decimals = n - whole * 1000;
  let digits = 1;
  for (let p = 10; p <= whole; p *= 10) digits += 1;
  let end = at + digits;
  for (let i = end - 1; i >= at; i--) {
    buffer[i] = 48 + (whole % 10); // '0' + the digit
    whole = Math.floor(whole / 10);
  }
  if (decimals === 0) return end;
  let places = 3;
  while (decimals % 10 === 0) {
    decimals /= 10;
    places -= 1;
  }
  buffer[end] = 46; // '.'
  end += places;
  for (let i = end; i > end - places; i--) {
    buffer[i] = 48 + (decimals % 10);
    decimals = Math.floor(decimals / 10);
  }
  return end + 1;
}

function writerFor(target: Target): Writer {
  if (typeof target !== 'number')
    return (chunk) => {
      target.write(chunk.toString('utf8'));
      return true;
    };
  // sonic-boom, pino's writer: synchronous (so exit loses nothing), copes with
  // partial writes and EAGAIN on a full pipe, holds output back while writes
  // fail (up to maxLength, then drops it); pino's wrapper goes quiet on EPIPE.
  // In buffer mode it writes the bytes it is given, with no string in between.
  const fd = pino.destination({
    dest: target,
    sync: true,
    maxLength: MAX_HELD_BYTES,
    contentMode: 'buffer',
  });
  // Any other write error (ENOSPC, EIO) would otherwise be thrown from a
  // timer and end the process: say it once on stderr and keep serving.
  let reported = false;
  fd.on('error', (err: NodeJS.ErrnoException) => {
    if (reported) return;
    reported = true;
    process.stderr.write(
      `log output: cannot write to file descriptor ${target} (${err.code ?? err.message}); log lines are held back, then dropped, until writing works again\n`,
    );
  });
  // What sonic-boom holds: handed to it, not yet written, not dropped. It
  // writes a chunk at once or, while writes fail, keeps it as it was given.
  // The count can only be too high, never too low: after a partial write or an
  // EAGAIN, sonic-boom writes the rest without a 'write' event, and from then
  // on every chunk is copied (as all were before this count), never reused
  // while held.
  let held = 0;
  fd.on('write', (n: number) => (held -= n));
  fd.on('drop', (data: Buffer) => (held -= data.length));
  return (chunk) => {
    // Behind bytes already held back, the chunk would be kept too: it goes as a
    // copy of exactly its bytes, which is what counts against MAX_HELD_BYTES.
    const copied = held > 0;
    const data = copied ? Buffer.from(chunk) : chunk;
    held += data.length;
    fd.write(data as unknown as string);
    return copied || held === 0;
  };
}
