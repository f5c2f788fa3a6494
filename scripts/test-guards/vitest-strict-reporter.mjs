/**
 * Vitest reporter for `make test` (add it next to 'default' in a config's
 * `reporters`): a skipped or todo test fails the run, and so does a run in
 * which no test ran. Vitest itself counts skips as passes, so a suite whose
 * every test is skipped (unconditionally or by a condition) or todo would otherwise be
 * green without testing anything.
 *
 * Tests left out by `-t/--testNamePattern` are counted as `filtered` and do
 * not fail the run (a developer narrowing a local run, never `make test`).
 *
 * Prints, last:
 *   suite <name>: passed N, failed N, skipped N
 * <name>: the reporter option `name`, else $TEST_SUITE_NAME, else the
 * project root's basename.
 *
 *   reporters: ['default', [fileURLToPath(new URL('../scripts/test-guards/vitest-strict-reporter.mjs', import.meta.url)), { name: 'rtm-sdk unit' }]]
 *
 * Plain JavaScript with no imports, so it loads from outside the package.
 */
/** A test that never ran because a hook of its file or suite failed is a failure, not a skip. */
function underFailedParent(test) {
  for (let p = test.parent; p; p = p.parent) {
    if (typeof p.state === 'function' && p.state() === 'failed') return true;
    if (p.type === 'module') break;
  }
  return false;
}

export default class StrictReporter {
  constructor(options = {}) {
    this.options = options;
    this.vitest = undefined;
  }

  onInit(vitest) {
    this.vitest = vitest;
  }

  onTestRunEnd(testModules, unhandledErrors = [], reason = 'passed') {
    const filtering = Boolean(this.vitest?.config?.testNamePattern);
    const counts = { passed: 0, failed: 0, skipped: 0, filtered: 0 };
    const offenders = [];
    for (const mod of testModules) {
      let tests = 0;
      for (const test of mod.children.allTests()) {
        tests += 1;
        const result = test.result();
        const mode = test.options?.mode;
        const where = `${test.fullName} (${mod.moduleId})`;
        if (result.state === 'passed') counts.passed += 1;
        else if (result.state === 'failed' || underFailedParent(test)) counts.failed += 1;
        else if (mode === 'todo') {
          counts.skipped += 1;
          offenders.push(`todo: ${where}`);
        } else if (filtering && mode === 'skip' && !result.note) {
          counts.filtered += 1;
        } else {
          counts.skipped += 1;
          offenders.push(`${result.state === 'pending' ? 'not run' : 'skip'}: ${where}${result.note ? ` (${result.note})` : ''}`);
        }
      }
      // A file that failed to load or whose hooks failed before collecting tests.
      const state = mod.state();
      if (tests === 0 && state !== 'skipped') counts.failed += state === 'failed' ? 1 : 0;
      if (tests === 0 && state === 'skipped') {
        counts.skipped += 1;
        offenders.push(`skip: every test of ${mod.moduleId}`);
      }
    }
    const ran = counts.passed + counts.failed + counts.skipped;
    const problems = [];
    if (counts.skipped > 0) {
      problems.push(`${counts.skipped} test(s) skipped, todo or not run; make test allows none:`);
      for (const line of offenders) problems.push(`  ${line}`);
    }
    if (ran === 0) problems.push('no test ran at all');
    if (problems.length > 0 || counts.failed > 0 || unhandledErrors.length > 0 || reason === 'failed') {
      process.exitCode = 1;
    }
    const name = this.options.name ?? process.env.TEST_SUITE_NAME ?? this.vitest?.config?.root?.split('/').pop() ?? 'vitest';
    let out = '\n';
    if (problems.length > 0) out += `vitest-strict-reporter: FAILING THE RUN: ${problems.join('\n')}\n`;
    const filtered = counts.filtered > 0 ? ` (${counts.filtered} filtered out by --testNamePattern)` : '';
    out += `suite ${name}: passed ${counts.passed}, failed ${counts.failed}, skipped ${counts.skipped}${filtered}\n`;
    // Vitest's default reporter prints its own summary after this hook returns;
    // ours goes last, when the process exits (stdout is synchronous on Linux).
    process.once('exit', () => process.stdout.write(out));
  }
}
