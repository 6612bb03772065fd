#!/usr/bin/env node
// Runs every compiled uvu test file under Node, then the same files under Deno, and fails if any
// file fails under either runtime. `deno test` would silently run zero uvu tests, so each file is
// run as a program (`deno run -A`) and its uvu summary is parsed: a file that exits non-zero, runs
// no test, or passes fewer tests than it declares counts as failed.
import { spawn } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const testRoot = join(root, 'dist', 'test');
const CONCURRENCY_MAX = 2; // the CI machine has two cores
const FILE_TIMEOUT_MS = 5 * 60 * 1000;
/** How long output may stay open after a test process exited. */
const EXIT_GRACE_MS = 10 * 1000;
/**
 * How long a test process may take to exit once uvu printed its summary. Node can hang at exit
 * while V8 still runs Wasm compile jobs in the background (nodejs/node#36616; seen once in CI on a
 * 40 ms test file that passed). Such a file is killed and run once more, and the report says so.
 */
const EXIT_AFTER_SUMMARY_MS = 60 * 1000;

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

function denoBinary() {
  const local = join(root, 'node_modules', '@deno', `linux-x64-glibc`, 'deno');
  return existsSync(local) ? [local] : ['npx', '--no-install', 'deno'];
}

function runOne(cmd, args, file) {
  return new Promise((resolve) => {
    const child = spawn(cmd, [...args, file], { cwd: root, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    let exited = false;
    let hungAtExit = false;
    let exitWatch;
    const started = Date.now();
    child.stdout.on('data', () => {
      if (exitWatch === undefined && /Duration:/.test(out)) {
        exitWatch = setTimeout(() => {
          hungAtExit = true;
          out += `\n[runner] the process printed its summary but did not exit within ${EXIT_AFTER_SUMMARY_MS / 1000} s\n`;
          child.kill('SIGKILL');
        }, EXIT_AFTER_SUMMARY_MS);
      }
    });
    const timer = setTimeout(() => {
      out += exited
        ? '\n[runner] timed out: the process exited but its output stayed open\n'
        : `\n[runner] timed out after ${Math.round((Date.now() - started) / 1000)} s: the process never exited (a handle kept it alive, or it hung)\n`;
      child.kill('SIGKILL');
      finish(null);
    }, FILE_TIMEOUT_MS);
    // A process that exited is judged by its exit code and output, even if something it started
    // still holds its output pipes open (then 'close' would wait for that process instead).
    let grace;
    child.on('exit', (code) => {
      exited = true;
      grace = setTimeout(() => finish(code), EXIT_GRACE_MS);
    });
    let done = false;
    child.on('close', (code) => finish(code));
    function finish(code) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(grace);
      clearTimeout(exitWatch);
      const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
      const total = [...plain.matchAll(/Total:\s+(\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
      const passed = [...plain.matchAll(/Passed:\s+(\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
      const ok = code === 0 && total > 0 && passed === total;
      resolve({ file, ok, total, passed, out: plain, code, hungAtExit: hungAtExit && total > 0 && passed === total });
    }
  });
}

async function runAll(label, cmd, args, files) {
  const results = [];
  let next = 0;
  async function worker() {
    while (next < files.length) {
      const file = files[next++];
      let r = await runOne(cmd, args, file);
      const name = relative(root, file);
      let note = '';
      if (r.hungAtExit) {
        // Every test passed, then the process hung at exit: run the file once more.
        r = await runOne(cmd, args, file);
        note = ' (run twice: the first run passed every test, then hung at exit)';
      }
      console.log(`${r.ok ? 'ok  ' : 'FAIL'} [${label}] ${name} (${r.passed}/${r.total})${note}`);
      if (!r.ok) console.log(r.out.split('\n').map((l) => '    ' + l).join('\n'));
      results.push(r);
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY_MAX }, worker));
  return results;
}

const only = process.argv.slice(2);
let files = findTests(testRoot);
if (only.length) files = files.filter((f) => only.some((o) => f.includes(o)));
if (files.length === 0) {
  console.error('no test files found under dist/test; did the build run?');
  process.exit(1);
}
const runtimes = process.env.CAIRN_TEST_RUNTIMES ? process.env.CAIRN_TEST_RUNTIMES.split(',') : ['node', 'deno'];
const all = [];
if (runtimes.includes('node')) all.push(...(await runAll('node', process.execPath, [], files)));
if (runtimes.includes('deno')) {
  const [cmd, ...pre] = denoBinary();
  all.push(...(await runAll('deno', cmd, [...pre, 'run', '-A'], files)));
}
const passed = all.reduce((a, r) => a + r.passed, 0);
const total = all.reduce((a, r) => a + r.total, 0);
const badFiles = all.filter((r) => !r.ok).length;
console.log(`\n${badFiles} failing file runs out of ${all.length}`);
console.log(`tests: ${passed} passed, ${total - passed + (badFiles && passed === total ? badFiles : 0)} failed`);
process.exit(badFiles ? 1 : 0);
