#!/usr/bin/env python3
"""The daemon against hostile HTTP, over raw loopback sockets (tiny-bert and finsent-mini):
  - request smuggling: two Content-Length headers, Transfer-Encoding with Content-Length, an
    unknown transfer coding: 400 bad_request or 501 not_implemented, at once, and the
    connection closed, so no second request is read from the body;
  - bodies: trailing data after the JSON value and raw control bytes inside strings are 400
    invalid_json; a chunked body over --max-body-bytes is answered 413 and closed;
  - memory: bodies held across connections stop at --max-buffered-bytes (429 beyond), the
    daemon's memory stays bounded under 450 clients each sending all but the last byte of a
    2 MB body, and is given back when they leave;
  - answers and logs stay valid UTF-8 and, with --log-format json, one JSON object per line,
    libmicrohttpd's own messages and --log-text's refused texts included; a path with %00 is not
    routed; SIGUSR1/SIGUSR2 are ignored;
  - a client that sends its headers a byte at a time is closed at --header-timeout-seconds, so
    such clients cannot keep /health from answering;
  - a vocab.txt with more tokens than config.json's vocab_size fails at startup, naming it;
  - after each, /predict still answers correctly.
usage: hardening_test.py BUILD_DIR"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from daemon_support import Daemon  # noqa: E402
from testlib import check, finish, need, shared  # noqa: E402

build = sys.argv[1]
tiny = need(os.path.join(shared, "models", "tiny-bert"))
finsent = need(os.path.join(shared, "models", "finsent-mini"))
row = next(json.loads(line) for line in open(need(os.path.join(shared, "golden", "tiny-bert", "logits.jsonl")))
           if json.loads(line)["id"] == "clear-000")
ASAN = "build-asan" in os.path.abspath(build)
HEAD = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


def exchange(port, raw, timeout=10):
    """Sends raw bytes on a new connection; returns everything the daemon sent until it closed
    the connection (or timeout), and whether it closed it."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(raw)
    got, closed, deadline = b"", False, time.time() + timeout
    try:
        while time.time() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            got += chunk
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return got, closed


def responses(data):
    """The (status, headers, body) of each HTTP response in data."""
    out = []
    while data.startswith(b"HTTP/1.1 "):
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        hdrs = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        n = int(hdrs.get("content-length", "0"))
        out.append((int(lines[0].split()[1]), hdrs, rest[:n]))
        data = rest[n:]
    return out


def still_serves(d, what):
    status, _, got = d.predict({"text": row["text"]})
    check(status == 200 and got.get("prediction") == row["label"], f"after {what}: /predict {status} {got}")


def refused_and_closed(d, raw, status, error_type, what, timeout=10):
    t0 = time.time()
    got, closed = exchange(d.port, raw, timeout)
    rs = responses(got)
    check(len(rs) == 1 and rs[0][0] == status, f"{what}: want one {status}, got {[r[0] for r in rs]} {got[:300]!r}")
    if rs:
        body = json.loads(rs[0][2])
        check(body.get("error_type") == error_type, f"{what}: error_type {body}")
        check(rs[0][1].get("connection", "").lower() == "close", f"{what}: no Connection: close {rs[0][1]}")
    check(closed and time.time() - t0 < timeout / 2, f"{what}: connection not closed at once ({time.time() - t0:.1f} s)")
    still_serves(d, what)


d = Daemon(build, tiny, "--log-format", "json", "--max-body-bytes", "4000")

# ---- request smuggling (RFC 9112 section 6.3) -------------------------------------------------
smuggled = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
body = b'{"text":"Profit rose."}'
refused_and_closed(d, HEAD + b"Content-Length: 23\r\nContent-Length: 55\r\n\r\n" + body + smuggled, 400,
                   "bad_request", "two Content-Length headers")
refused_and_closed(d, HEAD + b"Content-Length: 23\r\nContent-Length: 23\r\n\r\n" + body, 400, "bad_request",
                   "two equal Content-Length headers")
chunked = b"17\r\n" + body + b"\r\n0\r\n\r\n"
refused_and_closed(d, HEAD + b"Transfer-Encoding: chunked\r\nContent-Length: 23\r\n\r\n" + chunked + smuggled, 400,
                   "bad_request", "Transfer-Encoding with Content-Length")
refused_and_closed(d, HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n" + chunked, 501, "not_implemented",
                   "Transfer-Encoding gzip, chunked")
refused_and_closed(d, HEAD + b"Transfer-Encoding: identity\r\n\r\n" + body, 501, "not_implemented",
                   "Transfer-Encoding identity without a length")
# A plain chunked body is still fine, and the connection stays open for the next request.
got, closed = exchange(d.port, HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked + b"GET /health HTTP/1.1\r\n"
                       b"Host: x\r\n\r\n", timeout=3)
check([r[0] for r in responses(got)] == [200, 200], f"chunked then /health on one connection: {got[:400]!r}")

