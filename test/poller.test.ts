// The poll loop behind the TLS and policy reloaders, on an in-memory "file":
// what a check answers while another poll runs, and how refusals are reported.
import { describe, expect, it } from 'vitest';
import { Poller, type PollSource } from '../src/tls/poller.js';

/** A "file" whose content the test sets; `hold()` makes polls wait, after their read, until released. */
function memoryFile(initial: string) {
  let content = initial;
  let gate: Promise<void> | null = null;
  const accepted: string[] = [];
  const refused: string[] = [];
  const source: PollSource<string> = {
    // Reads first, then waits: a poll that read the old content and is still busy.
    peek: async () => {
      const seen = content;
      if (gate) await gate;
      return seen;
    },
    load: () =>
      content.startsWith('bad')
        ? Promise.reject(new Error(`refused: ${content}`))
        : Promise.resolve({ value: content, fingerprint: content }),
    accept: (value) => accepted.push(value),
    refuse: (message) => refused.push(message),
  };
  return {
    source,
    accepted,
    refused,
    set: (c: string) => (content = c),
    hold: () => {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return () => {
        gate = null;
        release();
      };
    },
  };
}

describe('the shared poller', () => {
  it('answers a check asked during a poll from a new poll, which sees an update the running one missed', async () => {
    const file = memoryFile('one');
    const poller = new Poller(file.source, 'one');
    const release = file.hold();
    const running = poller.check(); // a timer poll: has read "one", still busy
    file.set('two');
    const asked = poller.check(); // a SIGHUP right after the update
    release();
    expect(await running).toBe('unchanged');
    expect(await asked).toBe('reloaded');
    expect(file.accepted).toEqual(['two']);
  });

  it('reports each distinct refusal once and keeps the last good value', async () => {
    const file = memoryFile('one');
    const poller = new Poller(file.source, 'one');
    file.set('bad-a');
    expect(await poller.check()).toBe('rejected');
    expect(await poller.check()).toBe('rejected');
    file.set('bad-b');
    expect(await poller.check()).toBe('rejected');
    expect(file.refused).toEqual(['refused: bad-a', 'refused: bad-b']);
    file.set('three');
    expect(await poller.check()).toBe('reloaded');
    expect(file.accepted).toEqual(['three']);
  });
});
