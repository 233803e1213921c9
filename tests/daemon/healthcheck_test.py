#!/usr/bin/env python3
"""`bertserve --healthcheck` against a real daemon (tiny-bert) and against a port that refuses
or never answers; and /info's cpus and cpu_source.
usage: healthcheck_test.py BUILD_DIR"""
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon, need, shared  # noqa: E402
from testlib import check, finish  # noqa: E402

build = sys.argv[1]
exe = need(os.path.join(build, "bertserve"))
env = {k: v for k, v in os.environ.items() if not k.startswith("BERTSERVE_")}


def probe(*args, **extra_env):
    t0 = time.monotonic()
    p = subprocess.run([exe, "--healthcheck", *args], capture_output=True, text=True, timeout=30,
                       env={**env, **extra_env})
    return p.returncode, p.stderr, time.monotonic() - t0


d = Daemon(build, need(os.path.join(shared, "models", "tiny-bert")))
rc, err, _ = probe("--host", "127.0.0.1", "--port", str(d.port))
check(rc == 0 and not err, f"healthy daemon: exit {rc} {err}")
rc, err, _ = probe(BERTSERVE_HOST="0.0.0.0", BERTSERVE_PORT=str(d.port))
check(rc == 0, f"0.0.0.0 from the environment is asked on loopback: exit {rc} {err}")
status, _, body = d.request("GET", "/info")
info = json.loads(body)
check(isinstance(info.get("cpus"), int) and info["cpus"] >= 1 and info.get("cpu_source"), f"/info: {info}")
check(info["threads_per_worker"] == max(1, info["cpus"] // info["workers"]), f"threads from cpus: {info}")
check(any("cpu_source=" in line for line in d.lines if " loaded " in line), "the loaded line lacks cpu_source")
check(d.stop() == 0, "daemon exit code")

# Refused (the daemon is gone), port 0, and a listener that never answers (the timeout).
rc, err, _ = probe("--host", "127.0.0.1", "--port", str(d.port))
check(rc == 1 and "unhealthy" in err, f"stopped daemon: exit {rc} {err}")
rc, err, _ = probe("--host", "127.0.0.1", "--port", "0")
check(rc == 1 and "port" in err, f"port 0: exit {rc} {err}")
silent = socket.socket()
silent.bind(("127.0.0.1", 0))
silent.listen()
rc, err, took = probe("--host", "127.0.0.1", "--port", str(silent.getsockname()[1]))
silent.close()
check(rc == 1 and "no answer" in err and 2.5 < took < 10, f"silent listener: exit {rc} after {took:.1f} s: {err}")
rc, err, _ = probe("--port", "nope")
check(rc == 2, f"a bad flag with --healthcheck: exit {rc}")
finish("healthcheck")
