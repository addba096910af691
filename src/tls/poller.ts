// Following a file (or a set of files) on disk by polling: the one loop behind
// the TLS reloader and the authorization policy reloader. Each poll fingerprints
// what is there cheaply; only a change is loaded and checked whole; only a good
// one replaces what is in use; a refusal is reported once per distinct reason,
// so a file left broken does not fill the log, and the last good value stays.
//
// Polling rather than fs.watch: a Kubernetes Secret or ConfigMap volume is
// updated by swapping its `..data` symlink, which changes no watched inode of
// the files themselves; polling sees it, on every file system.

export type ReloadResult = 'unchanged' | 'reloaded' | 'rejected';

export interface PollSource<T> {
  /** A cheap fingerprint of what is on disk now; null when it cannot be read. */
  peek(): Promise<string | null>;
  /** Reads and checks the whole thing; throws an Error saying why it cannot be used. */
  load(): Promise<{ value: T; fingerprint: string }>;
  /** A good new value, to put in use (and log); `first` when nothing was in use yet. */
  accept(value: T, first: boolean): void;
  /** A refused one: called once per distinct message while it stands. */
  refuse(message: string): void;
  /** Called on a poll that found nothing new on disk. */
  unchanged?(): void;
}

export class Poller<T> {
  private timer: NodeJS.Timeout | null = null;
  private current: string;
  private lastRejected: string | null = null;
  private inFlight: Promise<ReloadResult> | null = null;
  private next: Promise<ReloadResult> | null = null;
  /** Told the result of every poll (the server's metrics count reloads). */
  onResult: ((result: ReloadResult) => void) | null = null;

  constructor(
    private readonly source: PollSource<T>,
    /** The fingerprint of the value in use; '' when the first poll is the first load. */
    initial: string,
  ) {
    this.current = initial;
  }

  start(intervalMs: number): void {
    // A timer poll while one still runs would only repeat it: skip it.
    this.timer = setInterval(() => {
      if (this.inFlight === null) void this.check();
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * One poll (tests, SIGHUP). Asked while a poll runs, it runs one more right
   * after that one (shared by every caller meanwhile), so the answer reflects
   * the files as they were when asked: a SIGHUP just after an update is never
   * lost to a timer poll that read the old files.
   */
  check(): Promise<ReloadResult> {
    if (this.inFlight !== null) {
      const again = () => {
        this.next = null;
        return this.check();
      };
      this.next ??= this.inFlight.then(again, again);
      return this.next;
    }
    this.inFlight = this.poll()
      .then((result) => {
        this.onResult?.(result);
        return result;
      })
      .finally(() => {
        this.inFlight = null;
      });
    return this.inFlight;
  }

  private async poll(): Promise<ReloadResult> {
    if ((await this.source.peek()) === this.current) {
      this.source.unchanged?.();
      return 'unchanged';
    }
    let loaded: { value: T; fingerprint: string };
    try {
      loaded = await this.source.load();
    } catch (err) {
      // A missing or half-written file may be a swap in progress: report each distinct failure once.
      const message = (err as Error).message;
      if (message !== this.lastRejected) {
        this.source.refuse(message);
        this.lastRejected = message;
      }
      return 'rejected';
    }
    if (loaded.fingerprint === this.current) return 'unchanged';
    const first = this.current === '';
    this.current = loaded.fingerprint;
    this.lastRejected = null;
    this.source.accept(loaded.value, first);
    return 'reloaded';
  }
}
