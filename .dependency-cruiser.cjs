// The architecture's boundaries, checked by `npm run lint` (dependency-cruiser).
//
//   src/shared   options, exit codes, logging, the proto contract: imports no other part
//   src/tls      loading, checking and reloading TLS sets, identity, CRLs: shared only
//   src/server   the mTLS server;  src/client  the client library and CLI
//   src/pki      the certificate tool (CA, issuing, rollover, Secrets): a workstation
//                part, left out of the runtime image, so nothing at run time imports it
//   src/bin      thin entry points: nothing imports them
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle makes the load order matter and the parts inseparable.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'runtime-not-to-pki',
      severity: 'error',
      comment:
        'The server, the client and their TLS code run in the image, which has no src/pki/ and no node-forge.',
      from: { path: '^src/(server|client|tls|shared)/|^src/bin/(server|client)\\.ts$' },
      to: { path: '^src/pki/' },
    },
    {
      name: 'runtime-not-to-dev-dependencies',
      severity: 'error',
      comment:
        'The image installs only "dependencies"; node-forge is a devDependency for the certificate tool.',
      from: { path: '^src/(server|client|tls|shared|bin)/' },
      to: { dependencyTypes: ['npm-dev'] },
    },
    {
      name: 'nothing-imports-bin',
      severity: 'error',
      comment: 'Entry points parse arguments and exit; the logic they call lives in the parts.',
      from: {},
      to: { path: '^src/bin/' },
    },
    {
      name: 'shared-is-a-leaf',
      severity: 'error',
      from: { path: '^src/shared/' },
      to: { path: '^src/(server|client|tls|pki)/' },
    },
    {
      name: 'tls-below-server-and-client',
      severity: 'error',
      from: { path: '^src/tls/' },
      to: { path: '^src/(server|client)/' },
    },
    {
      name: 'server-and-client-apart',
      severity: 'error',
      comment: 'The server and the client share only tls/ and shared/.',
      from: { path: '^src/server/' },
      to: { path: '^src/client/' },
    },
    {
      name: 'client-and-server-apart',
      severity: 'error',
      from: { path: '^src/client/' },
      to: { path: '^src/server/' },
    },
    {
      name: 'src-not-to-harness',
      severity: 'error',
      comment: 'Test, script and benchmark code stays out of what ships.',
      from: { path: '^src/' },
      to: { path: '^(test|scripts|bench)/' },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-undeclared-packages',
      severity: 'error',
      comment: 'Every package imported is in package.json.',
      from: { path: '^(src|scripts|test)/' },
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|coverage|bench/node_modules|bench/results)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.json'],
    },
  },
};
