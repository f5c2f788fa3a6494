#!/usr/bin/env python3
"""unittest runner for `make test`: a skipped test, an expected failure or an
unexpected success fails the run, and so does a run in which no test ran
(plain `python3 -m unittest` exits 0 on all of these).

    python3 scripts/test-guards/pyunit_strict.py -s guest-sdk/python/tests [-p 'test*.py'] [-t TOP]
        [--name NAME]

Prints, last:
    suite <name>: passed N, failed N, skipped N
<name>: --name, else $TEST_SUITE_NAME, else the start directory.
"""

import argparse
import os
import sys
import unittest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-s", "--start-directory", default=".")
    parser.add_argument("-p", "--pattern", default="test*.py")
    parser.add_argument("-t", "--top-level-directory", default=None)
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)

    name = args.name or os.environ.get("TEST_SUITE_NAME") or os.path.normpath(args.start_directory)
    loader = unittest.TestLoader()
    suite = loader.discover(args.start_directory, pattern=args.pattern, top_level_dir=args.top_level_directory)
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stdout)
    result = runner.run(suite)

    # Import errors of a test module surface as failed `_FailedTest` cases (in errors).
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped) + len(result.expectedFailures)
    passed = result.testsRun - failed - skipped

    problems = []
    if skipped:
        problems.append(f"{skipped} test(s) skipped or expected to fail; make test allows none:")
        problems.extend(f"  skip: {test.id()} ({reason})" for test, reason in result.skipped)
        problems.extend(f"  expectedFailure: {test.id()}" for test, _ in result.expectedFailures)
    if result.unexpectedSuccesses:
        problems.append("unexpected success(es): " + ", ".join(t.id() for t in result.unexpectedSuccesses))
    if result.testsRun == 0:
        problems.append("no test ran at all")
    print()
    if problems:
        print("pyunit_strict: FAILING THE RUN: " + "\n".join(problems))
    print(f"suite {name}: passed {passed}, failed {failed}, skipped {skipped}")
    sys.stdout.flush()
    return 1 if (problems or failed) else 0


if __name__ == "__main__":
    sys.exit(main())
