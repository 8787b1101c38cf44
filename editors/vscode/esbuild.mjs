// Bundle the extension (and the settings helpers the Node test client reuses) with esbuild.
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

const common = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  sourcemap: !production,
  minify: production,
  logLevel: 'info',
};

const builds = [
  // `vscode` is provided by the editor at run time.
  { ...common, entryPoints: ['src/extension.ts'], outfile: 'dist/extension.js', external: ['vscode'] },
  // No vscode import: test-client/ requires these to check what the extension sends.
  { ...common, entryPoints: ['src/serverSettings.ts'], outfile: 'dist/serverSettings.js' },
  { ...common, entryPoints: ['src/preflight.ts'], outfile: 'dist/preflight.js' },
];

if (watch) {
  for (const options of builds) {
    const ctx = await esbuild.context(options);
    await ctx.watch();
  }
} else {
  await Promise.all(builds.map((options) => esbuild.build(options)));
}
