// A bound on how long something may take, for the harness (tests, demo, soak,
// benchmark): the promise's own outcome, or an error saying what did not
// happen in time. The timer is cleared either way, so no bound keeps a
// process alive or fires after the fact.

/** What `within` rejects with when the time is up. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/**
 * Settles as `promise` does, or rejects with a TimeoutError carrying `message`
 * after `ms`. A function message is read when the time is up (for example to
 * include the stderr gathered so far).
 */
export function within<T>(
  promise: Promise<T>,
  ms: number,
  message: string | (() => string),
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TimeoutError(typeof message === 'string' ? message : message())),
      ms,
    );
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}
