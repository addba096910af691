// What the README promises about the code, checked against the code itself.
import { readFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import * as exitCodes from '../src/shared/exit-codes.js';

const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
const kubernetes = await readFile(new URL('../docs/kubernetes.md', import.meta.url), 'utf8');

/** The shell command starting with `start`, with its `\\` continuations. */
function command(markdown: string, start: string): string | undefined {
  const lines = markdown.split('\n');
  const first = lines.findIndex((l) => l.startsWith(start));
  if (first < 0) return undefined;
  const end = lines.findIndex((l, i) => i >= first && !l.trimEnd().endsWith('\\'));
  return lines.slice(first, end + 1).join('\n');
}

/** The rows of the README's exit-code table: code(s) → meaning. */
function exitCodeTable(): Map<number, string> {
  const section = readme.split('\n## Exit codes\n')[1]?.split('\n## ')[0] ?? '';
  const rows = new Map<number, string>();
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (!/^\d+(, \d+)*$/.test(cells[1] ?? '')) continue;
    for (const code of cells[1]!.split(', ')) rows.set(Number(code), cells[2] ?? '');
  }
  return rows;
}

describe('README', () => {
  it('tables every exit code of src/shared/exit-codes.ts, and no other', () => {
    const table = exitCodeTable();
    const declared: number[] = Object.values(exitCodes);
    // A second SIGINT or SIGTERM during shutdown: 128 + the signal's number.
    const bySignal = [constants.signals.SIGINT, constants.signals.SIGTERM].map((n) => 128 + n);
    expect([...table.keys()].sort((a, b) => a - b)).toEqual(
      [...declared, ...bySignal].sort((a, b) => a - b),
    );
    for (const [code, meaning] of table) expect(meaning, `exit code ${code}`).not.toBe('');
  });

  it('shows the probe command of docs/kubernetes.md, which the cluster test runs, word for word', () => {
    const probe = 'kubectl -n grpc-mtls exec deploy/grpc-server';
    expect(command(kubernetes, probe)).toContain('grpc_health_probe');
    expect(command(readme, probe)).toBe(command(kubernetes, probe));
  });
});
