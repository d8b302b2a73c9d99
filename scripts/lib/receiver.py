#!/usr/bin/env python3
"""A real HTTP webhook receiver for Herald's tests, demo and failure drills.

Listens on 127.0.0.1 (port 0 = any free port, printed as "PORT <n>" on the first line) and
answers POSTs (and the GET, PUT, PATCH and DELETE a request transform may send) according
to the path:

  /ok                      200
  /fast                    200, status line, headers and body in one write (see _send_at_once)
  /gone/<n>                410 Gone for the first n requests to this path (any id), then 200
  /abort                   500 with "webhook-delivery: abort-message"
  /disable                 503 with "webhook-delivery: disable"
  /failfor/<seconds>       503 until that long after the first request to this path, then 200
  /status/<code>           that status
  /flaky/<n>               500 for the first n attempts of each webhook-id, then 200
  /retry-after/<value>     503 with "Retry-After: <value>" on the first attempt of each id, then 200
  /sleep/<ms>              wait, then 200
  /redirect                302 to /ok
  /huge/<bytes>            200 with a body of that size
  /slowbody/<ms>           200, the body dribbled over that long
  /close                   close the connection without answering
  /chaos/<percent>         500 for that percent of requests at random; one in ten answers
                           after a random 20-150 ms, the others at once
  /failwhen/<text>         500 when the body contains <text> (percent-decoded), else 200
  /echo                    500 whose body is the request line and headers, as careless error
                           pages print them (secrets included)

GET /_requests returns every request received (method, path, headers, body, time) as JSON;
GET /_stats returns {"count", "max_concurrency", "max_concurrency_by_path"}.
With --print each request is printed as one line.
"""
import argparse
import json
import random
import sys
import urllib.parse
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
REQUESTS = []
ATTEMPTS = {}
PATH_COUNTS = {}
FIRST_SEEN = {}
ACTIVE = {"all": 0}
PEAK = {"all": 0}
PRINT = False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _send_at_once(self, status, body=b""):
        # _send writes the headers and the body separately; on a kept-alive connection the
        # second small segment waits for the client's delayed ACK (Nagle), ~40 ms per
        # request, which caps a pool of 16 connections near 400 requests/s. Throughput
        # tests use this path so the receiver is not what they measure.
        head = "HTTP/1.1 %d %s\r\nContent-Length: %d\r\n\r\n" % (status, self.responses[status][0], len(body))
        self.wfile.write(head.encode() + body)

    def do_GET(self):
        with LOCK:
            if self.path == "/_requests":
                body = json.dumps(REQUESTS).encode()
            elif self.path == "/_stats":
                body = json.dumps({"count": len(REQUESTS), "max_concurrency": PEAK["all"],
                                   "max_concurrency_by_path": {k: v for k, v in PEAK.items() if k != "all"}}).encode()
            else:
                body = None
        if body is None:
            # Any other GET is a delivery (a request transform may send GET).
            self.do_POST()
        else:
            self._send(200, body, [("Content-Type", "application/json")])

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self._body = body
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        kind = parts[0] if parts else "ok"
        arg = parts[1] if len(parts) > 1 else ""
        webhook_id = self.headers.get("webhook-id", "")
        with LOCK:
            REQUESTS.append({"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                             "body": body.decode("utf-8", "replace"), "time": time.time()})
            key = (self.path, webhook_id)
            ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
            attempt = ATTEMPTS[key]
            PATH_COUNTS[self.path] = PATH_COUNTS.get(self.path, 0) + 1
            path_count = PATH_COUNTS[self.path]
            first_seen = FIRST_SEEN.setdefault(self.path, time.time())
            ACTIVE["all"] += 1
            ACTIVE[self.path] = ACTIVE.get(self.path, 0) + 1
            PEAK["all"] = max(PEAK["all"], ACTIVE["all"])
            PEAK[self.path] = max(PEAK.get(self.path, 0), ACTIVE[self.path])
        if PRINT:
            print(f"{self.path} webhook-id={webhook_id} {body.decode('utf-8', 'replace')}", flush=True)
        try:
            self._respond(kind, arg, attempt, path_count, first_seen)
        finally:
            with LOCK:
                ACTIVE["all"] -= 1
                ACTIVE[self.path] -= 1

    # A request transform may send any of these; they are answered as POSTs are.
    do_PUT = do_POST
    do_PATCH = do_POST
    do_DELETE = do_POST

    def _respond(self, kind, arg, attempt, path_count=0, first_seen=0.0):
        if kind == "status":
            self._send(int(arg), b"status " + arg.encode())
        elif kind == "echo":
            head = "%s %s\n" % (self.command, self.path) + "".join("%s: %s\n" % item for item in self.headers.items())
            self._send(500, head.encode())
        elif kind == "flaky":
            self._send(500 if attempt <= int(arg) else 200, b"attempt %d" % attempt)
        elif kind == "retry-after":
            if attempt == 1:
                self._send(503, b"busy", [("Retry-After", arg)])
            else:
                self._send(200, b"ok")
        elif kind == "sleep":
            time.sleep(int(arg) / 1000)
            self._send(200, b"ok")
        elif kind == "redirect":
            self._send(302, b"", [("Location", "/ok")])
        elif kind == "huge":
            size = int(arg)
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk = b"x" * 65536
            sent = 0
            while sent < size:
                n = min(len(chunk), size - sent)
                self.wfile.write(chunk[:n])
                sent += n
        elif kind == "slowbody":
            total = int(arg) / 1000
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(total / 10)
        elif kind == "fast":
            self._send_at_once(200, b"ok")
        elif kind == "gone":
            self._send(410 if path_count <= int(arg) else 200, b"gone" if path_count <= int(arg) else b"ok")
        elif kind == "abort":
            self._send(500, b"abort", [("webhook-delivery", "abort-message")])
        elif kind == "disable":
            self._send(503, b"disable", [("webhook-delivery", "disable")])
        elif kind == "failfor":
            if time.time() - first_seen < float(arg):
                self._send(503, b"down")
            else:
                self._send(200, b"ok")
        elif kind == "chaos":
            if random.random() < 0.1:
                time.sleep(random.uniform(0.02, 0.15))
            failed = random.random() < int(arg) / 100
            self._send(500 if failed else 200, b"chaos" if failed else b"ok")
        elif kind == "failevery":
            # Every Nth request to this path fails (N, 2N, …): deterministic, unlike chaos.
            failed = path_count % int(arg) == 0
            self._send(500 if failed else 200, b"every %s" % arg.encode() if failed else b"ok")
        elif kind == "failwhen":
            failed = urllib.parse.unquote(arg).encode() in self._body
            self._send(500 if failed else 200, b"matched" if failed else b"ok")
        elif kind == "close":
            self.close_connection = True
            self.connection.shutdown(2)
        else:
            self._send(200, b"ok")


class Server(ThreadingHTTPServer):
    # The listen backlog is fixed at bind time; the default of 5 drops connections when a
    # worker opens a hundred at once.
    request_queue_size = 1024
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hangs up mid-answer (its timeout ran out on /sleep or /slowbody, or a
        # test ended) is what those paths exist for: not worth a traceback on a passing run.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def main():
    global PRINT
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--print", action="store_true")
    args = parser.parse_args()
    PRINT = args.print
    server = Server(("127.0.0.1", args.port), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
