// `npm run build`: the server and the client, each as one file in dist/ (see
// scripts/lib/bundle.ts). Run by `npm start` first, and by the image's build stage.
import { ENTRY_POINTS, builtEntry, bundleApp } from './lib/bundle.js';

const { sources, packages, external } = await bundleApp();
for (const name of Object.keys(ENTRY_POINTS) as (keyof typeof ENTRY_POINTS)[]) {
  console.log(`built ${builtEntry(name)}`);
}
console.log(`${sources.length} of our source files and ${packages.length} packages bundled`);
if (external.length > 0)
  console.log(`required from node_modules/ at run time: ${external.join(', ')}`);
