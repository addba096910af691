// JSON log lines kept in memory so that a test, the demo or the soak can wait
// for one: the same waiter whether the lines come from a child process's
// standard output (server-process.ts) or from an in-process pino logger
// (test/helpers/server.ts).

export type LogLine = Record<string, unknown>;

export class LogLines {
  readonly lines: LogLine[] = [];
  private waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  constructor(
    /** Which lines to remember; a soak drops the per-RPC ones so memory stays flat. */
    private readonly keep: (l: LogLine) => boolean = () => true,
  ) {}

  push(line: LogLine): void {
    if (!this.keep(line)) return;
    this.lines.push(line);
    this.waiters = this.waiters.filter((w) => (w.match(line) ? (w.resolve(line), false) : true));
  }

  /** The first line, already seen or still to come, that `match` accepts. */
  waitFor(match: (l: LogLine) => boolean): Promise<LogLine> {
    const found = this.lines.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }
}
