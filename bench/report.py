#!/usr/bin/env python3
"""bench/report.py RAW_DIR RESULTS_DIR — turns the raw outputs of bench/run.sh into
RESULTS_DIR/<UTC date>-<short commit>.md and .json (same figures) and RESULTS_DIR/latest.md."""
import json, os, re, statistics, sys

raw, out_dir = sys.argv[1], sys.argv[2]


def read(name, default=""):
    try:
        with open(os.path.join(raw, name)) as f:
            return f.read()
    except OSError:
        return default


machine = dict(l.split("=", 1) for l in read("machine.txt").splitlines() if "=" in l)
started = read("started_at").strip()
marks = {}
for l in read("marks.txt").splitlines():
    k, t, la = l.split()
    marks[k] = {"t": int(t), "load1": float(la)}
elapsed = int(read("elapsed_s", "0").strip() or 0)
runs = int(os.environ.get("BENCH_RUNS", "3"))
conns = os.environ.get("BENCH_WRK_CONNS", "64 512").split()
wrk_d = os.environ.get("BENCH_WRK_DURATION", "30s")
rates = os.environ.get("BENCH_E2E_RATES", "10 25 50 75 100 150 250 500 1000 2000 4000").split()
e2e_s = os.environ.get("BENCH_E2E_SECONDS", "20")


