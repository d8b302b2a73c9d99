#!/usr/bin/env python3
"""Reads a Herald event stream (GET /v1/stream/TRIGGER, Server-Sent Events) and writes one
JSON line per event: {"cursor", "received_at", "payload"}. Reconnects after a drop with
Last-Event-ID, so no event is lost or repeated. The README's client, with options the tests
and scripts/bench-stream use:

  stream-client.py BASE TRIGGER [--after CURSOR] [--token T] [--out FILE]
      [--disconnect-every N]  close the connection after every N events (and reconnect)
      [--stop-after N]        exit after N events
      [--idle-exit SECONDS]   exit after this long without an event
      [--batch N]             events per read (the stream's `batch`)
      [--count-only]          write nothing per event (for throughput runs)
Token: --token or HERALD_STREAM_TOKEN.
"""
import argparse
import http.client
import json
import os
import sys
import time
import urllib.parse


def stream(base, trigger, cursor, token, idle_exit, batch=None):
    """Yields (cursor, data) for each event of one connection; returns when it ends."""
    url = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=idle_exit)
    headers = {"Accept": "text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cursor:
        headers["Last-Event-ID"] = cursor
    query = f"?batch={batch}" if batch else ""
    connection.request("GET", f"/v1/stream/{urllib.parse.quote(trigger)}{query}", headers=headers)
    response = connection.getresponse()
    if response.status != 200:
        raise SystemExit(f"stream answered {response.status}: {response.read().decode()}")
    event_id, data = None, []
    try:
        for raw in response:
            line = raw.decode().rstrip("\r\n")
            if line == "":
                if data:
                    yield event_id, "\n".join(data)
                elif event_id:
                    yield event_id, None  # the cursor moved without an event
                event_id, data = None, []
            elif line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif line.startswith("event:") and line[6:].strip() == "gone":
                raise SystemExit("the cursor is older than retention: " + response.read().decode())
    finally:
        connection.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("trigger")
    parser.add_argument("--after")
    parser.add_argument("--token", default=os.environ.get("HERALD_STREAM_TOKEN"))
    parser.add_argument("--out")
    parser.add_argument("--disconnect-every", type=int, default=0)
    parser.add_argument("--stop-after", type=int, default=0)
    parser.add_argument("--idle-exit", type=float, default=30)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--count-only", action="store_true")
    args = parser.parse_args()
    out = open(args.out, "a") if args.out else sys.stdout
    cursor, count, reconnects = args.after, 0, 0
    last_progress = time.monotonic()
    while True:
        since_connect = 0
        try:
            for event_id, data in stream(args.base, args.trigger, cursor, args.token, args.idle_exit, args.batch):
                cursor = event_id or cursor
                if data is None:
                    continue
                if not args.count_only:
                    out.write(json.dumps({"cursor": event_id, "received_at": time.time(), "payload": json.loads(data)}) + "\n")
                    out.flush()
                count += 1
                since_connect += 1
                last_progress = time.monotonic()
                if args.stop_after and count >= args.stop_after:
                    out.flush()
                    print(f"{count} events, {reconnects} reconnects", file=sys.stderr)
                    return
                if args.disconnect_every and since_connect >= args.disconnect_every:
                    break  # closes the connection; the loop resumes from `cursor`
        except (TimeoutError, OSError) as error:
            if isinstance(error, TimeoutError) or "timed out" in str(error):
                out.flush()
                print(f"{count} events, {reconnects} reconnects; idle for {args.idle_exit} s", file=sys.stderr)
                return
            if time.monotonic() - last_progress > args.idle_exit:
                raise SystemExit(f"no event for {args.idle_exit} s; last error: {error}")
            time.sleep(1)  # the worker restarting: try again
        out.flush()
        reconnects += 1


if __name__ == "__main__":
    main()
