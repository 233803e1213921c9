"""What the Python tests share: where the assets are, a loud failure when one is missing (a
test never skips itself), and a check that records a failure and carries on."""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
shared = os.environ.get("BERTSERVE_SHARED") or os.path.join(here, "..", "..", "..", "shared")
_failures = 0


def need(path):
    """Returns path, or fails the whole test if it does not exist."""
    if not os.path.exists(path):
        sys.exit(f"FAIL: required test asset {path} is missing (set BERTSERVE_SHARED)")
    return path


def check(cond, msg):
    """Counts and prints a failed check; returns cond so callers can stop early."""
    global _failures
    if not cond:
        _failures += 1
        print("FAIL:", msg, flush=True)
    return cond


def finish(name):
    """Exits non-zero if any check failed."""
    if _failures:
        sys.exit(f"{name}: {_failures} check(s) failed")
    print(f"{name}: all checks passed")
