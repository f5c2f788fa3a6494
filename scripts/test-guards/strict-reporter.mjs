/**
 * node:test reporter for `make test`: readable output (the built-in `spec`
 * reporter, forwarded unchanged) plus two guards the default runner lacks.
 *
 * - A skipped or todo test fails the run. `node --test` counts both as
 *   passes, so a suite whose every test skips itself (a missing binary, an
 *   unbuilt artifact, a forgotten `{ skip }`) would turn `make test` green
 *   without testing anything. Here it sets a non-zero exit code.
 * - A run in which no test ran at all fails too.
 *
 * Tests left out on purpose by `--test-name-pattern` (Node reports them as
 * skipped with the message "test name does not match pattern") are counted
 * as `filtered` and do not fail the run: that is a developer narrowing a
 * local run, never what `make test` does.
 *
 * Last line of output, always:
 *   suite <name>: passed N, failed N, skipped N
 * where <name> is $TEST_SUITE_NAME, else the working directory's path
 * relative to the repository root (or its basename outside it).
 *
 * Use:
 *   node --test --test-reporter=<repo>/scripts/test-guards/strict-reporter.mjs \
 *     --test-reporter-destination=stdout <files>
 */

import { basename, dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spec as Spec } from 'node:test/reporters';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FILTERED = 'test name does not match pattern';

function suiteName() {
  if (process.env.TEST_SUITE_NAME) return process.env.TEST_SUITE_NAME;
  const rel = relative(REPO_ROOT, process.cwd());
  if (rel === '') return basename(REPO_ROOT);
  return rel.startsWith('..') ? basename(process.cwd()) : rel;
}

function testName(data) {
  return data.file && data.name !== data.file ? `${data.name} (${relative(process.cwd(), data.file)})` : data.name;
}

/** Tallies one event; returns nothing (the spec reporter prints). */
function tally(counts, event) {
  const { type, data } = event;
  if (type !== 'test:pass' && type !== 'test:fail') return;
  const isSuite = data.details?.type === 'suite';
  if (data.skip !== undefined && data.skip !== false) {
    if (data.skip === FILTERED) {
      if (!isSuite) counts.filtered += 1;
    } else {
      counts.skipped += 1;
      counts.offenders.push(`skip: ${testName(data)}${typeof data.skip === 'string' ? ` (${data.skip})` : ''}`);
    }
    return;
  }
  if (data.todo !== undefined && data.todo !== false) {
    counts.skipped += 1;
    counts.offenders.push(`todo: ${testName(data)}${typeof data.todo === 'string' ? ` (${data.todo})` : ''}`);
    return;
  }
  if (type === 'test:pass') {
    if (!isSuite) counts.passed += 1;
    return;
  }
  // A suite that failed only because tests inside it failed is already counted.
  if (isSuite && data.details?.error?.failureType === 'subtestsFailed') return;
  counts.failed += 1;
}

export default async function* strictReporter(source) {
  const counts = { passed: 0, failed: 0, skipped: 0, filtered: 0, offenders: [] };
  const spec = new Spec();
  const pending = [];
  spec.on('data', (chunk) => pending.push(chunk));
  const write = (event) =>
    new Promise((res, rej) => {
      spec.write(event, (err) => (err ? rej(err) : res()));
    });

  for await (const event of source) {
    tally(counts, event);
    await write(event);
    while (pending.length > 0) yield pending.shift();
  }
  await new Promise((res) => spec.end(res));
  // Whatever spec flushes at the end (its failure recap).
  await new Promise((res) => setImmediate(res));
  while (pending.length > 0) yield pending.shift();

  const ran = counts.passed + counts.failed + counts.skipped;
  const problems = [];
  if (counts.skipped > 0) {
    problems.push(`${counts.skipped} test(s) skipped or todo; make test allows none:`);
    for (const line of counts.offenders) problems.push(`  ${line}`);
  }
  if (ran === 0) problems.push('no test ran at all');
  if (problems.length > 0 || counts.failed > 0) process.exitCode = 1;

  let out = '\n';
  if (problems.length > 0) out += `strict-reporter: FAILING THE RUN: ${problems.join('\n')}\n`;
  const filtered = counts.filtered > 0 ? ` (${counts.filtered} filtered out by --test-name-pattern)` : '';
  out += `suite ${suiteName()}: passed ${counts.passed}, failed ${counts.failed}, skipped ${counts.skipped}${filtered}\n`;
  yield out;
}
