// `npm run gen-certs`: the private CA and every workload certificate, plus the
// Kubernetes Secrets. Thin: parsing and printing here, the work in src/pki/cert-bundle.ts.
import { resolve } from 'node:path';
import { rotateCa } from '../src/pki/ca-rollover.js';
import { OutputError, generateBundle, type BundleResult } from '../src/pki/cert-bundle.js';
import { certificateStatus, crlStatus } from '../src/pki/cert-status.js';
import * as exit from '../src/shared/exit-codes.js';
import { UsageError, formatHelp, parseSettings } from '../src/shared/options.js';
import { describeFailure } from '../src/shared/errors.js';
import { CRL_WARN_DAYS, type CrlInfo } from '../src/tls/crl.js';
import { revoke } from '../src/pki/crl-revoke.js';
import type { KEY_SIZES } from '../src/pki/certificates.js';
import { settings, usage } from './lib/gen-certs-settings.js';

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  for (const r of [header, ...rows]) {
    console.log(
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    );
  }
}

const resignCommand =
  're-sign it with `npm run gen-certs` (re-issues the leaves too) before its next update';

/** One line per CRL; during a CA rollover the file holds one per CA, named by issuer. */
function printCrls(crls: CrlInfo[], file: string): void {
  for (const [i, crl] of crls.entries()) {
    console.log(
      `CRL ${file}${crls.length > 1 ? ` #${i + 1}` : ''}: number ${crl.number}, ${crl.entries.length} revoked, next update ${crl.nextUpdate.toISOString()}; ${resignCommand}.`,
    );
  }
}

async function status(dir: string, warnDays: number): Promise<number> {
  const rows = await certificateStatus(dir, warnDays);
  if (rows.length === 0) throw new OutputError(`no certificates in ${dir}; run gen-certs first`);
  printTable(
    ['FILE', 'SUBJECT', 'ISSUER', 'SANS', 'NOT AFTER', 'DAYS LEFT', 'STATE'],
    rows.map((r) => [
      r.file,
      r.subject,
      r.issuer,
      r.sans || '-',
      r.notAfter.toISOString().slice(0, 10),
      String(r.daysLeft),
      r.state,
    ]),
  );
  const bad = rows.filter((r) => r.state !== 'ok');
  const crl = await crlStatus(dir);
  for (const c of crl?.crls ?? []) {
    console.log('');
    console.log(
      `CRL ${c.file}: number ${c.number}, next update ${c.nextUpdate.toISOString()} (${c.daysLeft} days left), ${c.state}${(crl?.crls.length ?? 0) > 1 ? `, signed by ${c.issuer}` : ''}`,
    );
    if (c.revoked.length === 0) console.log('No certificate is revoked.');
    else {
      printTable(
        ['REVOKED SERIAL', 'WORKLOAD', 'REVOKED AT'],
        c.revoked.map((r) => [r.serial, r.workload ?? '-', r.revokedAt.toISOString()]),
      );
    }
  }
  if (bad.length > 0) {
    console.error(
      `gen-certs: ${bad.length} certificate(s) expired or expiring within ${warnDays} days: re-run gen-certs to re-issue them`,
    );
  }
  for (const c of crl?.crls.filter((x) => x.state !== 'ok') ?? []) {
    console.error(
      c.state === 'invalid'
        ? `gen-certs: ${c.file} holds a CRL not signed by a CA in ${dir}/ca.crt: run gen-certs to sign a new one`
        : `gen-certs: ${c.file} ${c.state === 'expired' ? 'has expired' : `expires within ${CRL_WARN_DAYS} days`}: ${resignCommand}`,
    );
  }
  for (const ca of crl?.casWithout ?? []) {
    console.error(
      `gen-certs: ${dir}/ca.crl holds no CRL of the CA "${ca}", so peers checking CRLs refuse its certificates: run gen-certs (or --rotate-ca during a rollover) to sign one`,
    );
  }
  const crlOk =
    crl === null || (crl.casWithout.length === 0 && crl.crls.every((c) => c.state === 'ok'));
  return bad.length === 0 && crlOk ? exit.OK : exit.CERT_EXPIRING;
}

async function main(argv: string[]): Promise<number> {
  const { values, help, positionals } = parseSettings(settings, argv, {});
  if (help) {
    process.stdout.write(formatHelp(usage, settings));
    return exit.OK;
  }
  if (positionals.length > 0)
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}; see --help`);
  const chosen = (['newCa', 'rotateCa', 'status', 'revoke'] as const).filter((k) => values[k]);
  if (chosen.length > 1) {
    throw new UsageError(
      `--${chosen.map((k) => settings[k].flag).join(' and --')} cannot be combined; pick one`,
    );
  }
  if (values.status) return status(values.outDir, values.warnDays);
  const keySize = Number(values.keySize) as (typeof KEY_SIZES)[number];
  const options = { ...values, keySize, trustDomain: values.trustDomain || values.clusterDomain };
  const started = performance.now();
  if (values.revoke !== '') {
    const r = await revoke(options, values.revoke);
    console.log(
      r.alreadyRevoked
        ? `Serial ${r.serial}${r.workload === null ? '' : ` (${r.workload})`} was already revoked; re-signed the CRL.`
        : `Revoked serial ${r.serial}${r.workload === null ? '' : ` (${r.workload})`}. Peers loading the CRL refuse it from their next reload; re-run gen-certs to give the workload a new certificate.`,
    );
    printCrls(r.crls, resolve(values.outDir, 'ca.crl'));
    if (r.secrets.length > 0)
      console.log(`Secret manifests updated (key ca.crl): ${r.secrets.join(', ')}`);
    return exit.OK;
  }
  let result: BundleResult;
  if (values.rotateCa) {
    const step = await rotateCa(options);
    console.log(`CA rollover step ${step.step} of 3 in ${values.outDir}. Next: ${step.next}.`);
    result = step;
  } else {
    result = await generateBundle(options);
    console.log(
      result.caKept
        ? `Kept the existing CA in ${values.outDir}; re-issued the leaf certificates (rotation). Use --new-ca to replace the CA.`
        : `Created a new CA in ${values.outDir}.`,
    );
  }
  const ms = Math.round(performance.now() - started);
  console.log('');
  printTable(
    ['FILE', 'SUBJECT', 'SANS', 'NOT AFTER'],
    result.certificates.map((c) => [
      c.file,
      c.subject,
      c.sans || '-',
      c.notAfter.toISOString().slice(0, 10),
    ]),
  );
  if (result.secrets.length > 0) {
    console.log('');
    console.log(`Secret manifests (private keys, git-ignored): ${result.secrets.join(', ')}`);
  }
  if (result.crls !== undefined) printCrls(result.crls, resolve(values.outDir, 'ca.crl'));
  console.log(`Done in ${ms} ms. Private keys are mode 0600; never commit them.`);
  return exit.OK;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const { message, exitCode } = describeFailure(err);
    console.error(`gen-certs: ${message}`);
    process.exit(exitCode);
  },
);
