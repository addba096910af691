// Lines an attacker can trigger (refused handshakes, denied calls) are
// rate-limited, so a flood of bad peers cannot become a flood of log output:
// at most `budget` lines a second of each kind. What is held back is counted,
// never dropped from the record: one summary line per second says how many
// were not written, and a running total, so the counts add up.
import type { Logger } from 'pino';

/** Enough to see what is happening in an attack; little enough that 1000 bad peers a second write 20 lines. */
export const DEFAULT_LOG_BUDGET = 20;
const WINDOW_MS = 1000;

/** Limiters holding an unreported count: written out if the process exits first. */
const pending = new Set<LogLimiter>();
let exitHookInstalled = false;

export class LogLimiter {
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;
  private suppressedTotal = 0;
  private timer: NodeJS.Timeout | null = null;

  /**
   * @param summary the message of the summary line, e.g. "permission denials not logged"
   */
  constructor(
    private readonly log: Logger,
    private readonly summary: string,
    private readonly budget = DEFAULT_LOG_BUDGET,
  ) {}

  /** True when this line may be written; false when it is only counted. */
  allow(): boolean {
    const now = Date.now();
    if (now - this.windowStart >= WINDOW_MS) {
      this.flush();
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (++this.inWindow <= this.budget) return true;
    this.suppressed += 1;
    if (this.timer === null) {
      // Report at the end of this window even if no further line comes.
      this.timer = setTimeout(() => this.flush(), this.windowStart + WINDOW_MS - now);
      this.timer.unref();
      pending.add(this);
      installExitHook();
    }
    return false;
  }

  /** Writes the summary of what was held back, if anything was. */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    pending.delete(this);
    if (this.suppressed === 0) return;
    this.suppressedTotal += this.suppressed;
    this.log.warn(
      {
        suppressed: this.suppressed,
        suppressedTotal: this.suppressedTotal,
        limitPerSecond: this.budget,
      },
      this.summary,
    );
    this.suppressed = 0;
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const limiter of pending) limiter.flush();
  });
}