def parse_wrk(text):
    r = {}
    m = re.search(r"requests/s: (\d+)", text)
    if m:
        r["rps"] = int(m.group(1))
    m = re.search(r"latency p50 ([\d.]+) ms, p90 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms", text)
    if m:
        r.update(p50_ms=float(m.group(1)), p90_ms=float(m.group(2)), p99_ms=float(m.group(3)),
                 max_ms=float(m.group(4)))
    m = re.search(r"non-2xx/3xx: (\d+), socket errors: connect (\d+) read (\d+) write (\d+) timeout (\d+)", text)
    if m:
        r["non_2xx"] = int(m.group(1))
        r["socket_errors"] = sum(int(m.group(i)) for i in range(2, 6))
    m = re.search(r"(\d+) requests in", text)
    if m:
        r["requests"] = int(m.group(1))
    return r if "rps" in r else None


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def wrk_scenario(tag):
    res = {}
    for c in conns:
        rs = [parse_wrk(read(f"{tag}-c{c}-{i}.txt")) for i in range(1, runs + 1)]
        ok = [r for r in rs if r]
        res[c] = {k: summary([r.get(k) for r in ok]) for k in
                  ("rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "non_2xx", "socket_errors")}
        res[c]["failed_runs"] = len(rs) - len(ok)
    return res


def cpu_delta(before, after, seconds):
    def load(name):
        d = {}
        for l in read(name).splitlines():
            n, _, t = l.split()
            d[n] = int(t)
        return d
    b, a = load(before), load(after)
    hz = os.sysconf("SC_CLK_TCK")
    out = {n: round((a[n] - b[n]) / hz, 1) for n in a if n in b}
    if "machine" in out:
        out["machine_busy_s"] = out.pop("machine")
        out["other_s(load generator, other users)"] = round(
            out["machine_busy_s"] - sum(v for k, v in out.items() if k != "machine_busy_s"), 1)
    out["wall_s"] = seconds
    return out


def mem(name):
    d = {}
    for l in read(name).splitlines():
        f = l.split()
        if len(f) == 4:
            d[f[0]] = {"pid": int(f[1]), "peak_rss_mb": round(int(f[2]) / 1024, 1),
                       "rss_mb": round(int(f[3]) / 1024, 1)}
    return d


def dlq(name):
    d = {}
    for l in read(name).splitlines():
        f = l.split()
        if len(f) == 2:
            d[f[0]] = int(f[1])
    return d


s1 = wrk_scenario("s1")
s3 = wrk_scenario("s3")
s2_runs = []
for i in range(1, runs + 1):
    try:
        s2_runs.append(json.loads(read(f"s2-{i}.json")))
    except ValueError:
        pass
s2 = {"records_per_s": summary([r["records_per_s"] for r in s2_runs]),
      "records_per_run": s2_runs[0]["records"] if s2_runs else None,
      "errors": sum(r["errors"] for r in s2_runs), "runs": s2_runs}
s4 = {}
for r in rates:
    try:
        s4[r] = json.loads(read(f"s4-{r}.json"))
    except ValueError:
        s4[r] = None
try:
    s6 = json.loads(read("s6.json"))
except ValueError:
    s6 = None
try:
    s6_produce = json.loads(read("s6-produce.json"))
except ValueError:
    s6_produce = None
replay_rate = None
if s6 and s6.get("records") and s6.get("lag_left") is not None:
    done = s6["records"] - s6["lag_left"]
    replay_rate = round(done / s6["seconds_from_start"]) if s6["seconds_from_start"] > 0 else None
def load_json(name):
    try:
        return json.loads(read(name))
    except ValueError:
        return None


s6b = load_json("s6b.json")
wf_replay_rate = None
if s6b and s6b.get("records") and s6b.get("lag_left") is not None and s6b["seconds_from_start"] > 0:
    wf_replay_rate = round((s6b["records"] - s6b["lag_left"]) / s6b["seconds_from_start"])
growth_sizes = os.environ.get("BENCH_GROWTH_SIZES", "10000 100000 1000000").split()
growth_rate = read("s7-rate").strip() or None
s7 = {}
for n in growth_sizes:
    run = load_json(f"s7-{n}.json")
    if run is None and load_json(f"s7-{n}-seed.json") is None:
        continue
    s7[n] = {"e2e": run, "seed": load_json(f"s7-{n}-seed.json"),
             "delivery_records": load_json(f"s7-{n}-redis.json"), "memory": mem(f"mem-s7-{n}.txt")}
db, da = dlq("dlq-before.txt"), dlq("dlq-after.txt")
dlq_new = {t: da.get(t, 0) - db.get(t, 0) for t in da}

def span(a, b):
    return marks[b]["t"] - marks[a]["t"] if a in marks and b in marks else None

cpu_s3 = cpu_delta("cpu-s3-before.txt", "cpu-s3-after.txt", span("s3", "s2"))
cpu_s6 = cpu_delta("cpu-s6-before.txt", "cpu-s6-after.txt", s6["seconds_from_start"] if s6 else None)
cpu_s6b = cpu_delta("cpu-s6b-before.txt", "cpu-s6b-after.txt", s6b["seconds_from_start"] if s6b else None)


def replay_cpu(cpu, run, service):
    """A replay's CPU seconds per process, and the microseconds per record replayed of the
    service, Redis and the broker: where its time goes."""
    if not run or service not in cpu or run.get("lag_left") is None:
        return None
    done = run["records"] - run["lag_left"]
    if done <= 0:
        return None
    procs = sorted(((k, v) for k, v in cpu.items()
                    if k not in ("wall_s", "machine_busy_s") and v > 0), key=lambda kv: -kv[1])
    per = {k: round(cpu[k] * 1e6 / done, 1) for k in (service, "redis", "kafka") if cpu.get(k, 0) > 0}
    return {"cpu_seconds": dict(procs), "machine_busy_s": cpu.get("machine_busy_s"),
            "wall_s": cpu.get("wall_s"), "us_per_record": per}


replay_cpu_s6 = replay_cpu(cpu_s6, s6, "delivery")
replay_cpu_s6b = replay_cpu(cpu_s6b, s6b, "workflow")


def replay_cpu_line(rc):
    if not rc:
        return None
    procs = ", ".join(f"{k} {v}" for k, v in rc["cpu_seconds"].items())
    per = ", ".join(f"{k} {v} µs" for k, v in rc["us_per_record"].items())
    return (f"- CPU seconds over the replay ({rc['wall_s']:.1f} s wall, 2 cores = {2 * rc['wall_s']:.1f} CPU s;"
            f" machine busy {rc['machine_busy_s']} s): {procs}. Per record replayed: {per}."
            " A server's forks (Redis's append-only-file rewrites) count as its own.")
cpu_s4 = cpu_delta("cpu-s4-before.txt", "cpu-s4-after.txt", span("s4", "s4-end"))
mem_s4, mem_end, mem_s6b = mem("mem-s4.txt"), mem("mem-end.txt"), mem("mem-s6b.txt")

ratios = {}
base_s2 = s2["records_per_s"]["median"] if s2["records_per_s"] else None
for c in conns:
    ing = s3[c]["rps"]["median"] if s3[c]["rps"] else None
    base = s1[c]["rps"]["median"] if s1[c]["rps"] else None
    ratios[c] = {"ingress_over_baseline": round(ing / base, 3) if ing and base else None,
                 "ingress_over_produce_ceiling": round(ing / base_s2, 3) if ing and base_s2 else None}

# goals (reported against, never pass/fail)
best_ing = max((s3[c]["rps"]["median"] for c in conns if s3[c]["rps"]), default=None)
best_ratio = max((ratios[c]["ingress_over_baseline"] for c in conns if ratios[c]["ingress_over_baseline"]), default=None)
bounded = []
for r, v in s4.items():
    if v and "skipped" not in v and v["accepted_202"] > 0 and v["scheduled"] >= v["accepted_202"] and v["non_202"] == 0 \
            and v["failed_or_cancelled"] == 0 and v["all_scheduled_after_s"] >= 0 and v["all_scheduled_after_s"] < 5:
        bounded.append(int(r))
best_rate = max(bounded) if bounded else None
# the highest sustained rate, run RUNS times in all (its first run is in the step-up above)
top_runs = [s4[str(best_rate)]] if best_rate else []
for i in range(2, 10):
    try:
        top_runs.append(json.loads(read(f"s4repeat-{i}.json")))
    except ValueError:
        pass
def sustained(v):
    return bool(v) and v["accepted_202"] > 0 and v["scheduled"] >= v["accepted_202"] and v["non_202"] == 0 \
        and v["failed_or_cancelled"] == 0 and 0 <= v["all_scheduled_after_s"] < 5
def pct(v, key, p):
    d = v.get(key) if v else None
    return d[p] if d and d.get("n") else None
top = {"rate": best_rate, "runs": len(top_runs), "sustained_runs": sum(1 for v in top_runs if sustained(v)),
       "post_to_scheduled_p50_ms": summary([pct(v, "post_to_scheduled_produced_ms", "p50") for v in top_runs]),
       "post_to_scheduled_p99_ms": summary([pct(v, "post_to_scheduled_produced_ms", "p99") for v in top_runs]),
       "ingress_to_completed_p99_ms": summary([pct(v, "ingress_to_completed_ms", "p99") for v in top_runs])}
p99_at_best = top["post_to_scheduled_p99_ms"]["median"] if top["post_to_scheduled_p99_ms"] else None
run_rates = [r for r in rates if s4.get(r) and "skipped" not in s4[r]]
svc_peaks = {}
for snap in (mem_s4, mem_end, mem_s6b):
    for n, v in snap.items():
        if n not in ("kafka", "redis", "ferretdb"):
            svc_peaks[n] = max(svc_peaks.get(n, 0), v["peak_rss_mb"])
goals = [
    {"goal": "ingress >= 15,000 requests/s (acks=all)", "measured": best_ing,
     "met": best_ing is not None and best_ing >= 15000},
    {"goal": "ingress >= 60% of the HTTP baseline", "measured": best_ratio,
     "met": best_ratio is not None and best_ratio >= 0.6},
    {"goal": "end to end >= 2,000 deliveries/s", "measured": best_rate,
     "met": best_rate is not None and best_rate >= 2000,
     "note": "rates run: " + ", ".join(run_rates) + "/s"},
    {"goal": "p99 POST->Scheduled < 500 ms (at the highest bounded rate)", "measured": p99_at_best,
     "met": p99_at_best is not None and p99_at_best < 500},
    {"goal": "every service < 30 MB RSS at peak", "measured": max(svc_peaks.values()) if svc_peaks else None,
     "met": bool(svc_peaks) and max(svc_peaks.values()) < 30},
    {"goal": "replay >= 50,000 records/s (delivery group)", "measured": replay_rate,
     "met": replay_rate is not None and replay_rate >= 50000},
    {"goal": "replay >= 50,000 records/s (workflow group)", "measured": wf_replay_rate,
     "met": wf_replay_rate is not None and wf_replay_rate >= 50000},
]

not_implemented = ([f"Scenarios 1 and 3 ran {wrk_d} per run instead of 30 s (BENCH_WRK_DURATION)."] if wrk_d != "30s" else []) + [

    "Scenario 4 steps up through " + ", ".join(rates) + " deliveries/s for " + e2e_s + " s each (not 250/500/1000/2000/4000 for 60 s), one run per rate (3 runs only for the highest sustained rate), and stops at the first rate that is not sustained; the issue's rates start far above what this pipeline sustains on this machine (see the table). BENCH_E2E_RATES / BENCH_E2E_SECONDS change it. Lag is judged from the generator's side (time until every accepted delivery is Scheduled after the load stops, and first vs last quarter p99), not from the consumer groups' offsets.",
    "Scenario 5 reads VmHWM (peak RSS since process start) at the end of scenario 4 (consumer services) and at the end of the run (ingress, infrastructure); it is not sampled continuously.",
    "Scenario 6 runs once per group (not 3x), timed from the service's start (start-up and, for the workflow, the restore of its sagas included) until it has handled as many records as its lag was at the start (its records counter, polled every 0.1 s); the time until its committed lag read 0 is given beside it.",
    "Scenario 7 grows the MongoDB-API stores (bench/seed.c) and Redis (through dronepipe-delivery), not the workflow's changelog: the workflow's memory per saga is read from scenario 4 instead. Its end-to-end runs use the highest rate scenario 4 sustained, once per size.",
]



def ingress_profile():
    """The profiled ingress run (bench/run.sh profile_start/stop): CPU by thread, and perf's
    flat profile by library and by symbol when perf could record."""
    before, after = {}, {}
    for d, name in ((before, "s3-profile-threads-before.txt"), (after, "s3-profile-threads-after.txt")):
        for l in read(name).splitlines():
            parts = l.split()
            if len(parts) == 2:
                d[parts[0]] = d.get(parts[0], 0) + int(parts[1])
    if not after:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    threads = {n: round((after[n] - before.get(n, 0)) / hz, 1) for n in after}
    threads = dict(sorted(((n, v) for n, v in threads.items() if v > 0), key=lambda kv: -kv[1]))
    run = parse_wrk(read(f"s3-c{conns[-1]}-{runs}.txt")) or {}
    total = sum(threads.values())
    out = {"connections": conns[-1], "run": runs, "wall_s": float(read("s3-profile-wall_s", "0").strip() or 0),
           "thread_cpu_s": threads, "requests": run.get("requests"),
           "cpu_us_per_request": round(total * 1e6 / run["requests"], 1) if run.get("requests") else None}

    def pct_lines(name):
        rows = []
        for l in read(name).splitlines():
            m = re.match(r"\s*([\d.]+)%\s+(\S+)(?:\s+\[[.k]\]\s+(.+?))?\s*$", l)
            if m:
                rows.append({"percent": float(m.group(1)), "dso": m.group(2), "symbol": m.group(3)})
        return rows
    out["by_library"] = pct_lines("s3-profile-dso.txt")
    out["by_symbol"] = pct_lines("s3-profile-sym.txt")
    out["no_profile"] = read("s3-profile-none.txt").strip() or None
    return out


prof_s3 = ingress_profile()

# perf symbol of FerretDB -> what it is part of (first match wins)
FERRET_PARTS = (
    ("kernel: syscalls (sockets, SQLite's file writes), scheduling", lambda dso, sym: dso.startswith("[k")),
    ("SQLite (modernc.org/sqlite: C translated to Go)", lambda dso, sym: sym.startswith("modernc.org/sqlite")),
    ("SQLite's C runtime (modernc.org/libc, memory)", lambda dso, sym: sym.startswith(("modernc.org/libc", "modernc.org/memory"))),
    ("Go runtime: allocation, garbage collection, goroutine scheduling",
     lambda dso, sym: sym.startswith(("runtime.", "runtime/", "internal/runtime", "gcWriteBarrier", "aeshash"))
     or sym.endswith("body") and "." not in sym),
    ("documents: BSON and FerretDB's SJSON (JSON stored in SQLite, via encoding/json), encoding and decoding",
     lambda dso, sym: any(k in sym for k in ("/handler/sjson.", "/internal/bson.", "FerretDB/wire", "/internal/types."))
     or sym.startswith(("encoding/json", "unicode/utf8"))),
    ("FerretDB: commands, filters, updates, backends", lambda dso, sym: sym.startswith("github.com/FerretDB")),
    ("database/sql", lambda dso, sym: sym.startswith("database/sql")),
    ("other Go (standard library, dependencies)", lambda dso, sym: True),
)


def ferret_profile():
    """FerretDB profiled during scenario 4's last run at the top rate (bench/run.sh): its CPU per
    delivery and perf's samples summed by what they are part of."""
    def ticks(name):
        return sum(int(l.split()[1]) for l in read(name).splitlines() if len(l.split()) == 2)
    before, after = ticks("s4-ferret-profile-threads-before.txt"), ticks("s4-ferret-profile-threads-after.txt")
    if not after:
        return None
    cpu_s = round((after - before) / os.sysconf("SC_CLK_TCK"), 1)
    run = load_json(f"s4repeat-{runs}.json") or {}
    n = run.get("accepted_202") or 0
    parts, top = {}, []
    for l in read("s4-ferret-profile-sym.txt").splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[([.k])\]\s+(.+?)\s*$", l)
        if not m:
            continue
        pct_, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4)
        dso = "[k]" if kind == "k" else dso
        part = next(name for name, match in FERRET_PARTS if match(dso, sym))
        parts[part] = parts.get(part, 0.0) + pct_
        if len(top) < 12:
            top.append({"percent": pct_, "symbol": sym})
    return {"run": runs, "rate": run.get("rate"), "wall_s": float(read("s4-ferret-profile-wall_s", "0").strip() or 0),
            "cpu_s": cpu_s, "deliveries": n,
            "cpu_ms_per_delivery": round(cpu_s * 1000 / n, 2) if n else None,
            "by_part": dict(sorted(((k, round(v, 1)) for k, v in parts.items()), key=lambda kv: -kv[1])),
            "top_symbols": top, "no_profile": read("s4-ferret-profile-none.txt").strip() or None}


prof_s4 = ferret_profile()

report = {
    "started_at": started, "elapsed_s": elapsed, "machine": machine,
    "load_average_1min": {k: v["load1"] for k, v in marks.items()},
    "settings": {"runs": runs, "wrk_duration": wrk_d, "wrk_threads": 2, "concurrency": conns,
                 "e2e_rates": rates, "e2e_seconds": e2e_s,
                 "sim_time_scale": os.environ.get("BENCH_SIM_TIME_SCALE", "600"),
                 "http_threads": "DP_HTTP_THREADS default (2) for the ingress and the baseline"},
    "scenario1_http_baseline": s1, "scenario2_raw_produce": s2, "scenario3_ingress": s3,
    "ingress_ratios": ratios, "scenario4_end_to_end": s4, "scenario4_top_rate_runs": top,
    "scenario4_dlq_new_records": dlq_new,
    "scenario4_cpu_seconds": cpu_s4, "scenario3_cpu_seconds": cpu_s3,
    "scenario3_ingress_profile": prof_s3, "scenario4_ferretdb_profile": prof_s4,
    "scenario6_cpu": replay_cpu_s6, "scenario6b_cpu": replay_cpu_s6b,
    "scenario5_peak_rss_after_scenario4": mem_s4, "scenario5_peak_rss_end_of_run": mem_end,
    "scenario6_replay_delivery_group": {"result": s6, "records_per_s": replay_rate, "input_produce": s6_produce},
    "scenario6b_replay_workflow_group": {"result": s6b, "records_per_s": wf_replay_rate},
    "scenario7_cost_of_growth": {"rate": growth_rate, "sizes": s7},
    "goals": goals, "not_implemented": not_implemented,
}


def f(v, nd=0):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def med(s, nd=0):
    if not s:
        return "—"
    return f"{f(s['median'], nd)} ({f(s['min'], nd)}–{f(s['max'], nd)})"


L = []
date = started[:10]
commit = machine.get("commit", "unknown")
L.append(f"# dronepipe benchmark {started} (commit {commit}{', uncommitted changes' if machine.get('dirty') == 'yes' else ''})\n")
if machine.get("dirty_files"):
    L.append(f"Uncommitted changes in the working tree when the run started: {machine['dirty_files']}.\n")
L.append("## Machine\n")
L.append(f"- CPU: {machine.get('cpu_model')}, {machine.get('cores')} cores; memory {machine.get('mem')}; kernel {machine.get('kernel')}")
L.append(f"- Kafka {machine.get('kafka')}, librdkafka {machine.get('librdkafka')}, FerretDB {machine.get('ferretdb')}, Redis {machine.get('redis')}, wrk {machine.get('wrk')}")
la = report["load_average_1min"]
L.append(f"- 1-minute load average: {la.get('start', '—')} at start, {la.get('end', '—')} at the end"
         f" (before each scenario: " + ", ".join(f"{k} {v}" for k, v in la.items() if k not in ('start', 'end')) + ")."
         " The machine is shared: other people's tests may have run at the same time, and the load generators"
         " (wrk, bench/e2e) run on the same 2 cores as the servers, so every figure here is a lower bound of what the"
         " services do on dedicated hardware.")
L.append(f"- Whole run: {elapsed} s. Isolated stack in bench/work/stack (Kafka :39192, Redis :36479, FerretDB :27917),"
         f" services on 18780–18785, DP_SIM_TIME_SCALE={report['settings']['sim_time_scale']}, fresh data each run.\n")

L.append("## Not implemented yet / deviations\n")
for n in not_implemented:
    L.append(f"- {n}")
L.append("")

L.append(f"Figures are median (min–max) of {runs} runs unless noted.\n")
L.append(f"## 1. HTTP baseline (bench/http_baseline.c: pipeline/http, ingress thread settings, fixed 202, no validation or Kafka)\n")
L.append(f"wrk -t2 -d{wrk_d}, keep-alive, bench/wrk-post.lua bodies.\n")
L.append("| connections | requests/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | socket errors |")
L.append("|---|---|---|---|---|---|---|---|")
for c in conns:
    s = s1[c]
    L.append(f"| {c} | {med(s['rps'])} | {med(s['p50_ms'], 2)} | {med(s['p90_ms'], 2)} | {med(s['p99_ms'], 2)} | {med(s['max_ms'], 1)} | {med(s['non_2xx'])} | {med(s['socket_errors'])} |")
L.append("")
L.append("## 2. Raw produce ceiling (bench/produce.c: pl_producer, acks=all, idempotent, linger.ms=5, same topic and Avro payloads)\n")
L.append(f"- {f(s2['records_per_run'])} records per run: **{med(s2['records_per_s'])} records/s**; delivery errors: {s2['errors']}.")
if s2_runs:
    L.append(f"- average payload {f(s2_runs[0].get('avg_payload_bytes'))} bytes; runs: " + ", ".join(f"{r['records_per_s']:,.0f}/s in {r['seconds']} s" for r in s2_runs))
L.append("")
L.append("## 3. Ingress (dronepipe-ingress, acks=all; consumer services stopped during this scenario)\n")
L.append(f"wrk -t2 -d{wrk_d}, keep-alive, bench/wrk-post.lua (varied valid bodies). Every success is 202; non-2xx = non-202.\n")
L.append("| connections | requests/s | p50 ms | p90 ms | p99 ms | max ms | non-202 | socket errors | ÷ baseline | ÷ produce ceiling |")
L.append("|---|---|---|---|---|---|---|---|---|---|")
for c in conns:
    s = s3[c]
    L.append(f"| {c} | {med(s['rps'])} | {med(s['p50_ms'], 2)} | {med(s['p90_ms'], 2)} | {med(s['p99_ms'], 2)} | {med(s['max_ms'], 1)} | {med(s['non_2xx'])} | {med(s['socket_errors'])} | {f(ratios[c]['ingress_over_baseline'], 3) if ratios[c]['ingress_over_baseline'] else '—'} | {f(ratios[c]['ingress_over_produce_ceiling'], 3) if ratios[c]['ingress_over_produce_ceiling'] else '—'} |")
L.append("")
if cpu_s3:
    L.append("CPU seconds used during scenario 3 (all runs, " + f"{cpu_s3.get('wall_s')} s wall, 2 cores = {2 * (cpu_s3.get('wall_s') or 0)} CPU s available): " +
             ", ".join(f"{k} {v}" for k, v in cpu_s3.items() if k != "wall_s") + ".\n")
L.append("## 4. End to end (bench/e2e.c: open loop, 64 keep-alive connections, consuming dronedelivery.delivery.events)\n")
L.append("Latency ingress→X = the lifecycle event's `time` minus its `requestedAt` (the ingress's clock at the POST);"
         " POST→Scheduled = the Scheduled record's produced_at header minus the POST's due time on the generator's open-loop schedule"
         " (includes any wait for a connection). Unreported warm-up first (BENCH_E2E_WARMUP)."
         " One run per rate; the highest sustained rate runs " + str(top["runs"]) + " times in all (below the table).\n")
L.append("| rate/s | achieved/s | 202 | non-202 | HTTP errors | late >100 ms | Scheduled | Completed | Failed/Cancelled | all Scheduled after (s) | all done after (s) | HTTP p50/p99 ms | ingress→Created p50/p99 ms | Created→Scheduled p50/p99 ms | ingress→Scheduled p50/p95/p99 ms | p99 first → last quarter | POST→Scheduled p50/p95/p99 ms | ingress→Completed p50/p95/p99 ms |")
L.append("|" + "---|" * 18)


def q(d, keys=("p50", "p95", "p99")):
    if not d or d["n"] == 0:
        return "—"
    return "/".join(f"{d[k]:.0f}" for k in keys)


for r in rates:
    v = s4.get(r)
    if not v:
        L.append(f"| {r} | no result (see bench/work/logs/e2e.log) |" + " |" * 16)
        continue
    if "skipped" in v:
        L.append(f"| {r} | not run: {v['skipped']} |" + " |" * 16)
        continue
    L.append(f"| {r} | {v['achieved_rate']:.0f} | {v['accepted_202']} | {v['non_202']} | {v['http_errors']} | {v['late_over_100ms']} | {v['scheduled']} | {v['completed']} | {v['failed_or_cancelled']} | {f(v['all_scheduled_after_s'], 2) if v['all_scheduled_after_s'] >= 0 else 'not within ' + os.environ.get('BENCH_E2E_DRAIN', '30') + ' s'} | {f(v['all_done_after_s'], 2) if v['all_done_after_s'] >= 0 else 'not within ' + os.environ.get('BENCH_E2E_DRAIN', '30') + ' s'} | {q(v['http_ms'], ('p50', 'p99'))} | {q(v.get('ingress_to_created_ms'), ('p50', 'p99'))} | {q(v.get('created_to_scheduled_ms'), ('p50', 'p99'))} | {q(v['ingress_to_scheduled_ms'])} | {q(v['ingress_to_scheduled_first_quarter_ms'], ('p99',))} → {q(v['ingress_to_scheduled_last_quarter_ms'], ('p99',))} | {q(v['post_to_scheduled_produced_ms'])} | {q(v['ingress_to_completed_ms'])} |")
L.append("")
L.append(f"Each rate runs {e2e_s} s, then waits up to {os.environ.get('BENCH_E2E_DRAIN', '30')} s for the accepted deliveries to finish; latencies cover the deliveries that got there within that window (a delivery still waiting is not in the percentiles, it is in the Scheduled count).\n")
L.append(f"- Highest rate at which every accepted delivery reached Scheduled within 5 s after the load stopped, with no failure and no non-202 (lag bounded): **{f(best_rate)}/s** (of the rates run: {', '.join(run_rates)}).")
if best_rate:
    L.append(f"- That rate run {top['runs']} times in all (the step-up's run and {top['runs'] - 1} more): sustained in {top['sustained_runs']} of {top['runs']}; POST→Scheduled p50 {med(top['post_to_scheduled_p50_ms'])} ms, p99 {med(top['post_to_scheduled_p99_ms'])} ms; ingress→Completed p99 {med(top['ingress_to_completed_p99_ms'])} ms (median (min–max)).")
L.append(f"- New DLQ records during scenario 4: {sum(dlq_new.values()) if dlq_new else '—'} " + (f"({', '.join(f'{k} {v}' for k, v in dlq_new.items() if v)})" if any(dlq_new.values()) else "(all .dlq topics)") + "; must be 0.")
if cpu_s4:
    L.append("- CPU seconds used during scenario 4 (" + f"{cpu_s4.get('wall_s')} s wall): " + ", ".join(f"{k} {v}" for k, v in cpu_s4.items() if k != "wall_s") + ".")
L.append("")
L.append("## 5. Memory: peak RSS (VmHWM)\n")
L.append("| process | peak RSS after scenario 4 (MB) | peak RSS at end of run (MB) |")
L.append("|---|---|---|")
for n in sorted(set(mem_s4) | set(mem_end)):
    L.append(f"| {n} | {f(mem_s4.get(n, {}).get('peak_rss_mb'), 1)} | {f(mem_end.get(n, {}).get('peak_rss_mb'), 1)} |")
L.append("\nThe consumer services are stopped after scenario 4, so they have no end-of-run figure, except dronepipe-delivery, restarted for the replay (its end-of-run peak is the replay's); the ingress's end-of-run peak includes scenario 3 (512 connections). VmHWM is the peak since the process started.\n")
def measured(r):
    """How the end of a replay was seen (bench/run.sh wait_handled, else the committed lag)."""
    if r.get("measured_by") == "handled":
        lag0 = r.get("seconds_to_lag0")
        return ("the last record handled (the service's records counter, polled every 0.1 s; the committed lag, polled with the CLI every 0.5 s, read 0 after "
                + (f"{lag0:.1f} s)" if lag0 is not None else "? s)"))
    return "a committed lag of 0 (polled with the CLI every 0.5 s)"


L.append("## 6. Replay of the delivery group\n")
if s6:
    L.append(f"{f(s6_produce['records'] if s6_produce else None)} DeliveryLifecycle events (5 stages each of {f(s6_produce['records'] // 5 if s6_produce else None)} deliveries) were added"
             " to dronedelivery.delivery.events, the `delivery` group was reset with `dronepipe replay --to-earliest`, and dronepipe-delivery started again.\n")
    L.append(f"- records to replay (lag after the reset, scenario 4's events included): {f(s6['records'])}; lag left at the end: {f(s6['lag_left'])}"
             + (f" (stopped at the {s6['timeout_s']} s timeout)" if s6.get('lag_left') else ""))
    L.append(f"- time: {s6['seconds_from_start']:.1f} s from the process start to {measured(s6)} ({s6['seconds_from_ready']:.1f} s after /readyz answered 200): **{f(replay_rate)} records/s**")
    if replay_cpu_s6:
        L.append(replay_cpu_line(replay_cpu_s6))
    L.append("")
else:
    L.append("No result (see bench/work/logs/replay.log).\n")
L.append("### 6b. Replay of the workflow group over its inputs\n")
if s6b:
    L.append("The `workflow` group was reset to the earliest offsets of dronedelivery.requests, .package.events and"
             " .drone.events (every input of scenarios 4 and 7) and dronepipe-workflow started again: it restores its sagas"
             " from the changelog, then meets every input as a duplicate or a stale record.\n")
    L.append(f"- records to replay: {f(s6b['records'])}; lag left at the end: {f(s6b['lag_left'])}"
             + (f" (stopped at the {s6b['timeout_s']} s timeout)" if s6b.get('lag_left') else ""))
    L.append(f"- time: {s6b['seconds_from_start']:.2f} s from the process start (restore included) to {measured(s6b)}: **{f(wf_replay_rate)} records/s**")
    if replay_cpu_s6b:
        L.append(replay_cpu_line(replay_cpu_s6b))
    L.append(f"- dronepipe-workflow peak RSS over the replay: {f(mem_s6b.get('workflow', {}).get('peak_rss_mb'), 1)} MB"
             " (the other consumers were stopped; it ran before scenarios 3 and 2, whose requests would be new sagas)\n")
else:
    L.append("No result (see bench/work/logs/replay.log).\n")
L.append("## 7. Cost of growth\n")
if s7:
    L.append(f"Before each row the stores grew to the given number of finished deliveries (FerretDB: a package, a completed"
             f" assignment, its claim, holds slot and release per delivery; Redis: one delivery record each), then scenario 4"
             f" ran for {e2e_s} s at {f(growth_rate)}/s (the highest rate scenario 4 sustained).\n")
    svcs = sorted({n for v in s7.values() for n in v["memory"]})
    L.append("| deliveries in the stores | FerretDB docs added/s | Redis keys | POST→Scheduled p50/p95/p99 ms | all Scheduled after (s) | " + " | ".join(f"{n} RSS MB" for n in svcs) + " |")
    L.append("|" + "---|" * (5 + len(svcs)))
    for n, v in s7.items():
        e = v["e2e"] or {}
        sd = v["seed"] or {}
        rd = v["delivery_records"] or {}
        after = e.get("all_scheduled_after_s")
        L.append(f"| {int(n):,} | {f(sd.get('documents_per_s'))} | {f(rd.get('redis_keys'))} | {q(e.get('post_to_scheduled_produced_ms'))} | "
                 f"{(f(after, 2) if after >= 0 else 'not within drain') if after is not None else '—'} | "
                 + " | ".join(f(v['memory'].get(s, {}).get('rss_mb'), 1) for s in svcs) + " |")
    L.append("\nRSS here is the current resident size after each row (VmRSS), not the peak.\n")
else:
    L.append("No result (BENCH_GROWTH_SIZES empty, or see bench/work/logs).\n")
L.append("## Goals (reported against, not pass/fail)\n")
L.append("| goal | measured | met |")
L.append("|---|---|---|")
for g in goals:
    mv = g['measured']
    L.append(f"| {g['goal']} | {(f(mv, 3) if mv < 10 else f(mv, 0)) if isinstance(mv, float) else f(mv)} | {'—' if g['met'] is None else ('yes' if g['met'] else 'no')}{' (' + g['note'] + ')' if g.get('note') else ''} |")
L.append("")
L.append("### Where the time goes\n")
notes = []
if best_ing is not None and (best_ing < 15000 or (best_ratio or 0) < 0.6):
    base_best = max((s1[c]['rps']['median'] for c in conns if s1[c]['rps']), default=None)
    notes.append(f"Ingress: {f(best_ing)} requests/s against a baseline of {f(base_best)} requests/s with the same HTTP layer"
                 f" and a raw produce ceiling of {f(base_s2)} records/s. The baseline shows what the HTTP layer and wrk"
                 " together cost on these 2 cores; the ingress shares the same 2 cores with wrk and the broker.")
if run_rates:
    worst = s4[run_rates[-1]]
    cs, ic = worst.get("created_to_scheduled_ms"), worst.get("ingress_to_created_ms")
    parts = []
    if ic and ic["n"]:
        parts.append(f"ingress→Created (the workflow consuming dronedelivery.requests) p50 {ic['p50']:.0f} ms")
    if cs and cs["n"]:
        parts.append(f"Created→Scheduled (package stored in FerretDB, drone claimed in FerretDB by the scheduler, two Kafka round trips through the workflow) p50 {cs['p50']:.0f} ms")
    cpu_txt = ", ".join(f"{k} {v}" for k, v in sorted(cpu_s4.items(), key=lambda kv: -kv[1] if isinstance(kv[1], (int, float)) else 0)
                        if k not in ("wall_s", "machine_busy_s"))
    notes.append(f"End to end at {run_rates[-1]}/s: " + "; ".join(parts) + f". CPU seconds over scenario 4 ({cpu_s4.get('wall_s')} s wall, 2 cores), largest first: {cpu_txt}."
                 " The process that burns the CPU while the backlog grows is where the time goes.")
if prof_s4:
    line = (f"FerretDB profile, the last run at {prof_s4['rate']}/s ({prof_s4['wall_s']:.0f} s, load and drain):"
            f" {prof_s4['cpu_s']} CPU s for {prof_s4['deliveries']:,} deliveries")
    if prof_s4["cpu_ms_per_delivery"]:
        line += f", {prof_s4['cpu_ms_per_delivery']} ms of FerretDB CPU per delivery"
    if prof_s4["by_part"]:
        line += ". perf, share of its samples: " + ", ".join(f"{k} {v:.1f}%" for k, v in prof_s4["by_part"].items())
        line += ". Top symbols: " + ", ".join(f"{r['symbol']} {r['percent']:.1f}%" for r in prof_s4["top_symbols"][:8])
        line += (". Each command is its own SQLite transaction (prepare, step, commit to the WAL) with the document"
                 " converted BSON → SJSON; what would cut the cost per delivery is fewer commands (batched writes per"
                 " poll batch) or a server without the per-command overhead (MongoDB itself)")
    elif prof_s4["no_profile"]:
        line += f". No perf profile: {prof_s4['no_profile']}"
    notes.append(line + ".")
for c in conns:
    v = s3[c]
    if v["rps"] and v["p50_ms"]:
        little = int(c) / (v["p50_ms"]["median"] / 1000.0)
        if v["p50_ms"]["median"] < 10 and little < 1.5 * v["rps"]["median"]:
            notes.append(f"Ingress at {c} connections is bound by per-request latency, not CPU: {c} connections / p50"
                         f" {v['p50_ms']['median']:.2f} ms = {little:,.0f} requests/s ≈ the {v['rps']['median']:,.0f} measured"
                         " (wrk is closed-loop), with p50 close to the floor set by the producer: each request waits for"
                         " the broker's acknowledgement and the producer batches with linger.ms=5 (pl_producer_new), so"
                         " more connections, not more CPU, raise this figure.")
if cpu_s3.get("ingress") and cpu_s3.get("wall_s"):
    notes.append(f"Ingress CPU during scenario 3: {cpu_s3['ingress']} CPU s in {cpu_s3['wall_s']} s wall"
                 f" ({cpu_s3['ingress'] / cpu_s3['wall_s']:.2f} cores); broker {cpu_s3.get('kafka')} CPU s; wrk and other users"
                 f" {cpu_s3.get('other_s(load generator, other users)')} CPU s. The ingress is the largest CPU consumer;"
                 " what it does per request beyond the baseline is validation, JSON→Avro encoding, the produce call and the"
                 " suspend/resume of the connection (profile below).")
if prof_s3:
    th = ", ".join(f"{n} {v}" for n, v in prof_s3["thread_cpu_s"].items())
    line = (f"Ingress profile, the last run at {prof_s3['connections']} connections ({prof_s3['wall_s']:.0f} s):"
            f" CPU seconds by thread: {th}")
    if prof_s3["cpu_us_per_request"]:
        line += f"; {prof_s3['cpu_us_per_request']} µs of ingress CPU per request"
    line += ". MHD-worker threads parse HTTP and run the handler (validation, encoding, the produce call,"
    line += " the answer); rdk: threads are librdkafka's (the broker connection); the rest wait on the"
    line += " delivery reports and the ack deadlines."
    if prof_s3["by_library"]:
        line += " perf, share of the ingress's samples by library: " + ", ".join(
            f"{r['dso']} {r['percent']:.1f}%" for r in prof_s3["by_library"][:8]) + "."
    if prof_s3["by_symbol"]:
        line += " Top symbols: " + ", ".join(
            f"{r['symbol']} ({r['dso']}) {r['percent']:.1f}%" for r in prof_s3["by_symbol"][:15] if r["symbol"]) + "."
        line += (" What the kernel's share is made of (a call-graph profile, bench/README.md): the sockets"
                 " (recv; sendmsg, which on loopback also runs the receiver's side), epoll_ctl from suspending"
                 " each connection while its produce awaits the broker and resuming it, and the wake-ups"
                 " between threads; the baseline has no suspend/resume, no Kafka and no per-request"
                 " allocation.")
    elif prof_s3["no_profile"]:
        line += f" No perf profile: {prof_s3['no_profile']}."
    notes.append(line)
big = {n: v for n, v in svc_peaks.items() if v >= 30}
if big:
    notes.append("Memory: " + ", ".join(
        f"{n} peaked at {v} MB ({f(mem_s4.get(n, {}).get('peak_rss_mb'), 1)} MB after scenario 4, "
        f"{f(mem_end.get(n, {}).get('peak_rss_mb'), 1)} MB at the end of the run)" for n, v in big.items()) +
        ". The end-of-run peak of dronepipe-delivery is its replay's, the workflow's peak in scenario 6b its replay's;"
        " the ingress's end-of-run peak includes scenario 3 (512 connections).")
notes.append("An honest reading of every throughput figure needs the load average above: the generators run on the measured"
             " machine, and the machine is shared.")
for n in notes:
    L.append(f"- {n}")
L.append("")
L.append("Raw outputs (wrk text, JSON lines) stay in bench/work/raw (git-ignored). Reproduce: `make bench`.")
md = "\n".join(L) + "\n"

base = f"{date}-{commit}"
with open(os.path.join(out_dir, base + ".md"), "w") as fh:
    fh.write(md)
with open(os.path.join(out_dir, base + ".json"), "w") as fh:
    json.dump(report, fh, indent=2)
    fh.write("\n")
with open(os.path.join(out_dir, "latest.md"), "w") as fh:
    fh.write(f"<!-- copy of {base}.md; figures in {base}.json -->\n" + md)
print(f"[bench] wrote bench/results/{base}.md, {base}.json, latest.md")
