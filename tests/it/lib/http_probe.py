#!/usr/bin/env python3
"""http_probe.py — raw-socket HTTP clients for tests/it/test_http_limits.sh: what curl cannot
do (hold many connections, choose the source address, send a request a byte at a time, send
headers and withhold the body). Each command prints one line per finding and exits 0 when
the server behaved as expected, 1 otherwise (the line says what it saw instead).

  conn-cap PORT CAP               CAP connections from 127.0.0.1 are served, the next one from
                                  127.0.0.1 is closed unanswered, one from 127.0.0.2 is served,
                                  and once one of the CAP closes, 127.0.0.1 is served again
  slow-head PORT TIMEOUT_MS       request headers sent one byte every 200 ms: the server closes
                                  the connection once TIMEOUT_MS passed (not before), without
                                  answering
  slow-body PORT TIMEOUT_MS PATH  headers complete, a body of Content-Length 4096 sent one byte
                                  every 200 ms: closed at the deadline
  keepalive PORT TIMEOUT_MS       a kept-alive connection idle for 60% of the deadline, then a
                                  request: answered (its own deadline started with it)
  early-413 PORT MAX_BODY PATH    headers announcing a body of 16 x MAX_BODY, no body: a 413
                                  arrives, with Connection: close, and the server closes
  chunked-over PORT MAX_BODY PATH a chunked body sent past MAX_BODY: the server closes the
                                  connection before the body is all sent
  stream-cap PORT CAP PATH        CAP streams (GET PATH) from 127.0.0.1 open (200), the next one
                                  from 127.0.0.1 gets 429, one from 127.0.0.2 gets 200
"""
import socket
import sys
import time


