// Bundles the dashboard (src/) into <out>/index.html, app.js and app.css with esbuild, for the
// CMake step that embeds them in the sluice binary (cmake/embed_dashboard.cmake).
//   node web/build.mjs <out-dir> <deps-dir>
// <deps-dir> holds node_modules from `npm ci` of this folder's package-lock.json (scripts/setup.sh
// puts it in .deps/web); SLUICE_WEB_DEPS overrides it. Fails loudly when it is missing: the
// binary is never built with an empty dashboard.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [out, depsArg] = process.argv.slice(2);
if (!out || !depsArg) {
  console.error('usage: node web/build.mjs <out-dir> <deps-dir>');
  process.exit(2);
}
const deps = resolve(process.env.SLUICE_WEB_DEPS || depsArg);
const modules = join(deps, 'node_modules');
const esbuildMain = join(modules, 'esbuild', 'lib', 'main.js');
if (!existsSync(esbuildMain)) {
  console.error(`sluice dashboard: the npm packages of web/package-lock.json are not installed in ${deps} ` +
                `(no ${esbuildMain}). Run 'make setup' (scripts/setup.sh runs npm ci there), or set ` +
                `SLUICE_WEB_DEPS to a folder where 'npm ci' ran on web/package.json, then build again.`);
  process.exit(1);
}
// The installed packages must be the ones the lock file pins: a stale .deps/web (the lock
// changed since `make setup`) would bundle other versions silently.
const lock = JSON.parse(readFileSync(join(here, 'package-lock.json'), 'utf8'));
for (const [path, entry] of Object.entries(lock.packages || {})) {
  if (!path.startsWith('node_modules/') || entry.optional) continue;
  const installed = join(deps, path, 'package.json');
  const version = existsSync(installed) ? JSON.parse(readFileSync(installed, 'utf8')).version : null;
  if (version !== entry.version) {
    console.error(`sluice dashboard: ${path} is ${version ?? 'not installed'} in ${deps}, but web/package-lock.json ` +
                  `pins ${entry.version}: run 'make setup' (npm ci) again, then build again.`);
    process.exit(1);
  }
}
const esbuild = await import(pathToFileURL(esbuildMain).href);
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: { app: join(here, 'src', 'main.js') },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outdir: out,
  nodePaths: [modules],
  logLevel: 'warning',
  legalComments: 'eof',
});
copyFileSync(join(here, 'src', 'index.html'), join(out, 'index.html'));
