#!/usr/bin/env node
// The `cairn` command. The CLI is TypeScript compiled to dist/ by `npm run build`; this launcher only
// loads it, so that a missing build says what to do instead of failing with a module-not-found trace.
import process from 'node:process';

let cli;
try {
  cli = await import('../dist/src/cli/main.js');
} catch (e) {
  if (e && e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('cli/main.js')) {
    process.stderr.write('cairn: the CLI is not built yet: run `npm run build` in the cairn folder first\n');
    process.exit(1);
  }
  throw e;
}
// `cairn checkpoints list DIR | head -1`: a reader that goes away is not an error worth a stack trace.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});
process.exitCode = await cli.main(process.argv.slice(2));
