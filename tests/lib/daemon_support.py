"""Starting and talking to a real bertserve daemon over loopback, for daemon_test.py and
metrics_promtool_test.py (python3 standard library only)."""
import atexit
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

from testlib import need, shared  # noqa: F401 (shared: for the tests that import it from here)


class Daemon:
    """bertserve on 127.0.0.1 and an ephemeral port; stderr (the log) is collected in lines."""

    def __init__(self, build, model, *args, startup_timeout=120):
        exe = need(os.path.join(build, "bertserve"))
        self.proc = subprocess.Popen([exe, "--model", model, "--host", "127.0.0.1", "--port", "0", *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # A script that dies half-way must not leave its daemon running.
        atexit.register(lambda p=self.proc: p.poll() is None and p.kill())
        self.lines = []
        self.port = None
        self._ready = threading.Event()
        # Read the log continuously: a full pipe would block the daemon's log writes.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(startup_timeout) or self.port is None:
            self.proc.kill()
            self.proc.wait()
            self._reader.join()
            sys.exit("FAIL: the daemon did not become ready:\n" + "".join(self.lines))

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            # The "ready" event, in the text or the JSON log format.
            m = re.search(r" ready .* port=(\d+)", line) or re.search(r'"event":"ready".*"port":(\d+)', line)
            if m:
                self.port = int(m.group(1))
                self._ready.set()
        self._ready.set()  # exited before it was ready

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None):
        """Returns (status, {lower-case header: value}, body bytes)."""
        own = conn is None
        c = conn or self.conn()
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            # Say whether the daemon died (and how) before the caller reports the failure.
            time.sleep(0.2)
            print(f"{method} {path} failed; daemon exit status {self.proc.poll()}; log tail:\n"
                  + "".join(self.lines[-20:]), file=sys.stderr, flush=True)
            raise
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if own:
            c.close()
        return r.status, hdrs, data

    def predict(self, payload, headers=None):
        status, hdrs, data = self.request("POST", "/predict", payload, headers)
        return status, hdrs, json.loads(data) if data else None

    def wait(self, timeout=60):
        """Waits for a daemon already signalled to exit, without signalling it again (a second
        SIGTERM while draining forces the exit); returns its exit code, None if it hung."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            rc = None
        return self.stop() if rc is not None else rc

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signals the daemon and returns its exit code (None if it did not exit in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self._reader.join(10)
        return rc

    def sanitizer_reports(self):
        text = "".join(self.lines)
        return [m for m in ("AddressSanitizer", "LeakSanitizer", "runtime error:") if m in text]


def metric_values(text):
    """{ 'name{labels}': value } from a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out