def connect(port, src="127.0.0.1", timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_response(s, deadline_s=5.0):
    """Reads one response (headers, and a body of Content-Length). Returns (status, headers
    dict lower-case, body) or None when the connection ended before a status line."""
    s.settimeout(deadline_s)
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return None
            buf += chunk
    except (ConnectionResetError, socket.timeout, BrokenPipeError):
        return None
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0") or 0)
    try:
        while len(body) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return status, headers, body


def closed_by_server(s, wait_s):
    """True when the server ends the connection (EOF or reset) within wait_s, with no bytes."""
    s.settimeout(wait_s)
    try:
        data = s.recv(4096)
        return data == b"", data
    except ConnectionResetError:
        return True, b""
    except socket.timeout:
        return False, b""


def get(s, path="/healthz", close=False):
    s.sendall(("GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n" %
               (path, "Connection: close\r\n" if close else "")).encode())
    return read_response(s)


def conn_cap(port, cap):
    ok = True
    held = []
    for i in range(cap):
        s = connect(port)
        r = get(s)
        if not r or r[0] != 200:
            print(f"connection {i + 1} of {cap} from 127.0.0.1 not served: {r and r[0]}")
            return 1
        held.append(s)
    print(f"{cap} connections from 127.0.0.1 served and held open")
    extra = connect(port)  # the kernel accepts; the server closes it at once
    try:
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = read_response(extra, 5.0)
    if r is not None:
        print(f"connection {cap + 1} from 127.0.0.1 was answered {r[0]}, expected a close")
        ok = False
    else:
        print(f"connection {cap + 1} from 127.0.0.1 closed unanswered")
    other = connect(port, "127.0.0.2")
    r = get(other, close=True)
    if not r or r[0] != 200:
        print(f"a connection from 127.0.0.2 was not served: {r and r[0]}")
        ok = False
    else:
        print("a connection from 127.0.0.2 served meanwhile (200)")
    for s in held:  # the held ones still work
        r = get(s)
        if not r or r[0] != 200:
            print("a held connection stopped being served")
            ok = False
            break
    held.pop().close()
    t_end = time.monotonic() + 5
    while True:  # the freed slot becomes usable once the server saw the close
        s = connect(port)
        try:
            r = get(s, close=True)
        except (BrokenPipeError, ConnectionResetError):
            r = None
        s.close()
        if r and r[0] == 200:
            print("after one held connection closed, 127.0.0.1 is served again")
            break
        if time.monotonic() > t_end:
            print("after one held connection closed, 127.0.0.1 was still refused after 5 s")
            ok = False
            break
        time.sleep(0.1)
    for s in held:
        s.close()
    return 0 if ok else 1


def dribble(s, data, deadline_s):
    """Sends data one byte every 200 ms until the server closes or deadline_s passes. Returns
    (seconds until the close was seen or None, bytes sent, bytes the server sent)."""
    t0 = time.monotonic()
    got = b""
    for i in range(len(data)):
        if time.monotonic() - t0 > deadline_s:
            return None, i, got
        try:
            s.sendall(data[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - t0, i, got
        closed, more = closed_by_server(s, 0.2)
        got += more
        if closed:
            return time.monotonic() - t0, i + 1, got
    return None, len(data), got


def slow(port, timeout_ms, data, what):
    s = connect(port)
    limit = timeout_ms / 1000.0
    took, sent, got = dribble(s, data, limit + 5.0)
    if took is None:
        print(f"{what}: still open {limit + 5:.1f} s after the start ({sent} bytes sent)")
        return 1
    if took < limit - 0.05:
        print(f"{what}: closed after {took:.2f} s, before the {limit:.1f} s deadline")
        return 1
    if got:
        print(f"{what}: the server answered {got[:40]!r} instead of closing")
        return 1
    print(f"{what}: closed by the server after {took:.2f} s ({sent} bytes sent; deadline "
          f"{limit:.1f} s, swept about once a second)")
    return 0


def slow_head(port, timeout_ms):
    data = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 4000
    return slow(port, timeout_ms, data, "slow headers")


def slow_body(port, timeout_ms, path):
    s_head = ("POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
              "Content-Length: 4096\r\n\r\n" % path).encode()
    s = connect(port)
    s.sendall(s_head)
    t0 = time.monotonic()
    took, sent, got = dribble(s, b"{" + b" " * 4095, timeout_ms / 1000.0 + 5.0)
    limit = timeout_ms / 1000.0
    if took is None:
        print(f"slow body: still open {limit + 5:.1f} s after the headers ({sent} bytes)")
        return 1
    if time.monotonic() - t0 < limit - 0.05:
        print(f"slow body: closed after {took:.2f} s, before the {limit:.1f} s deadline")
        return 1
    if got:
        print(f"slow body: the server answered {got[:40]!r} instead of closing")
        return 1
    print(f"slow body: closed by the server after {took:.2f} s ({sent} body bytes sent)")
    return 0


def keepalive(port, timeout_ms):
    s = connect(port)
    r = get(s)
    if not r or r[0] != 200:
        print("keep-alive: first request not served")
        return 1
    time.sleep(timeout_ms / 1000.0 * 0.6)  # idle, within the deadline: this is the scenario
    # a request that takes most of a deadline of its own: headers now, the rest 0.5 x later
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
    time.sleep(timeout_ms / 1000.0 * 0.5)
    try:
        s.sendall(b"\r\n")
        r = read_response(s)
    except (BrokenPipeError, ConnectionResetError):
        r = None
    if not r or r[0] != 200:
        print("keep-alive: a request started after 0.6 x idle and done within its own "
              f"deadline was cut off ({r and r[0]})")
        return 1
    print("keep-alive: a request after 0.6 x idle, taking 0.5 x, was answered (its deadline "
          "started with its request line)")
    # and an idle kept-alive connection is closed once the deadline passes
    closed, _ = closed_by_server(s, timeout_ms / 1000.0 + 3.0)
    if not closed:
        print("keep-alive: an idle kept-alive connection outlived the deadline by 3 s")
        return 1
    print("keep-alive: the idle connection was then closed at the deadline")
    return 0


def early_413(port, max_body, path):
    s = connect(port)
    n = 16 * max_body
    s.sendall(("POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n" % (path, n)).encode())
    r = read_response(s, 5.0)  # no body byte was sent
    if not r:
        print(f"413: no answer to headers announcing {n} bytes (nothing of the body sent)")
        return 1
    status, headers, body = r
    ok = True
    if status != 413:
        print(f"413: got {status}, expected 413")
        ok = False
    if headers.get("connection", "").lower() != "close":
        print(f"413: Connection header is {headers.get('connection')!r}, expected close")
        ok = False
    closed, more = closed_by_server(s, 5.0)
    if not closed:
        print("413: the connection stayed open after the answer")
        ok = False
    if ok:
        print(f"413 answered before any of the {n} body bytes was sent, with Connection: "
              f"close, and the connection closed ({body[:80]!r})")
    return 0 if ok else 1


def chunked_over(port, max_body, path):
    s = connect(port)
    s.sendall(("POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\n\r\n" % path).encode())
    chunk = b"%x\r\n%s\r\n" % (1024, b" " * 1024)
    sent = 0
    total = 64 * max_body
    try:
        while sent < total:
            s.sendall(chunk)
            sent += 1024
            if sent > 2 * max_body:
                closed, more = closed_by_server(s, 0.05)
                if closed:
                    break
    except (BrokenPipeError, ConnectionResetError):
        pass
    closed, more = closed_by_server(s, 5.0)
    if sent >= total or not closed:
        print(f"chunked: {sent} bytes taken of a body past the {max_body}-byte limit")
        return 1
    print(f"chunked: the connection was closed after {sent} of {total} bytes "
          f"(limit {max_body})")
    return 0


def open_stream(port, path, src):
    s = connect(port, src)
    s.sendall(("GET %s HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n" %
               path).encode())
    s.settimeout(5.0)
    buf = b""
    while b"\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    line = buf.split(b"\r\n", 1)[0].decode("latin-1")
    return s, (int(line.split()[1]) if line.startswith("HTTP/") else None)


def stream_cap(port, cap, path):
    held = []
    for i in range(cap):
        s, status = open_stream(port, path, "127.0.0.1")
        if status != 200:
            print(f"stream {i + 1} of {cap} from 127.0.0.1: {status}, expected 200")
            return 1
        held.append(s)
    print(f"{cap} streams open from 127.0.0.1")
    ok = True
    s, status = open_stream(port, path, "127.0.0.1")
    if status != 429:
        print(f"stream {cap + 1} from 127.0.0.1: {status}, expected 429")
        ok = False
    else:
        print(f"stream {cap + 1} from 127.0.0.1: 429")
    s.close()
    s, status = open_stream(port, path, "127.0.0.2")
    if status != 200:
        print(f"a stream from 127.0.0.2: {status}, expected 200")
        ok = False
    else:
        print("a stream from 127.0.0.2 meanwhile: 200")
    s.close()
    for h in held:
        h.close()
    return 0 if ok else 1


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "conn-cap":
        return conn_cap(int(args[0]), int(args[1]))
    if cmd == "slow-head":
        return slow_head(int(args[0]), int(args[1]))
    if cmd == "slow-body":
        return slow_body(int(args[0]), int(args[1]), args[2])
    if cmd == "keepalive":
        return keepalive(int(args[0]), int(args[1]))
    if cmd == "early-413":
        return early_413(int(args[0]), int(args[1]), args[2])
    if cmd == "chunked-over":
        return chunked_over(int(args[0]), int(args[1]), args[2])
    if cmd == "stream-cap":
        return stream_cap(int(args[0]), int(args[1]), args[2])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
