// Where the server's log lines go: standard output, written synchronously so
// that nothing is lost when the process exits. Access lines (one per RPC) are
// the exception: they are gathered and written together, because one write
// system call per RPC was the largest single cost the benchmark found.
//
// Order is kept: any other line first writes out the gathered access lines.
// Gathered lines wait at most `flushMs`, or until `maxPendingChars` have built
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

export interface LogOutputOptions {
  /** How long an access line may wait before it is written. */
  flushMs: number;
  /** Written at the end of the event loop's turn when this much is pending (characters, about bytes). */
  maxPendingChars: number;
}

export const DEFAULT_LOG_OUTPUT: LogOutputOptions = { flushMs: 200, maxPendingChars: 16_384 };

/** Output a failing file descriptor may hold back before lines are dropped, so memory stays bounded. */
const MAX_HELD_BYTES = 8 * 1024 * 1024;

export class LogOutput {
  /** For lines that must appear now: start-up, warnings, errors, shutdown. */
  readonly immediate: LogSink;
  /** For access lines: gathered, written in batches. */
  readonly batched: LogSink;
  private pending: string[] = [];
  private pendingChars = 0;
  private timer: NodeJS.Timeout | null = null;
  private soon: NodeJS.Immediate | null = null;
  private readonly flushNow = () => this.flush();
  private readonly writeOut: (chunk: string) => void;

  /**
   * @param target  a file descriptor (1 for stdout), or anything with `write(string)`,
   *                which tests use to see exactly what is written and when.
   */
  constructor(
    target: number | { write(chunk: string): unknown },
    private readonly options: LogOutputOptions = DEFAULT_LOG_OUTPUT,
  ) {
    let out: { write(chunk: string): unknown };
    if (typeof target !== 'number') out = target;
    else {
      // sonic-boom, pino's writer: synchronous (so exit loses nothing), copes with
      // partial writes and EAGAIN on a full pipe, holds output back while writes
      // fail (up to maxLength, then drops it); pino's wrapper goes quiet on EPIPE.
      const fd = pino.destination({ dest: target, sync: true, maxLength: MAX_HELD_BYTES });
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
      out = fd;
    }
    this.writeOut = (chunk) => void out.write(chunk);
    this.immediate = {
      write: (line) => {
        this.flush();
        this.writeOut(line);
      },
      flush: (cb) => this.flushThen(cb),
    };
    this.batched = {
      write: (line) => this.gather(line),
      flush: (cb) => this.flushThen(cb),
    };
    process.on('exit', this.flushNow);
  }

  private gather(line: string): void {
    this.pending.push(line);
    this.pendingChars += line.length;
    if (this.pendingChars >= this.options.maxPendingChars)
      this.soon ??= setImmediate(this.flushNow);
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
    if (this.pending.length === 0) return;
    const chunk = this.pending.join('');
    this.pending = [];
    this.pendingChars = 0;
    this.writeOut(chunk);
  }

  /** Writes what is pending and stops listening for exit (for tests and short-lived loggers). */
  close(): void {
    this.flush();
    process.off('exit', this.flushNow);
  }
}
