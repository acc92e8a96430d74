#!/usr/bin/env python3
"""W2's latency by stage and to the last region, from commit timestamps (ops/bench/replicate, STARLING_BENCH_STAGES=1).

The shared workload (../shared/peers/workload.py) reports W2 over every (probe, receiving region) pair, measured
by pollers. This reads what the databases recorded instead, after the run: with track_commit_timestamp on in
every cluster, each W2 probe row (ids 2e9 .. 3e9) has a commit time in its origin region (the earliest) and in each
receiving region (the apply's commit), and the hub's log row the time its sequencer transaction started. From them, per probe:

  origin -> hub        the capture (WAL decoding), the push and the hub's group commit
  hub -> region        the long poll's wake-up, the pull and the apply, per receiving region
  pair                 origin -> each receiving region (what the workload's pollers measure, without their poll)
  to the last region   origin -> the last of the R-1 receivers to commit it

Usage: w2-stages.py --hub DSN [--label k=v ...] REGION_DSN...   (RESULT lines on stdout, as workload.py writes)
"""
import argparse
import sys

import psycopg2

PROBES = (2_000_000_000, 3_000_000_000)


def pct(values, p):
    """Nearest-rank percentile of sorted `values`."""
    if not values:
        return float("nan")
    rank = max(1, -(-len(values) * p // 100))
    return values[int(rank) - 1]


def commit_times(dsn, sql, needs_commit_timestamps=True):
    conn = psycopg2.connect(dsn, application_name="w2-stages")
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW track_commit_timestamp")
            if needs_commit_timestamps and cur.fetchone()[0] != "on":
                sys.exit(f"w2-stages: track_commit_timestamp is off in {dsn}")
            cur.execute(sql, PROBES)
            return {int(key): float(at) for key, at in cur.fetchall() if at is not None}
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hub", required=True)
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("regions", nargs="+")
    args = ap.parse_args()
    labels = "".join(f"{label} " for label in args.label)
    region_sql = ("SELECT id, extract(epoch FROM pg_xact_commit_timestamp(xmin)) * 1000 FROM items "
                  "WHERE id >= %s AND id < %s")
    regions = [commit_times(dsn, region_sql) for dsn in args.regions]
    # The log row's `committed_at` (the sequencer transaction's start, just before its COPY and commit); the
    # commit timestamp of its xmin read seconds after the receivers' commits in a trial run, so it is not used.
    hub = commit_times(args.hub, "SELECT (key::jsonb ->> 'id')::bigint, "
                       "extract(epoch FROM committed_at) * 1000 FROM starling_hub.log "
                       "WHERE table_name = 'public.items' AND kind = 'change' "
                       "AND (key::jsonb ->> 'id')::bigint >= %s AND (key::jsonb ->> 'id')::bigint < %s",
                       needs_commit_timestamps=False)
    stages = {"origin_to_hub": [], "hub_to_region": [], "hub_to_last_region": [], "pair": [], "to_last_region": []}
    incomplete = 0
    for probe, logged in hub.items():
        times = [region.get(probe) for region in regions]
        if any(t is None for t in times):
            incomplete += 1
            continue
        origin = min(times)
        receivers = sorted(times)[1:]
        stages["origin_to_hub"].append(logged - origin)
        stages["hub_to_region"] += [t - logged for t in receivers]
        stages["hub_to_last_region"].append(receivers[-1] - logged)
        stages["pair"] += [t - origin for t in receivers]
        stages["to_last_region"].append(receivers[-1] - origin)
    print(f"RESULT {labels}workload=W2 name=w2_stage_probes value={len(stages['to_last_region'])} unit=count")
    print(f"RESULT {labels}workload=W2 name=w2_stage_incomplete value={incomplete} unit=count")
    for stage, values in stages.items():
        values.sort()
        for p in (50, 95, 99, 100):
            name = f"w2_{stage}_{'max' if p == 100 else f'p{p}'}"
            print(f"RESULT {labels}workload=W2 name={name} value={pct(values, p):.2f} unit=ms")


if __name__ == "__main__":
    main()
