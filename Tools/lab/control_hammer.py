#!/usr/bin/env python3
"""Hammers a vxrouter control endpoint (TCP with a token) for the fault tests, all at once:

  - requests: N requests over --workers threads, a mix of reads (health, stats, remotes, fdb,
    flood, config, metrics) and changes (a static entry added and deleted again), each on its own
    connection; every answer must be 2xx (a change of an entry that another thread just deleted
    may be 404);
  - slow clients: --slow connections that send their request a few bytes at a time;
  - abandoned clients: connections closed halfway through the request line, after the headers of
    a request with a body that never comes, or right after the request without reading the answer;
  - event streams: --events connections to /v1/events held open without reading, then dropped;
  - capture streams: live captures started one after another and dropped after a moment (one
    capture runs at a time: 409 for a second is a correct answer, counted apart).

    control_hammer.py --host 127.0.0.1 --port 4790 --token T --requests 3000 --workers 8

Prints one JSON object: counts per kind and status, and "failures" (a list of what went wrong);
exits 1 when anything failed (a 5xx, a refused connection, a wrong status, a timeout).
"""
import argparse
import json
import random
import socket
import sys
import threading
import time

failures = []
counts = {}
lock = threading.Lock()


def note(kind, failure=None):
    with lock:
        counts[kind] = counts.get(kind, 0) + 1
        if failure:
            failures.append(f"{kind}: {failure}")


def connect(args):
    s = socket.create_connection((args.host, args.port), timeout=args.timeout)
    s.settimeout(args.timeout)
    return s


def request_bytes(args, method, path, body=None):
    head = f"{method} {path} HTTP/1.1\r\nHost: vxrouter\r\nAuthorization: Bearer {args.token}\r\nConnection: close\r\n"
    data = b""
    if body is not None:
        data = json.dumps(body).encode()
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    return (head + "\r\n").encode() + data


def exchange(args, method, path, body=None):
    """One request on its own connection; returns the status."""
    s = connect(args)
    try:
        s.sendall(request_bytes(args, method, path, body))
        reply = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
        line = reply.split(b"\r\n", 1)[0].split()
        return int(line[1]) if len(line) >= 2 else 0
    finally:
        s.close()


def requests_worker(args, worker, count):
    reads = ["/v1/health", "/v1/stats", "/v1/remotes", "/v1/networks", "/v1/networks/42/fdb",
             "/v1/networks/42/flood", "/v1/config", "/metrics", "/v1/capture", "/v1/version"]
    rng = random.Random(worker)
    for i in range(count):
        try:
            if i % 5 == 4:
                mac = f"02:5f:00:{worker:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"
                status = exchange(args, "POST", "/v1/networks/42/fdb", {"mac": mac, "remote": args.remote})
                ok = status in (200, 201)
                note("change", None if ok else f"POST fdb {mac}: {status}")
                status = exchange(args, "DELETE", f"/v1/networks/42/fdb/{mac}")
                note("change", None if status == 200 else f"DELETE fdb {mac}: {status}")
            else:
                path = rng.choice(reads)
                status = exchange(args, "GET", path)
                note("read", None if status == 200 else f"GET {path}: {status}")
        except OSError as error:
            note("read", f"request {i}: {type(error).__name__}: {error}")


def slow_client(args, n):
    try:
        s = connect(args)
        data = request_bytes(args, "GET", "/v1/stats")
        for k in range(0, len(data), 7):
            s.sendall(data[k:k + 7])
            time.sleep(args.slow_delay)
        reply = s.recv(64)
        s.close()
        note("slow", None if reply.startswith(b"HTTP/1.1 200") else f"slow client {n}: {reply[:40]!r}")
    except OSError as error:
        note("slow", f"slow client {n}: {type(error).__name__}: {error}")


def abandoned_client(args, n):
    try:
        s = connect(args)
        style = n % 3
        if style == 0:
            s.sendall(b"GET /v1/sta")  # half a request line
        elif style == 1:
            s.sendall(b"POST /v1/networks/42/fdb HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{\"mac\"")
        else:
            s.sendall(request_bytes(args, "GET", "/metrics"))  # never reads the answer
        time.sleep(0.05)
        s.close()
        note("abandoned")
    except OSError as error:
        note("abandoned", f"abandoned client {n}: {type(error).__name__}: {error}")


def event_streams(args):
    sockets = []
    try:
        for n in range(args.events):
            s = connect(args)
            s.sendall(request_bytes(args, "GET", "/v1/events").replace(b"Connection: close\r\n", b""))
            head = s.recv(4096)
            if not head.startswith(b"HTTP/1.1 200"):
                note("events", f"event stream {n}: {head[:60]!r}")
            else:
                note("events")
            sockets.append(s)  # held open, never read again
        time.sleep(args.hold)
    except OSError as error:
        note("events", f"event streams: {type(error).__name__}: {error}")
    finally:
        for s in sockets:
            s.close()


def capture_streams(args, deadline):
    n = 0
    while time.monotonic() < deadline:
        try:
            s = connect(args)
            s.sendall(request_bytes(args, "GET", "/v1/capture/stream?points=inner,outer").replace(b"Connection: close\r\n", b""))
            head = s.recv(4096)
            if head.startswith(b"HTTP/1.1 200"):
                note("capture")
                time.sleep(0.3)  # reads nothing more: a slow client, then gone
            elif head.startswith(b"HTTP/1.1 409"):
                note("capture_busy")  # the previous one has not ended yet
            else:
                note("capture", f"capture stream {n}: {head[:60]!r}")
            s.close()
        except OSError as error:
            note("capture", f"capture stream {n}: {type(error).__name__}: {error}")
        n += 1
        time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4790)
    parser.add_argument("--token", required=True)
    parser.add_argument("--remote", default="198.18.0.2", help="remote VTEP for the static entries added")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--slow", type=int, default=20)
    parser.add_argument("--slow-delay", type=float, default=0.05)
    parser.add_argument("--abandoned", type=int, default=300)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--hold", type=float, default=5, help="seconds the event streams stay open")
    parser.add_argument("--timeout", type=float, default=20)
    args = parser.parse_args()

    started = time.monotonic()
    threads = [threading.Thread(target=event_streams, args=(args,))]
    per = args.requests // args.workers
    threads += [threading.Thread(target=requests_worker, args=(args, w, per)) for w in range(args.workers)]
    threads += [threading.Thread(target=slow_client, args=(args, n)) for n in range(args.slow)]
    threads.append(threading.Thread(target=lambda: [abandoned_client(args, n) for n in range(args.abandoned)]))
    for t in threads:
        t.start()
    capture = threading.Thread(target=capture_streams, args=(args, time.monotonic() + 8))
    capture.start()
    for t in threads + [capture]:
        t.join()
    print(json.dumps({"seconds": round(time.monotonic() - started, 1), "counts": counts, "failures": failures[:20],
                      "failure_count": len(failures)}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
