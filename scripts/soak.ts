// `npm run soak`: rotation, CA rollover and a rolling restart under steady load;
// prints a table and writes the report to soak-results/<date>.json.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatHelp, integer, parseSettings } from '../src/shared/options.js';
import { PROJECT_ROOT } from '../src/shared/proto.js';
import { runSoak } from './soak/soak.js';

const settings = {
  rateHz: {
    flag: 'rate',
    help: 'calls started per second',
    default: 100,
    parse: integer(1, 2000),
    valueName: 'N',
  },
  steadyS: {
    flag: 'steady-s',
    help: 'seconds of quiet load before, between and after events',
    default: 10,
    parse: integer(1, 3600),
    valueName: 'S',
  },
  drainMs: {
    flag: 'drain-delay-ms',
    help: "servers' drain delay during the rolling restart",
    default: 5000,
    parse: integer(0, 60_000),
    valueName: 'MS',
  },
} as const;

const { values, help } = parseSettings(settings, process.argv.slice(2), {});
if (help) {
  process.stdout.write(formatHelp('Usage: npm run soak -- [options]', settings));
  process.exit(0);
}

const report = await runSoak({
  rateHz: values.rateHz,
  steadyMs: values.steadyS * 1000,
  drainDelayMs: values.drainMs,
  log: (line) => console.error(line),
});
const rows = report.phases.map(
  (p) => `| ${p.phase} | ${p.calls} | ${p.failed} | ${p.p50Ms} | ${p.p99Ms} |`,
);
console.log(
  [
    '| phase | calls | failed | p50 ms | p99 ms |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n'),
);
console.log(
  `\ncalls ${report.calls}, failed ${report.failed}, per server ${JSON.stringify(report.perServer)}`,
);
console.log(
  `RSS MiB at start ${JSON.stringify(report.rssMiB.start)}, at end ${JSON.stringify(report.rssMiB.end)}`,
);
const dir = join(PROJECT_ROOT, 'soak-results');
await mkdir(dir, { recursive: true });
const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
await writeFile(file, JSON.stringify({ options: values, ...report }, null, 2));
console.log(`report: ${file}`);
process.exit(report.failed === 0 ? 0 : 1);
