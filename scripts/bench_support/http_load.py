"""One lean keep-alive HTTP client in its own process, for measuring a server's per-request cost.

    python scripts/bench_support/http_load.py --url http://127.0.0.1:PORT/m/1 --bodies bodies.txt \
        --start-at UNIX_TIME --seconds 5
    # posts each line of bodies.txt (base64) in turn from UNIX_TIME for 5 s; prints JSON latencies

``http.client`` on one persistent connection, so the client's own cost per request is small and
its process does not share a GIL with the server or with other clients.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse

QUERY = "confidence=40&overlap=30&format=json"


def main(argv: list[str] | None = None) -> int:
    """Post until the time is up; print ``{"ms": [...], "failed": n}`` on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the model URL, e.g. http://127.0.0.1:9001/coco/1")
    parser.add_argument("--bodies", required=True, help="a file with one base64 body a line")
    parser.add_argument("--start-at", type=float, required=True, help="time.time() to start measuring at")
    parser.add_argument("--seconds", type=float, required=True, help="how long to measure")
    parser.add_argument("--offset", type=int, default=0, help="first body to send")
    args = parser.parse_args(argv)
    with open(args.bodies, "rb") as handle:
        bodies = [line.strip() for line in handle if line.strip()]
    url = urllib.parse.urlsplit(args.url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=30)
    path = f"{url.path}?{QUERY}"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    def post(body: bytes) -> int:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status

    for i in range(3):
        post(bodies[(args.offset + i) % len(bodies)])
    threading.Event().wait(max(0.0, args.start_at - time.time()))
    times: list[float] = []
    failed = 0
    deadline = time.perf_counter() + args.seconds
    i = args.offset
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        status = post(bodies[i % len(bodies)])
        took = (time.perf_counter() - started) * 1000
        if status == 200:
            times.append(took)
        else:
            failed += 1
        i += 1
    connection.close()
    json.dump({"ms": times, "failed": failed}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
