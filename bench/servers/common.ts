// What the Node comparison servers of `npm run bench` share: their settings (the
// same variables as our server), the "serving" line the harness waits for, and
// the bounds of ServerStream. The harness runs them compiled (see bench/lib/build.ts),
// so their start-up is measured without a TypeScript loader, like ours.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The same bounds as our server's (src/server/echo-service.ts STREAM_LIMITS), so a bad request fails alike. */
export const STREAM_LIMITS = { maxCount: 1000, maxIntervalMs: 10_000 } as const;

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

export interface BenchServerSettings {
  host: string;
  port: number;
  serverId: string;
  /** null only with the explicit --insecure-plaintext flag. */
  tls: TlsFiles | null;
}

export class SettingsError extends Error {
  override name = 'SettingsError';
}

const TLS_VARS = ['TLS_CERT_FILE', 'TLS_KEY_FILE', 'TLS_CA_FILE'] as const;

function readNamed(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new SettingsError(`${variable} (${path}) cannot be read: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/**
 * GRPC_ADDRESS (default 127.0.0.1:0), SERVER_ID, and TLS_CERT_FILE, TLS_KEY_FILE,
 * TLS_CA_FILE, all three required unless `--insecure-plaintext` is given, which
 * refuses them: a plaintext server is never the result of a missing variable.
 */
export function readSettings(
  argv: string[],
  env: NodeJS.ProcessEnv,
  plaintextAllowed: boolean,
): BenchServerSettings {
  const unknown = argv.filter((a) => a !== '--insecure-plaintext');
  if (unknown.length > 0) throw new SettingsError(`unexpected argument ${unknown[0]}`);
  const plaintext = argv.includes('--insecure-plaintext');
  if (plaintext && !plaintextAllowed)
    throw new SettingsError('--insecure-plaintext is not offered by this server');
  const address = env.GRPC_ADDRESS ?? '127.0.0.1:0';
  const m = /^([\d.]+|localhost):(\d{1,5})$/.exec(address);
  if (!m) throw new SettingsError(`GRPC_ADDRESS (${address}) must be HOST:PORT on loopback`);
  const given = TLS_VARS.filter((v) => (env[v] ?? '') !== '');
  if (plaintext && given.length > 0)
    throw new SettingsError(`--insecure-plaintext refuses ${given.join(', ')}: choose one`);
  if (!plaintext && given.length < TLS_VARS.length) {
    const absent = TLS_VARS.filter((v) => !given.includes(v));
    throw new SettingsError(
      `${absent.join(', ')} must be set (or pass --insecure-plaintext for the INSECURE baseline)`,
    );
  }
  return {
    host: m[1]!,
    port: Number(m[2]),
    serverId: env.SERVER_ID ?? 'bench',
    tls: plaintext
      ? null
      : {
          cert: readNamed('TLS_CERT_FILE', env.TLS_CERT_FILE!),
          key: readNamed('TLS_KEY_FILE', env.TLS_KEY_FILE!),
          ca: readNamed('TLS_CA_FILE', env.TLS_CA_FILE!),
        },
  };
}

/** The line the harness waits for, in the shape our server logs it. */
export function logServing(host: string, port: number): void {
  const startupMs = Math.round(performance.now());
  process.stdout.write(
    `${JSON.stringify({ msg: 'serving', address: `${host}:${port}`, startupMs })}\n`,
  );
}

/** The `proto/` folder of the repository, found upwards from this file (source or compiled). */
export function protoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'proto', 'echo', 'v1', 'echo.proto'))) return join(dir, 'proto');
    const parent = dirname(dir);
    if (parent === dir)
      throw new SettingsError('proto/echo/v1/echo.proto not found above the bench server');
    dir = parent;
  }
}

/** Runs a server's main, turning a settings error into exit code 2 with its message. */
export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    const e = err as Error;
    process.stderr.write(
      `${name}: ${e instanceof SettingsError ? e.message : (e.stack ?? e.message)}\n`,
    );
    process.exit(e instanceof SettingsError ? 2 : 1);
  });
}