# ---- bodies that are not one JSON value -------------------------------------------------------
for raw, what, frag in [(b'{"text":"Profit rose."} xyz', "trailing data", b"after the JSON value"),
                        (b'{"text":"a"}{"text":"b"}', "two JSON values", b"after the JSON value"),
                        (b'{"text":"Profit\x00 rose sharply."}', "a raw NUL in a string", b"(0x00)"),
                        (b'{"text":"Profit\x07 rose"}', "a raw BEL in a string", b"(0x07)")]:
    rs = responses(exchange(d.port, HEAD + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(raw) + raw)[0])
    check(len(rs) == 1 and rs[0][0] == 400 and b"invalid_json" in rs[0][2] and frag in rs[0][2],
          f"{what}: {rs}")
still_serves(d, "bodies that are not one JSON value")

# A chunked body over --max-body-bytes: read and dropped, then 413 and the connection closed.
piece = b"200\r\n" + b" " * 512 + b"\r\n"
got, closed = exchange(d.port, HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + piece * 10 + b"0\r\n\r\n")
rs = responses(got)
check(len(rs) == 1 and rs[0][0] == 413 and b"payload_too_large" in rs[0][2] and closed,
      f"chunked body over the limit: {got[:300]!r} closed={closed}")
still_serves(d, "a chunked body over the limit")

