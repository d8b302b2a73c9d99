#!/usr/bin/env python3
"""A Herald pull consumer: receives a consumer group's events from the worker's listener,
handles them, and acknowledges them. Also the tests' consumer (see --ack and --out).

  HERALD_CONSUMER_TOKEN=... pull-consumer.py http://127.0.0.1:9090 billing
"""
import argparse, json, os, sys, time, urllib.request

def call(base, consumer, verb, body, token):
    request = urllib.request.Request(
        f"{base}/v1/consumers/{consumer}/{verb}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base"), parser.add_argument("consumer")
    parser.add_argument("--max", type=int, default=100)
    parser.add_argument("--wait-ms", type=int, default=2000)
    parser.add_argument("--ack", choices=["ack", "never"], default="ack")
    parser.add_argument("--idle-exit", type=float, default=0, help="stop after this many seconds with no events")
    parser.add_argument("--out", help="append one JSON line per received event")
    args = parser.parse_args()
    token = os.environ["HERALD_CONSUMER_TOKEN"]
    out = open(args.out, "a") if args.out else None
    last_event = time.time()
    while not args.idle_exit or time.time() - last_event < args.idle_exit:
        events = call(args.base, args.consumer, "receive", {"max": args.max, "wait_ms": args.wait_ms}, token)["events"]
        if not events:
            continue
        last_event = time.time()
        for event in events:  # handle each: here, print (or record) it
            line = {"id": event["id"], "attempt": event["attempt"], "trigger": event["trigger"], "at": time.time(),
                    "new": event["payload"]["event"]["data"]["new"]}
            print(json.dumps(line), file=out or sys.stdout, flush=True)
        if args.ack == "ack":
            answer = call(args.base, args.consumer, "ack", {"ack_ids": [e["ack_id"] for e in events]}, token)
            if answer["stale"]:
                print(f"stale acks (lease lapsed, sent again later): {len(answer['stale'])}", file=sys.stderr)

if __name__ == "__main__":
    main()
