"""The report of scripts/bench: reads the raw measurements the bench wrote (one JSON file per
step in RESULTS_DIR), derives rates, CPU per event and ratios, prints a table and the JSON,
and writes the JSON to OUTPUT.

    python3 report.py RESULTS_DIR OUTPUT

Every ratio is computed from measurements of the same run.
"""
import glob
import json
import os
import statistics
import sys

results_dir, output = sys.argv[1], sys.argv[2]


def load(name):
    path = os.path.join(results_dir, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def rnd(value, digits):
    return None if value is None else round(value, digits)


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


config = load("config") or {}
if "rates" in config:
    config["rates"] = [int(rate) for rate in str(config["rates"]).split()]
tick_us = 1e6 / config.get("clk_tck", 100)


def drain_summary(raw):
    """A drain through herald run: rate and CPU per event from ticks and counts."""
    done = raw["delivered"] + raw["failed"]
    per_event = lambda ticks: round(ticks * tick_us / done, 1) if done else None
    return {
        "http_pool_size": raw["pool"], "fetch_batch_size": raw["batch"], "http_threads": raw["threads"],
        "events": raw["events"], "delivered": raw["delivered"], "failed": raw["failed"],
        "left_pending": raw["pending"], "timed_out": raw["timed_out"] is True,
        "seconds": round(raw["seconds"], 3),
        "events_per_s": round(done / raw["seconds"]) if raw["seconds"] > 0 else None,
        "herald_cpu_us_per_event": per_event(raw["herald_ticks"]),
        "postgres_cpu_us_per_event": per_event(raw["postgres_ticks"]),
        "nginx_cpu_us_per_event": per_event(raw["nginx_ticks"]),
        "worker_peak_rss_mib": round(raw["peak_rss_kib"] / 1024, 1),
        "workers": raw.get("workers", 1),
        # The worker's two sessions (by application_name), when they could be read.
        "postgres_claimer_cpu_us_per_event": per_event(raw["claimer_ticks"]) if raw.get("claimer_ticks") else None,
        "postgres_recorder_cpu_us_per_event": per_event(raw["recorder_ticks"]) if raw.get("recorder_ticks") else None,
        # The workers' start (exec to /readyz, the trigger disabled meanwhile): not in the
        # drain's seconds or CPU above.
        "start_seconds": rnd(raw.get("start_seconds"), 3),
        "start_herald_cpu_ms": round(raw["start_herald_ticks"] * tick_us / 1000) if "start_herald_ticks" in raw else None,
    }


def sql_summary(raw):
    if raw is None:
        return None
    claimed = raw["events"] - raw["left_pending"]
    summary = {"synchronous_commit": raw["synchronous_commit"], "events": claimed,
               "seconds": round(raw["seconds"], 3), "left_pending": raw["left_pending"],
               "events_per_s": round(claimed / raw["seconds"]) if raw["seconds"] > 0 else None}
    if "postgres_ticks" in raw and claimed:
        # pgbench's own CPU is not in it: the server's processes only.
        summary["postgres_cpu_us_per_event"] = round(raw["postgres_ticks"] * tick_us / claimed, 1)
    return summary


result = {"config": config}

def rounds(prefix):
    """prefix-1.json, prefix-2.json, …: the rounds of a repeated step, in order."""
    found, index = [], 1
    while (raw := load(f"{prefix}-{index}")) is not None:
        found.append(raw)
        index += 1
    return found


def median_of(summaries):
    """Each numeric field's median over the rounds (other fields from the first round), and
    the rounds themselves. A median of each field, not the median round: the rounds' figures
    do not move together."""
    if len(summaries) == 1:
        return dict(summaries[0])
    merged = dict(summaries[0])
    for key, value in summaries[0].items():
        values = [s.get(key) for s in summaries]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and all(
                isinstance(v, (int, float)) for v in values):
            middle = statistics.median(values)
            merged[key] = int(middle) if float(middle).is_integer() else rnd(middle, 3)
    merged["rounds"] = summaries
    return merged


def floor_summary(raw):
    raw = dict(raw)
    raw["nginx_cpu_us_per_req"] = round(raw.pop("nginx_ticks") * tick_us / raw["done"], 1) if raw["done"] else None
    return raw


floor_rounds = [floor_summary(raw) for raw in rounds("floor")]
floor = median_of(floor_rounds) if floor_rounds else None
if floor is not None:
    result["curl_floor"] = floor

floor_loaded = load("floor-loaded")
if floor_loaded is not None:
    result["curl_floor_beside_bookkeeping_load"] = floor_summary(floor_loaded)
    pgbench_load = load("floor-loaded-load")
    if pgbench_load is not None:
        result["curl_floor_beside_bookkeeping_load"]["load_left_pending"] = pgbench_load["left_pending"]

drain_rounds = [drain_summary(raw) for raw in rounds("drain")]
if drain_rounds:
    result["drain"] = median_of(drain_rounds)
    if floor_rounds and len(floor_rounds) == len(drain_rounds):
        # Each drain against the bare loop that ran right after it: the spread of the ratio.
        result["herald_cpu_to_floor_ratio_by_round"] = [
            ratio(d["herald_cpu_us_per_event"], f["cpu_us_per_req"]) for d, f in zip(drain_rounds, floor_rounds)]

# The claim+mark and bookkeeping bounds run in every round, beside its drain.
async_rounds = [sql_summary(raw) for raw in rounds("sql-async")]
bookkeeping_rounds = [sql_summary(raw) for raw in rounds("sql-bookkeeping")]
sql_sync = sql_summary(load("sql-sync"))
sql_async = median_of(async_rounds) if async_rounds else None
if sql_sync or sql_async:
    # Herald's own connections commit asynchronously: the asynchronous bound is like with like.
    result["sql_only_bound"] = {"asynchronous": sql_async, "synchronous": sql_sync}
sql_bookkeeping = median_of(bookkeeping_rounds) if bookkeeping_rounds else None
if sql_bookkeeping:
    result["sql_bookkeeping_bound"] = sql_bookkeeping
sql_returning = sql_summary(load("sql-bookkeeping-returning"))
if sql_returning:
    result["sql_bookkeeping_returning_bound"] = sql_returning

if "drain" in result:
    d = result["drain"]
    if floor is not None:
        # Herald's CPU per event against the bare loop's per request: with rounds, the median
        # of each drain against the loop run right after it (paired, as the capture ratio is).
        by_round = result.get("herald_cpu_to_floor_ratio_by_round")
        result["herald_cpu_to_floor_ratio"] = rnd(statistics.median(by_round), 3) if by_round and None not in by_round \
            else ratio(d["herald_cpu_us_per_event"], floor["cpu_us_per_req"])
        result["drain_to_floor_rate_ratio"] = ratio(d["events_per_s"], floor["req_per_s"])
    if "curl_floor_beside_bookkeeping_load" in result:
        result["herald_cpu_to_loaded_floor_ratio"] = ratio(
            d["herald_cpu_us_per_event"], result["curl_floor_beside_bookkeeping_load"]["cpu_us_per_req"])
    # Each drain against the bounds run in its round, when every round ran them: the
    # median of those ratios (paired, as Herald's CPU against the loop is).
    for key, bound, bound_by_round in (("drain_to_sql_ratio", sql_async, async_rounds),
                                       ("drain_to_bookkeeping_ratio", sql_bookkeeping, bookkeeping_rounds)):
        if not bound:
            continue
        if len(bound_by_round) == len(drain_rounds) > 1:
            by_round = [ratio(r["events_per_s"], b["events_per_s"]) for r, b in zip(drain_rounds, bound_by_round)]
            result[f"{key}_by_round"] = by_round
            result[key] = rnd(statistics.median(by_round), 3) if None not in by_round else None
        else:
            result[key] = ratio(d["events_per_s"], bound["events_per_s"])
    if sql_sync:
        result["drain_to_sql_sync_ratio"] = ratio(d["events_per_s"], sql_sync["events_per_s"])
    if sql_returning:
        result["drain_to_bookkeeping_returning_ratio"] = ratio(d["events_per_s"], sql_returning["events_per_s"])

batched = load("drain-batched")
if batched is not None:
    result["drain_batched"] = drain_summary(batched)
    if sql_async:
        result["drain_batched_to_sql_ratio"] = ratio(result["drain_batched"]["events_per_s"], sql_async["events_per_s"])

cells = [drain_summary(load(os.path.splitext(os.path.basename(p))[0]))
         for p in sorted(glob.glob(os.path.join(results_dir, "matrix-*.json")))]
if cells:
    cells.sort(key=lambda c: (c["http_pool_size"], c["fetch_batch_size"], c["http_threads"]))
    best = max(c["events_per_s"] or 0 for c in cells)
    for cell in cells:
        cell["ratio_to_best"] = ratio(cell["events_per_s"], best)
    result["matrix"] = {"events_per_cell": config.get("matrix_events"), "best_events_per_s": best,
                        "min_ratio_to_best": min(c["ratio_to_best"] or 0 for c in cells), "cells": cells}

breaker = {state: [drain_summary(load(os.path.splitext(os.path.basename(p))[0]))
                   for p in sorted(glob.glob(os.path.join(results_dir, f"breaker-{state}-*.json")))]
           for state in ("on", "off")}
if breaker["on"] and breaker["off"]:
    def mean(cells, key):
        values = [c[key] or 0 for c in cells]
        return sum(values) / len(values)
    # The drain rate on two shared cores swings with PostgreSQL's state; Herald's own CPU per
    # event is where the breaker's bookkeeping would show, so both are reported.
    result["circuit_breaker_cost"] = {
        "on_events_per_s": [c["events_per_s"] for c in breaker["on"]],
        "off_events_per_s": [c["events_per_s"] for c in breaker["off"]],
        "on_to_off_ratio": ratio(mean(breaker["on"], "events_per_s"), mean(breaker["off"], "events_per_s")),
        "on_herald_cpu_us_per_event": [c["herald_cpu_us_per_event"] for c in breaker["on"]],
        "off_herald_cpu_us_per_event": [c["herald_cpu_us_per_event"] for c in breaker["off"]],
        "on_to_off_herald_cpu_ratio": ratio(mean(breaker["on"], "herald_cpu_us_per_event"),
                                            mean(breaker["off"], "herald_cpu_us_per_event")),
    }

ordering = {mode: [drain_summary(load(os.path.splitext(os.path.basename(p))[0]))
                   for p in sorted(glob.glob(os.path.join(results_dir, f"ordering-{mode}-*.json")))]
            for mode in ("off", "keys-1000")}
hot = load("ordering-hot-10")
if ordering["off"] and ordering["keys-1000"]:
    rates = {mode: [c["events_per_s"] for c in cells] for mode, cells in ordering.items()}
    result["ordering"] = {
        "events": ordering["off"][0]["events"],
        "off_events_per_s": rates["off"],
        "keys_1000_events_per_s": rates["keys-1000"],
        # Medians: one round slowed by a neighbour on a shared machine should not move the ratio.
        "keys_1000_to_off_ratio": ratio(statistics.median(rates["keys-1000"]), statistics.median(rates["off"])),
        "off_herald_cpu_us_per_event": [c["herald_cpu_us_per_event"] for c in ordering["off"]],
        "keys_1000_herald_cpu_us_per_event": [c["herald_cpu_us_per_event"] for c in ordering["keys-1000"]],
        "off_postgres_cpu_us_per_event": [c["postgres_cpu_us_per_event"] for c in ordering["off"]],
        "keys_1000_postgres_cpu_us_per_event": [c["postgres_cpu_us_per_event"] for c in ordering["keys-1000"]],
    }
    if hot is not None:
        h = drain_summary(hot)
        result["ordering"]["hot_10_keys"] = {key: h[key] for key in (
            "events_per_s", "delivered", "left_pending", "timed_out", "herald_cpu_us_per_event",
            "postgres_cpu_us_per_event")}

scale_out = sorted((drain_summary(load(os.path.splitext(os.path.basename(p))[0]))
                    for p in glob.glob(os.path.join(results_dir, "workers-*.json"))),
                   key=lambda cell: cell["workers"])
if scale_out:
    one = next((c["events_per_s"] for c in scale_out if c["workers"] == 1), None)
    result["scale_out"] = [
        {key: cell[key] for key in ("workers", "events_per_s", "delivered", "left_pending", "herald_cpu_us_per_event",
                                    "postgres_cpu_us_per_event")}
        | {"to_one_worker": ratio(cell["events_per_s"], one) if one else None}
        for cell in scale_out]

steady = [load(os.path.splitext(os.path.basename(p))[0]) for p in glob.glob(os.path.join(results_dir, "steady-*.json"))]
if steady:
    result["steady"] = sorted(steady, key=lambda row: row["rate"])
    rss = load("rss-steady")
    if rss is not None:
        result["steady_worker_peak_rss_mib"] = round(rss["peak_rss_kib"] / 1024, 1)

capture = load("capture")
if capture is not None:
    def figures(key):
        return [float(x) for x in capture[key].split()]

    without_tps = figures("without_trigger_tps")

    def against_bare_insert(tps):
        """The ratio of medians, and the median of each round's ratio: a round pairs runs
        seconds apart, and with durable commit the fsync time drifts between rounds by more
        than the trigger costs, so the paired figure is the steadier one."""
        return (ratio(statistics.median(tps), statistics.median(without_tps)),
                round(statistics.median(t / p for t, p in zip(tps, without_tps)), 3))

    with_tps = figures("with_trigger_tps")
    c = result["capture"] = {"with_trigger_tps": with_tps, "without_trigger_tps": without_tps}
    c["ratio"], c["paired_ratio"] = against_bare_insert(with_tps)
    if capture.get("with_trigger_cpu_us"):
        with_cpu, without_cpu = figures("with_trigger_cpu_us"), figures("without_trigger_cpu_us")
        c["with_trigger_cpu_us"], c["without_trigger_cpu_us"] = with_cpu, without_cpu
        c["cpu_us_added"] = round(statistics.median(w - p for w, p in zip(with_cpu, without_cpu)), 1)
    # The floors (scripts/bench, step d): a trigger that does nothing, one that writes the
    # row as JSON into a table without indexes, and Herald's capture function writing into
    # a copy of the log without its indexes and wake trigger.
    for floor in ("noop", "floor", "unindexed"):
        if capture.get(f"{floor}_trigger_tps"):
            c[f"{floor}_trigger_tps"] = figures(f"{floor}_trigger_tps")
            c[f"{floor}_trigger_cpu_us"] = figures(f"{floor}_trigger_cpu_us")
            c[f"{floor}_ratio"], c[f"{floor}_paired_ratio"] = against_bare_insert(c[f"{floor}_trigger_tps"])
    if capture.get("armed_tps"):
        c["armed_tps"] = figures("armed_tps")
        c["armed_ratio"], c["armed_paired_ratio"] = against_bare_insert(c["armed_tps"])

retention = load("retention")
if retention is not None:
    result["retention"] = retention


def row(label, value):
    print(f"{label:<58}{'-' if value is None else str(value):>28}")


print()
row("measure", "value")
print("-" * 86)
if "drain" in result:
    d = result["drain"]
    medians = f", medians of {len(d['rounds'])} rounds" if "rounds" in d else ""
    row(f"drain: events/s ({d['events']} events{medians})", d["events_per_s"])
    row("drain: http_pool_size / fetch_batch_size / http_threads",
        f"{d['http_pool_size']} / {d['fetch_batch_size']} / {d['http_threads']}")
    if d["failed"] or d["left_pending"] or d["timed_out"]:
        row("drain: failed / left pending / timed out",
            f"{d['failed']} / {d['left_pending']} / {'yes' if d['timed_out'] else 'no'}")
if "curl_floor" in result:
    f = result["curl_floor"]
    row(f"bare libcurl loop: req/s (pool {f['concurrency']}, {f['body_bytes']}-byte POSTs)", round(f["req_per_s"]))
    if f["failed"] or f["timed_out"]:
        row("bare libcurl loop: failed / timed out", f"{f['failed']} / {'yes' if f['timed_out'] else 'no'}")
if "drain_to_floor_rate_ratio" in result:
    row("drain events/s / bare loop req/s", result["drain_to_floor_rate_ratio"])
if "drain" in result:
    row("Herald CPU per event during drain (µs)", result["drain"]["herald_cpu_us_per_event"])
    row("  worker start, not in the drain: seconds / Herald CPU (ms)",
        f"{result['drain']['start_seconds']} / {result['drain']['start_herald_cpu_ms']}")
if "curl_floor" in result:
    row("bare libcurl loop: client CPU per request (µs)", result["curl_floor"]["cpu_us_per_req"])
if "herald_cpu_to_floor_ratio" in result:
    paired = " (median of the rounds)" if len(result.get("herald_cpu_to_floor_ratio_by_round") or []) > 1 else ""
    row(f"Herald CPU / bare loop CPU{paired} (target <= 1.5)", result["herald_cpu_to_floor_ratio"])
if len(result.get("herald_cpu_to_floor_ratio_by_round") or []) > 1:
    row("  each drain against the bare loop run after it",
        " / ".join(str(r) for r in result["herald_cpu_to_floor_ratio_by_round"]))
if "curl_floor_beside_bookkeeping_load" in result:
    loaded = result["curl_floor_beside_bookkeeping_load"]
    row("  bare loop beside the bookkeeping bound's load: CPU per request (µs; reference)", loaded["cpu_us_per_req"])
    if "herald_cpu_to_loaded_floor_ratio" in result:
        row("  Herald CPU / that loop's (reference: both share the cores with PostgreSQL)",
            result["herald_cpu_to_loaded_floor_ratio"])
if "drain" in result:
    row("  drain: PostgreSQL / nginx CPU per event (µs)",
        f"{result['drain']['postgres_cpu_us_per_event']} / {result['drain']['nginx_cpu_us_per_event']}")
if "drain" in result and result["drain"].get("postgres_claimer_cpu_us_per_event"):
    row("  drain: PostgreSQL CPU per event, claimer / recorder session (µs)",
        f"{result['drain']['postgres_claimer_cpu_us_per_event']} / {result['drain']['postgres_recorder_cpu_us_per_event']}")
if "curl_floor" in result:
    row("  bare loop: nginx CPU per request (µs)", result["curl_floor"]["nginx_cpu_us_per_req"])
if "sql_only_bound" in result:
    for mode in ("asynchronous", "synchronous"):
        s = result["sql_only_bound"][mode]
        if s:
            row(f"SQL-only bound, {mode} commit: events/s", s["events_per_s"])
if "drain_to_sql_ratio" in result:
    paired = " (median of the rounds)" if result.get("drain_to_sql_ratio_by_round") else ""
    row(f"drain / SQL-only bound (asynchronous, like Herald){paired} (target >= 0.5)", result["drain_to_sql_ratio"])
if result.get("drain_to_sql_ratio_by_round"):
    row("  each drain against the bound run in its round", " / ".join(str(r) for r in result["drain_to_sql_ratio_by_round"]))
if "drain_to_sql_sync_ratio" in result:
    row("drain / SQL-only bound (synchronous, reference)", result["drain_to_sql_sync_ratio"])
if "sql_bookkeeping_bound" in result:
    b = result["sql_bookkeeping_bound"]
    row("SQL bound + Herald's bookkeeping (attempt row per event): events/s", b["events_per_s"])
    row("  PostgreSQL CPU per event: claim+mark bound / bookkeeping bound (µs)",
        f"{(result.get('sql_only_bound', {}).get('asynchronous') or {}).get('postgres_cpu_us_per_event')} / "
        f"{b.get('postgres_cpu_us_per_event')}")
if "drain_to_bookkeeping_ratio" in result:
    paired = " (median of the rounds)" if result.get("drain_to_bookkeeping_ratio_by_round") else ""
    row(f"drain / bookkeeping bound{paired} (target >= 0.85)", result["drain_to_bookkeeping_ratio"])
if result.get("drain_to_bookkeeping_ratio_by_round"):
    row("  each drain against the bound run in its round",
        " / ".join(str(r) for r in result["drain_to_bookkeeping_ratio_by_round"]))
if "sql_bookkeeping_returning_bound" in result:
    b = result["sql_bookkeeping_returning_bound"]
    row("  the same bound, its claim returning payloads: events/s", b["events_per_s"])
    row("  PostgreSQL CPU per event, that bound (µs)", b.get("postgres_cpu_us_per_event"))
if "drain_to_bookkeeping_returning_ratio" in result:
    row("  drain / that bound (reference)", result["drain_to_bookkeeping_returning_ratio"])
if "drain_batched" in result:
    b = result["drain_batched"]
    row(f"batched drain (max_events {result['config'].get('batch_events')}): events/s", b["events_per_s"])
    row("  batched drain: Herald / PostgreSQL CPU per event (µs)",
        f"{b['herald_cpu_us_per_event']} / {b['postgres_cpu_us_per_event']}")
    if b["failed"] or b["left_pending"] or b["timed_out"]:
        row("  batched drain: failed / left pending / timed out",
            f"{b['failed']} / {b['left_pending']} / {'yes' if b['timed_out'] else 'no'}")
if "drain_batched_to_sql_ratio" in result:
    row("batched drain / SQL-only bound (asynchronous; target >= 0.8)", result["drain_batched_to_sql_ratio"])
if "drain" in result:
    row("worker peak RSS during drain (MiB)", result["drain"]["worker_peak_rss_mib"])
for r in result.get("steady", []):
    row(f"steady {r['rate']}/s: p50 / p99 / p99.9 / max (ms)",
        f"{r['p50_ms']} / {r['p99_ms']} / {r['p999_ms']} / {r['max_ms']}")
    row(f"steady {r['rate']}/s: over 100 ms / over 900 ms (of {r['measured']})",
        f"{r['over_100ms']} / {r['over_900ms']}")
    row(f"steady {r['rate']}/s: received / inserted", f"{r['received']} / {r['events']}")
if "steady_worker_peak_rss_mib" in result:
    row("worker peak RSS, steady runs (MiB)", result["steady_worker_peak_rss_mib"])
if "capture" in result:
    c = result["capture"]
    row("capture: insert tps with / without trigger (medians; paired)", f"{c['ratio']}; {c['paired_ratio']}")
    if "cpu_us_added" in c:
        row("capture: PostgreSQL CPU per insert with / without trigger (µs, medians; paired difference)",
            f"{statistics.median(c['with_trigger_cpu_us'])} / {statistics.median(c['without_trigger_cpu_us'])}; "
            f"{c['cpu_us_added']}")
    for floor, label in (("noop", "capture floor, a trigger that does nothing: tps ratio (medians; paired); CPU µs"),
                         ("floor", "capture floor, a trigger writing the row as JSON, no index: the same"),
                         ("unindexed", "Herald's capture into a copy of the log without indexes or wake trigger: the same")):
        if f"{floor}_ratio" in c:
            row(label, f"{c[floor + '_ratio']}; {c[floor + '_paired_ratio']}; "
                       f"{statistics.median(c[floor + '_trigger_cpu_us'])}")
    if "armed_ratio" in c:
        row("capture, a worker waiting (writers NOTIFY): the same", f"{c['armed_ratio']}; {c['armed_paired_ratio']}")
for cell in result.get("scale_out", []):
    row(f"drain with {cell['workers']} worker processes: events/s (× one worker)",
        f"{cell['events_per_s']} ({cell['to_one_worker']})")
if "ordering" in result:
    o = result["ordering"]
    print(f"ordering, {o['events']} events over 1,000 keys, on / off (drain events/s, "
          f"{len(o['off_events_per_s'])} rounds each): {o['keys_1000_events_per_s']} / {o['off_events_per_s']} = "
          f"{o['keys_1000_to_off_ratio']} (medians; target >= 0.7)")
    print(f"ordering on / off, Herald CPU µs per event: {o['keys_1000_herald_cpu_us_per_event']} / "
          f"{o['off_herald_cpu_us_per_event']}; PostgreSQL: {o['keys_1000_postgres_cpu_us_per_event']} / "
          f"{o['off_postgres_cpu_us_per_event']}")
    if "hot_10_keys" in o:
        h = o["hot_10_keys"]
        print(f"ordering over 10 hot keys: {h['events_per_s']} events/s ({h['delivered']} delivered, "
              f"{h['left_pending']} left pending{', timed out' if h['timed_out'] else ''})")
if "circuit_breaker_cost" in result:
    cost = result["circuit_breaker_cost"]
    print(f"circuit breaker on / off, healthy receiver (drain events/s, two rounds each): "
          f"{cost['on_events_per_s']} / {cost['off_events_per_s']} = {cost['on_to_off_ratio']}")
    print(f"circuit breaker on / off, Herald CPU µs per event: "
          f"{cost['on_herald_cpu_us_per_event']} / {cost['off_herald_cpu_us_per_event']} = {cost['on_to_off_herald_cpu_ratio']}")
if "matrix" in result:
    m = result["matrix"]
    print()
    print(f"matrix: {m['events_per_cell']} events per cell; target: no cell below 0.8x the best "
          f"(lowest {m['min_ratio_to_best']})")
    print(f"{'pool':>6}{'batch':>7}{'threads':>9}{'events/s':>11}{'x best':>8}{'Herald µs/event':>17}{'undelivered':>13}")
    for c in m["cells"]:
        print(f"{c['http_pool_size']:>6}{c['fetch_batch_size']:>7}{c['http_threads']:>9}{str(c['events_per_s']):>11}"
              f"{str(c['ratio_to_best']):>8}{str(c['herald_cpu_us_per_event']):>17}{c['failed'] + c['left_pending']:>13}")
if result.get("retention"):
    print()
    print(f"{'t (s)':>6}{'rows':>10}{'event_log MiB':>15}{'+ indexes':>11}{'invocations MiB':>17}{'+ indexes':>11}")
    for r in result["retention"]:
        print(f"{r['t_s']:>6}{r['rows']:>10}{r['event_log_mib']:>15}{r['event_log_indexes_mib']:>11}"
              f"{r['invocation_log_mib']:>17}{r['invocation_log_indexes_mib']:>11}")
print()
print(json.dumps(result, indent=2))
with open(output, "w") as f:
    json.dump(result, f, indent=2)
print(f"bench: results written to {output}", file=sys.stderr)
