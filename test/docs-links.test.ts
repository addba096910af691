// The documentation's references, checked against the repository: every relative
// link leads to a file, every #anchor to a heading of its target, and every
// backticked path such as `src/tls/material.ts` exists. A file moved or renamed
// without its docs, or a heading reworded under a link, fails here.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = resolve(fileURLToPath(import.meta.url), '../..');

/** The documents checked: the README and everything in docs/. */
const documents = [
  'README.md',
  ...readdirSync(join(repo, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/**
 * Paths that name what a command writes, not what the repository holds: they
 * exist only after `npm run gen-certs`, a build, a soak or `npm test` (all git-ignored).
 */
const GENERATED = /^(certs|dist|coverage|node_modules|soak-results|\.tools)\/|^k8s\/secret-/;

/** A path's last segment ending like a file of this repository. */
const FILE_LIKE = /\.(ts|js|cjs|json|ya?ml|md|go|mod|sum|sh|py|c|txt|proto)$/;

interface Problem {
  file: string;
  kind: 'link' | 'anchor' | 'path';
  target: string;
}

/** Markdown without fenced code blocks, whose text is not Markdown. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
}

/** GitHub's heading ids (github-slugger): lower case, punctuation dropped, spaces to '-'. */
function headingIds(markdown: string): Set<string> {
  const ids = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of prose(markdown).split('\n')) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const text = m[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    ids.add(n === 0 ? base : `${base}-${n}`);
  }
  return ids;
}

/** Whether a repository path exists; a `*` or `<…>` stands for any part of one segment. */
function pathExists(path: string): boolean {
  let dirs = [repo];
  for (const segment of path.replace(/\/$/, '').split('/')) {
    if (!/[*<]/.test(segment)) {
      dirs = dirs.map((d) => join(d, segment)).filter((p) => existsSync(p));
      continue;
    }
    const pattern = new RegExp(
      `^${segment.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*|<[^>]*>/g, '.*')}$`,
    );
    dirs = dirs.flatMap((d) =>
      statSync(d).isDirectory()
        ? readdirSync(d)
            .filter((e) => pattern.test(e))
            .map((e) => join(d, e))
        : [],
    );
  }
  return dirs.length > 0;
}

/** A backticked span that names a file or folder of this repository, if it is one. */
function repoPath(code: string, rootEntries: ReadonlySet<string>): string | null {
  if (!/^[\w.-]+(\/[\w.*<>-]*)+$/.test(code) || GENERATED.test(code)) return null;
  const first = code.split('/')[0]!;
  return rootEntries.has(first) || FILE_LIKE.test(code) ? code : null;
}

/** Everything wrong with the references of one document (`file` relative to the repository). */
function checkDocument(
  file: string,
  markdown: string,
  readTarget: (path: string) => string | null = readRepoFile,
): Problem[] {
  const problems: Problem[] = [];
  const text = prose(markdown);
  const rootEntries = new Set(readdirSync(repo));
  for (const [, code] of text.matchAll(/`([^`\n]+)`/g)) {
    const path = repoPath(code!, rootEntries);
    if (path !== null && !pathExists(path)) problems.push({ file, kind: 'path', target: path });
  }
  const withoutCode = text.replace(/`[^`\n]*`/g, '');
  for (const [, target] of withoutCode.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target!)) continue; // https:, mailto:
    const [pathPart, anchor] = target!.split('#', 2) as [string, string | undefined];
    const targetPath =
      pathPart === '' ? file : relative(repo, resolve(repo, dirname(file), pathPart));
    const content =
      pathPart === '' ? markdown : targetPath.startsWith('..') ? null : readTarget(targetPath);
    if (content === null) {
      problems.push({ file, kind: 'link', target: target! });
      continue;
    }
    if (anchor !== undefined && !headingIds(content).has(anchor)) {
      problems.push({ file, kind: 'anchor', target: target! });
    }
  }
  return problems;
}

function readRepoFile(path: string): string | null {
  const full = join(repo, path);
  if (!existsSync(full)) return null;
  return statSync(full).isDirectory() ? '' : readFileSync(full, 'utf8');
}

describe('the documentation', () => {
  it('is the README and the files in docs/', () => {
    expect(documents).toContain('README.md');
    expect(documents).toEqual(expect.arrayContaining(['docs/architecture.md', 'docs/server.md']));
  });

  it('links only to files that exist, headings that exist, and backticked paths that exist', () => {
    const problems = documents.flatMap((f) =>
      checkDocument(f, readFileSync(join(repo, f), 'utf8')),
    );
    expect(problems).toEqual([]);
  });

  it('links from the README to every file in docs/', () => {
    const readme = readFileSync(join(repo, 'README.md'), 'utf8');
    for (const doc of documents.filter((d) => d !== 'README.md')) {
      expect(readme, `README.md links to ${doc}`).toContain(`](${doc})`);
    }
  });
});

describe('the reference check', () => {
  const sample = [
    '# Title',
    '## `npm start`: the server',
    '## Title',
    'See [here](#title), [there](#npm-start-the-server), [again](#title-1), [mail](mailto:a@b).',
    'Code `src/tls/material.ts`, a glob `test/k8s-*.test.ts`, a folder `src/pki/`, made `certs/ca.crt`.',
    '```sh',
    '# not a heading',
    'cat `src/nothing.ts` [no](missing.md)',
    '```',
  ].join('\n');

  it('accepts links, anchors and paths that exist, and ignores code blocks and generated files', () => {
    expect(checkDocument('docs/sample.md', sample)).toEqual([]);
    expect(headingIds(sample)).toEqual(new Set(['title', 'npm-start-the-server', 'title-1']));
  });

  it('reports a link to a missing file, an anchor to no heading and a path that is not there', () => {
    const broken = `${sample}\n[a](missing.md) [b](server.md#no-such-heading) [c](#gone) \`src/tls/gone.ts\` \`srcs/x.ts\``;
    expect(checkDocument('docs/sample.md', broken)).toEqual([
      { file: 'docs/sample.md', kind: 'path', target: 'src/tls/gone.ts' },
      { file: 'docs/sample.md', kind: 'path', target: 'srcs/x.ts' },
      { file: 'docs/sample.md', kind: 'link', target: 'missing.md' },
      { file: 'docs/sample.md', kind: 'anchor', target: 'server.md#no-such-heading' },
      { file: 'docs/sample.md', kind: 'anchor', target: '#gone' },
    ]);
  });
});
