// `npx tsx bench/pool.ts RESULT.json...`: the ratio goals of issue 16 over the
// rounds of several runs of `npm run bench` taken together, for a goal that a
// single run leaves on its line (bench/lib/pool.ts says how, and why runs are
// resampled before rounds). Give it runs whose servers run the same code per
// call: pooling across a change to that measures neither side of it. Runs on
// different hosts may be pooled; that is what resampling by run allows for.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { BenchResult } from './lib/report.js';
import { poolTargets, renderPooled } from './lib/pool.js';

const USAGE = `Usage: npx tsx bench/pool.ts RESULT.json [RESULT.json ...]

Pools the rounds of the given bench results (bench/results/*.json) and prints,
for each ratio goal they measured, the pooled median, its 90% interval and
whether that whole interval meets the goal.`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { help: { type: 'boolean', short: 'h', default: false } },
});
if (values.help || positionals.length === 0) {
  console.log(USAGE);
  process.exit(values.help ? 0 : 2);
}
const results: BenchResult[] = [];
for (const file of positionals) {
  const result = JSON.parse(await readFile(file, 'utf8')) as BenchResult;
  if (result.schema !== 1 || result.smoke) {
    console.error(
      `${file}: not a full bench result (schema 1, not --smoke); give it bench/results/*.json`,
    );
    process.exit(2);
  }
  results.push(result);
}
console.log(renderPooled(poolTargets(results), positionals));