# ---- answers and logs stay valid UTF-8 and JSON ------------------------------------------------
for raw, what in [(b"GET /%ff%fe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "a path of invalid UTF-8"),
                  (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: text/\xff\xfe\r\nContent-Length: 2\r\n"
                   b"Connection: close\r\n\r\n{}", "a Content-Type of invalid UTF-8")]:
    rs = responses(exchange(d.port, raw)[0])
    try:
        ok = len(rs) == 1 and rs[0][0] in (404, 415) and json.loads(rs[0][2].decode("utf-8"))["error"]
    except (UnicodeDecodeError, ValueError) as e:
        ok = False
        print(e)
    check(ok, f"{what}: the answer is not valid UTF-8 JSON: {rs}")
rs = responses(exchange(d.port, b"GET /predict%00xyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0])
check(len(rs) == 1 and rs[0][0] == 404, f"/predict%00xyz is routed: {rs}")
# libmicrohttpd's own message for a client that leaves mid-request goes through the JSON log.
s = socket.create_connection(("127.0.0.1", d.port))
s.sendall(HEAD + b"Content-Length: 100\r\n\r\n{\"te")
time.sleep(0.3)
s.close()
for sig in (signal.SIGUSR1, signal.SIGUSR2):
    d.proc.send_signal(sig)
time.sleep(0.5)
check(d.proc.poll() is None, f"SIGUSR1/SIGUSR2 killed the daemon: exit {d.proc.poll()}")
still_serves(d, "SIGUSR1 and SIGUSR2")
rc = d.stop()
check(rc == 0, f"exit code {rc}")
bad = []
for line in d.lines:
    try:
        json.loads(line)
    except ValueError:
        bad.append(line)
check(not bad, f"--log-format json printed lines that are not JSON: {bad[:5]}")
check(any('"event":"http_library"' in line for line in d.lines), "no http_library event for the client that left")

# ---- --log-text with JSON logs: a refused text of invalid UTF-8 still makes a valid JSON line ----
log_path = os.path.join(build, "hardening_log_text.log")
with open(log_path, "wb") as log:
    p = subprocess.Popen([os.path.join(build, "bertserve"), "--model", tiny, "--host", "127.0.0.1", "--port", "0",
                          "--log-format", "json", "--log-text"], stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.time() + 60
    port = None
    while port is None and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
        for line in open(log_path, "rb"):
            if b'"event":"ready"' in line:
                port = json.loads(line)["port"]
    check(port is not None, "the --log-text daemon did not start")
    if port:
        raw = b'{"text":"bad\xffbytes"}'
        raw = HEAD + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(raw) + raw
        rs = responses(exchange(port, raw)[0])
        check(len(rs) == 1 and rs[0][0] == 422, f"a text of invalid UTF-8: {rs}")
    p.send_signal(signal.SIGTERM)
    p.wait(60)
lines = open(log_path, "rb").read().splitlines()
logged = [line for line in lines if b'"event":"request"' in line]
try:
    texts = [json.loads(line.decode("utf-8")).get("texts") for line in logged]
except (UnicodeDecodeError, ValueError) as e:
    texts = [repr(e)]
check(texts == [["bad\ufffdbytes"]], f"--log-text line for a text of invalid UTF-8: {texts} {logged}")

# ---- a vocab.txt with more tokens than config.json's vocab_size fails at startup -------------
bad_model = os.path.join(build, "hardening_big_vocab")
shutil.rmtree(bad_model, ignore_errors=True)
shutil.copytree(tiny, bad_model)
with open(os.path.join(bad_model, "vocab.txt"), "a") as v:
    v.write("extratoken\n")
p = subprocess.run([os.path.join(build, "bertserve"), "--model", bad_model, "--port", "0"], capture_output=True,
                   timeout=60)
check(p.returncode == 1 and b"vocab.txt: 30523 tokens, more than config.json's vocab_size of 30522" in p.stderr,
      f"vocab.txt larger than vocab_size: exit {p.returncode} {p.stderr[-300:]!r}")
shutil.rmtree(bad_model)

# ---- slow headers: a request line one byte every half second no longer holds a slot for good ---
# Every connection slot (here 16) held by such a client: /health answers again once the header
# deadline (here 2 s) has shut them down, and they are closed.
sl = Daemon(build, tiny, "--max-connections", "16", "--header-timeout-seconds", "2")
slow = []
for i in range(16):
    s = socket.create_connection(("127.0.0.1", sl.port), timeout=5)
    s.sendall(b"G")
    slow.append(s)
t0 = time.time()
health = None
for step in range(40):  # 20 s at most; each slow client sends a byte every 0.5 s meanwhile
    for s in slow:
        try:
            s.send(b"E")
        except OSError:
            pass
    if health is None:
        try:
            c = socket.create_connection(("127.0.0.1", sl.port), timeout=0.4)
            c.settimeout(0.4)
            c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            got = c.recv(4096)
            c.close()
            if got.startswith(b"HTTP/1.1 200"):
                health = time.time() - t0
        except OSError:
            pass
    time.sleep(0.5)
    if health is not None:
        break
closed = 0
for s in slow:
    try:
        s.setblocking(False)
        closed += s.recv(1) == b""
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
    s.close()
check(health is not None and health < 8, f"/health under 16 slow-header clients: answered after {health} s")
check(closed == 16, f"slow-header clients closed by the deadline: {closed} of 16")
still_serves(sl, "slow-header clients")
check(sl.stop() == 0, "slow headers: exit code")

# ---- memory: the bodies held across connections are bounded ----------------------------------
def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


# Ten clients each declaring 1 MB bodies against a 4 MB budget: at most 4 are held, the rest 429.
b = Daemon(build, tiny, "--max-buffered-bytes", "4000000", "--max-body-bytes", "2000000")
held = []
codes = []
for i in range(10):
    s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
    s.sendall(HEAD + b"Content-Length: 1000000\r\n\r\n" + b" " * 1000)
    held.append(s)
time.sleep(0.5)
for s in held:
    s.setblocking(False)
    try:
        data = s.recv(65536)
        codes.append(responses(data)[0][0] if data else "closed")
    except BlockingIOError:
        codes.append("held")
check(codes.count("held") == 3 and codes.count(429) == 7,
      f"1 MB bodies against a 4 MB budget: want 3 held (4 would pass the limit by the NUL) and 7 x 429: {codes}")
for s in held:
    s.close()
time.sleep(0.5)
# The budget is given back: a whole 1 MB body (padded JSON) now passes.
padded = b'{"text":"' + row["text"].encode() + b'"}' + b" " * 999000
rs = responses(exchange(b.port, HEAD + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(padded) + padded)[0])
check(len(rs) == 1 and rs[0][0] == 200, f"a 1 MB body after the others left: {[r[0] for r in rs]}")
b.stop()

# The probe's attack on finsent-mini at the default limits: 450 clients each sending all but the
# last byte of a 2 MB body. Before the bound the daemon went from 76 MB to 957 MB.
f = Daemon(build, finsent, "--max-connections", "1000")


def still():
    status, _, got = f.predict({"text": "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn"})
    check(status == 200 and got.get("prediction") == "positive", f"with 450 clients holding bodies: {status} {got}")


start = rss_mb(f.proc.pid)
clients = []
for i in range(450):
    s = socket.create_connection(("127.0.0.1", f.port), timeout=5)
    s.sendall(HEAD + b"Content-Length: 1999000\r\n\r\n")
    clients.append(s)
for s in clients:
    try:
        s.settimeout(2)
        s.sendall(b" " * 1998999)
    except OSError:
        pass  # refused with 429 and closed
time.sleep(1)
during = rss_mb(f.proc.pid)
still()
for s in clients:
    s.close()
time.sleep(2)
after = rss_mb(f.proc.pid)
print(f"finsent-mini RSS: {start:.0f} MB at rest, {during:.0f} MB with 450 clients holding 2 MB bodies, "
      f"{after:.0f} MB after they left")
if not ASAN:  # AddressSanitizer's allocator keeps freed memory in quarantine: RSS says nothing there
    check(during < start + 64 + 40, f"memory under 450 held bodies: {during:.0f} MB from {start:.0f} MB")
    check(after < start + 24, f"memory not given back: {after:.0f} MB from {start:.0f} MB")
still()
check(f.stop() == 0, "finsent-mini exit code")
check(not f.sanitizer_reports(), f"sanitizer reports: {f.sanitizer_reports()}")

finish("hardening_test")
