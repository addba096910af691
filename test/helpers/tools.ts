// Real peers built by scripts/install-test-tools.sh, which test/global-setup.ts runs
// before the suite: a tool still missing after it is a failure, never a skip.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/shared/proto.js';

export const TOOLS_BIN = join(PROJECT_ROOT, '.tools', 'bin');
export const INSTALL_HINT = 'run `bash scripts/install-test-tools.sh`';

export function toolPath(
  name: 'grpc-health-probe' | 'grpcurl' | 'ghz' | 'promtool' | 'python',
): string {
  return name === 'python'
    ? join(PROJECT_ROOT, '.tools', 'venv', 'bin', 'python')
    : join(TOOLS_BIN, name);
}

/** Throws, naming the install command, unless every tool named is installed. */
export function requireTools(...names: Parameters<typeof toolPath>[0][]): void {
  const absent = names.filter((n) => !existsSync(toolPath(n)));
  if (absent.length > 0) throw new Error(`${absent.join(', ')} not installed: ${INSTALL_HINT}`);
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a tool to completion (bounded by `timeoutMs`) and returns its exit code and output. */
export function runTool(path: string, args: string[], timeoutMs = 20_000): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(path, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
