// Servers for tests: in-process (fast, covered) or as a real child process
// (exit codes, signals). Both bind 127.0.0.1:0 and report the real port.
import { once } from 'node:events';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { EchoClient, type ClientOptions } from '../../src/client/client.js';
import { parseServerConfig, type ServerConfig } from '../../src/server/config.js';
import { EchoServer } from '../../src/server/server.js';
import { LogLines, type LogLine } from '../../scripts/lib/log-lines.js';
import { spawnTs } from '../../scripts/lib/server-process.js';

export function pkiEnv(dir: string): Record<string, string> {
  return {
    TLS_CERT_FILE: join(dir, 'server.crt'),
    TLS_KEY_FILE: join(dir, 'server.key'),
    TLS_CA_FILE: join(dir, 'ca.crt'),
  };
}

/** An in-process server's log lines, kept so tests can wait for and match them. */
export class LogCapture extends LogLines {
  readonly logger: Logger;

  constructor(level = 'info') {
    super();
    this.logger = pino({ level }, { write: (s: string) => this.push(JSON.parse(s) as LogLine) });
  }
}

export async function startInProcess(
  pkiDir: string,
  env: Record<string, string> = {},
): Promise<{ server: EchoServer; port: number; config: ServerConfig; logs: LogCapture }> {
  const { config } = parseServerConfig([], {
    GRPC_ADDRESS: '127.0.0.1:0',
    SHUTDOWN_DRAIN_DELAY_MS: '0',
    SHUTDOWN_TIMEOUT_MS: '2000',
    SERVER_ID: 'test-server',
    ...pkiEnv(pkiDir),
    ...env,
  });
  const logs = new LogCapture(config.logLevel);
  const server = await EchoServer.create(config, logs.logger);
  const { port } = await server.start();
  return { server, port, config, logs };
}

export function clientFor(
  pkiDir: string,
  target: string,
  who: 'client' | 'probe' = 'client',
  extra: Partial<ClientOptions> = {},
): EchoClient {
  return new EchoClient({
    target,
    caFile: join(pkiDir, 'ca.crt'),
    certFile: join(pkiDir, `${who}.crt`),
    keyFile: join(pkiDir, `${who}.key`),
    deadlineMs: 5000,
    ...extra,
  });
}

export {
  killProcess,
  spawnTs,
  startServerProcess,
  type ServerProcess,
} from '../../scripts/lib/server-process.js';

/** Runs a command to completion, collecting its output. */
export async function runTs(
  script: string,
  args: string[],
  env: Record<string, string> = {},
  input?: string,
) {
  const child = spawnTs(script, args, env);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin?.end(input ?? '');
  // 'close', not 'exit': by then standard output and error have been read to the end.
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}
