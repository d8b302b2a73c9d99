"""Commit-to-receipt latency of one steady-rate run, for scripts/bench.

    python3 latency.py RECEIPTS CREATED RATE INSERTED [WARMUP_SECONDS]

RECEIPTS: nginx's log lines "<epoch seconds with ms> <webhook-id>"; CREATED: "<webhook-id>
<created_at epoch>" for every event of the run (the webhook-id from its invocation rows, since
payload ids are keyed and cannot be derived here; "-" for an event never attempted). Percentiles (nearest rank) and the counts
over 100 ms and 900 ms cover only events created WARMUP_SECONDS (default 1) or more after
the run's first event; received counts every event of the run. Prints one JSON object.
"""
import json
import math
import sys

receipts, created, rate, inserted = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
warmup = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0

made = {}
with open(created) as f:
    for index, line in enumerate(f):
        parts = line.split()
        if len(parts) == 2:
            key = parts[0] if parts[0] != "-" else f"never-attempted-{index}"
            made[key.lower()] = float(parts[1])
start = min(made.values()) if made else 0.0

received = {}
with open(receipts) as f:
    for line in f:
        parts = line.split()
        if len(parts) != 2 or parts[1] == "-":
            continue
        number = parts[1].lower()
        if number in made and number not in received:
            received[number] = (float(parts[0]) - made[number]) * 1000

measured = sorted(ms for number, ms in received.items() if made[number] >= start + warmup)
after_warmup = sum(1 for epoch in made.values() if epoch >= start + warmup)


def pct(p):
    if not measured:
        return None
    rank = max(1, math.ceil(p / 100 * len(measured)))
    return round(measured[min(rank, len(measured)) - 1], 2)


print(json.dumps({
    "rate": rate, "events": inserted, "received": len(received),
    "warmup_s": warmup, "measured": len(measured), "missing_after_warmup": after_warmup - len(measured),
    "p50_ms": pct(50), "p99_ms": pct(99), "p999_ms": pct(99.9),
    "max_ms": round(measured[-1], 2) if measured else None,
    "over_100ms": sum(1 for ms in measured if ms > 100),
    "over_900ms": sum(1 for ms in measured if ms > 900),
    # When the slowest events were created (seconds into the run) and how long they took: a
    # tail at one instant (a checkpoint, a vacuum, a stall) reads differently from a spread one.
    "slowest": [[round(made[number] - start, 2), round(ms, 2)]
                for number, ms in sorted(received.items(), key=lambda item: -item[1])[:5]
                if made[number] >= start + warmup],
}))
