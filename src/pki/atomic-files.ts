// Writing files so that a crash never leaves half a key: each file is written to
// a temporary name in the same folder (same file system, so rename is atomic),
// flushed, then renamed over the target.
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Private keys: owner read/write only. */
export const KEY_MODE = 0o600;
/** Certificates and manifests without secrets: world-readable. */
export const PUBLIC_MODE = 0o644;

export interface PendingFile {
  path: string;
  contents: string;
  mode: number;
}

async function writeTemp(file: PendingFile): Promise<string> {
  const tmp = join(
    dirname(file.path),
    `.${basename(file.path)}.${randomBytes(6).toString('hex')}.tmp`,
  );
  // The mode is set at creation, so a key is never readable by others, not even briefly.
  const handle = await open(tmp, 'wx', file.mode);
  try {
    await handle.writeFile(file.contents);
    await handle.chmod(file.mode); // umask may have narrowed a 0644 certificate
    await handle.sync();
  } finally {
    await handle.close();
  }
  return tmp;
}

/** Makes the renames in a folder durable: a rename lives in the folder's own entry. */
async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes every file, or none, as far as any failure before the renames goes: all
 * temporaries are written and flushed first, and renamed only when all succeeded;
 * on failure the temporaries are removed and the targets untouched. Each rename is
 * atomic, but the set is renamed one file at a time: a crash of the machine in the
 * few microseconds between two renames leaves some targets new and some old (never
 * half a file). Readers of the set (the server, the client, gen-certs itself) check
 * that a key matches its certificate, so a mixed pair is refused, not used.
 */
export async function writeAllAtomically(files: PendingFile[]): Promise<void> {
  const written: { tmp: string; path: string }[] = [];
  try {
    for (const file of files) written.push({ tmp: await writeTemp(file), path: file.path });
  } catch (err) {
    await Promise.all(written.map((w) => rm(w.tmp, { force: true })));
    throw err;
  }
  for (const w of written) await rename(w.tmp, w.path);
  for (const folder of new Set(written.map((w) => dirname(w.path)))) await syncFolder(folder);
}
