// A folder laid out the way the kubelet writes a Secret volume: each file is a
// symlink through `..data`, which is swapped atomically to a new timestamped
// folder on every update. Tests and the soak rotate files exactly this way.
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export type SecretFiles = Record<string, string>;

export class SecretVolume {
  private generation = 0;
  private previous: string | null = null;

  constructor(readonly path: string) {}

  file(name: string): string {
    return join(this.path, name);
  }

  /** Publishes a new generation of every file in one atomic rename. */
  async write(files: SecretFiles): Promise<void> {
    const gen = `..gen_${++this.generation}`;
    await mkdir(join(this.path, gen), { recursive: true });
    for (const [name, contents] of Object.entries(files)) {
      await writeFile(join(this.path, gen, name), contents, {
        mode: name.endsWith('.key') ? 0o600 : 0o644,
      });
    }
    await symlink(gen, join(this.path, '..data_tmp'));
    await rename(join(this.path, '..data_tmp'), join(this.path, '..data'));
    if (this.generation === 1) {
      for (const name of Object.keys(files))
        await symlink(join('..data', name), join(this.path, name));
    }
    // The kubelet removes the old generation once the swap is done.
    if (this.previous) await rm(join(this.path, this.previous), { recursive: true, force: true });
    this.previous = gen;
  }
}
