#!/usr/bin/env python3
"""Images at scale (issue 17): one dataset of N images, N = 1k, 10k, 100k (and
1M with BENCH_IMAGES_MAX=1000000), on SQLite and PostgreSQL.

    bench/run.sh images    (builds, starts a throwaway PostgreSQL, runs this;
                            writes the "## Images at scale" section of bench/RESULTS.md)

For each engine and N: import (POST .../dataset/import/, the body serialised
beforehand), export, the filtered query of bench/run.py (type filter and one
well, page of 100) first after a server start and warm (median of 10), add /
patch / delete of one image (median of 5 each) and the same query right after
each write, the query right after a write made by another server process on
the same database, a job whose parallel task (`/bin/true`) runs over the 100
images of one well and merges its outputs into the dataset (submit to done),
and the server's resident memory (VmRSS) after the series and its peak
(VmHWM). FRACTALCTL picks the binary (default build/fractalctl).
"""
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import fresh_database, free_port, rss_kb, start_server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIZES = [n for n in (1000, 10000, 100000, 1000000) if n <= int(os.environ.get("BENCH_IMAGES_MAX", "100000"))]
QUERY = {"type_filters": {"is_3D": True}, "attribute_filters": {"well": ["W0005"]}}


def status_kb(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def hwm_kb(pid):
    return status_kb(pid, "VmHWM")


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000, out


def raw_call(c, method, path, data, token):
    """A request whose body is already bytes (the client's json.dumps is not timed)."""
    import urllib.request
    req = urllib.request.Request(c.base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.status, r.read()


def images_of(zarr, n):
    return [{"zarr_url": f"{zarr}/p.zarr/{i // 100}/{i % 100}/0", "origin": None,
             "attributes": {"well": f"W{i // 100:04d}", "plate": "p.zarr", "field": i % 100},
             "types": {"is_3D": i % 2 == 0}} for i in range(n)]


def run_engine(engine, pg):
    work = Path(tempfile.mkdtemp(prefix=f"fractal-bench-images-{engine}-"))
    env = fresh_database(engine, pg, work, f"bench_images_{os.getpid()}", str(work / "zarr"),
                         {"FRACTAL_RUNNER_WORKING_BASE_DIR": str(work / "jobs")})
    port = free_port()
    proc, c, _ = start_server(env, work, port)
    tok = c.login("admin@example.org", "1234")
    st, p = c.call("POST", "/api/v2/project/", token=tok, body={"name": "scale"})
    pid = p["id"]
    st, t = c.call("POST", "/api/v2/task/", token=tok,
                   body={"name": "true-parallel", "version": "0.1.0", "command_parallel": "/bin/true", "type": "parallel"})
    assert st == 201, t
    st, wf = c.call("POST", f"/api/v2/project/{pid}/workflow/", token=tok, body={"name": "merge"})
    st, _ = c.call("POST", f"/api/v2/project/{pid}/workflow/{wf['id']}/wftask/", token=tok, body=[{"task_id": t["id"]}])
    assert st == 201
    rows = {}
    datasets = {}
    for n in SIZES:
        r = rows[n] = {}
        zarr = str(work / "zarr" / f"scale{n}")
        body = json.dumps({"name": f"scale {n}", "zarr_dir": zarr, "images": images_of(zarr, n)}).encode()
        r["stored_mb"] = None
        r["import"], (st, d) = timed(lambda: raw_call(c, "POST", f"/api/v2/project/{pid}/dataset/import/", body, tok))
        assert st == 201
        datasets[n] = (json.loads(d)["id"], zarr)
        del body
    # the first query after a start
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    proc, c, _ = start_server(env, work, port)
    tok = c.login("admin@example.org", "1234")
    other_port = free_port()
    other, oc, _ = start_server(env, work, other_port)
    otok = oc.login("admin@example.org", "1234")
    for n in SIZES:
        r = rows[n]
        did, zarr = datasets[n]
        base = f"/api/v2/project/{pid}/dataset/{did}"
        q = f"{base}/images/query/?page=1&page_size=100"

        def query():
            st, out = c.call("POST", q, body=QUERY, token=tok, parse=False)
            assert st == 200, out
            return out

        r["first"], out = timed(query)
        assert json.loads(out)["total_count"] == min(50, n // 2), out[:200]
        r["rss_first_mb"] = rss_kb(proc.pid) / 1024
        warm = [timed(query)[0] for _ in range(10)]
        r["warm"] = statistics.median(warm)
        adds, patches, deletes, after = [], [], [], {"add": [], "patch": [], "delete": []}
        for k in range(5):
            url = f"{zarr}/extra/{k}"
            ms, (st, out) = timed(lambda: c.call("POST", f"{base}/images/", token=tok, parse=False,
                                                  body={"zarr_url": url, "attributes": {"well": "W0005"},
                                                        "types": {"is_3D": True}}))
            assert st == 201, out
            adds.append(ms)
            after["add"].append(timed(query)[0])
            ms, (st, out) = timed(lambda: c.call("PATCH", f"{base}/images/", token=tok, parse=False,
                                                  body={"zarr_url": f"{zarr}/p.zarr/0/{2 * k}/0",
                                                        "attributes": {"well": "W0005", "patched": k}}))
            assert st == 200, out
            patches.append(ms)
            after["patch"].append(timed(query)[0])
            ms, (st, out) = timed(lambda: c.call("DELETE", f"{base}/images/?zarr_url={url}", token=tok, parse=False))
            assert st == 204, out
            deletes.append(ms)
            after["delete"].append(timed(query)[0])
        r["add"], r["patch"], r["delete"] = (statistics.median(x) for x in (adds, patches, deletes))
        r["after"] = statistics.median(after["add"] + after["patch"] + after["delete"])
        # a write by another process, then our query
        others = []
        for k in range(3):
            st, out = oc.call("POST", f"{base}/images/", token=otok, parse=False,
                              body={"zarr_url": f"{zarr}/other/{k}", "attributes": {}, "types": {}})
            assert st == 201, out
            others.append(timed(query)[0])
        r["after_other"] = statistics.median(others)
        r["export"] = statistics.median(timed(lambda: c.call("GET", f"{base}/export/", token=tok, parse=False))[0]
                                        for _ in range(3))
        # a job: a parallel task over the 100 images of one well, merged into the dataset
        t0 = time.perf_counter()
        st, job = c.call("POST", f"/api/v2/project/{pid}/job/submit/?workflow_id={wf['id']}&dataset_id={did}",
                         token=tok, body={"attribute_filters": {"well": ["W0007"]}})
        assert st == 202, job
        while job["status"] == "submitted":
            time.sleep(0.02)
            st, job = c.call("GET", f"/api/v2/project/{pid}/job/{job['id']}/", token=tok)
        assert job["status"] == "done", job["log"]
        r["job"] = (time.perf_counter() - t0) * 1000
        r["after_job"] = timed(query)[0]
        r["rss_mb"] = rss_kb(proc.pid) / 1024
        r["rss_file_mb"] = status_kb(proc.pid, "RssFile") / 1024
        r["hwm_mb"] = hwm_kb(proc.pid) / 1024
        st, out = c.call("GET", f"{base}/export/", token=tok, parse=False)
        r["stored_mb"] = len(json.dumps(json.loads(out)["images"], separators=(",", ":"))) / 1e6
        print(engine, n, {k: (round(v, 1) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
    for p_ in (proc, other):
        p_.send_signal(signal.SIGTERM)
        p_.wait(60)
    shutil.rmtree(work, ignore_errors=True)
    return rows


def table(rows):
    cols = [("import", "import (ms)", ".0f"), ("export", "export (ms)", ".0f"),
            ("first", "first query after a start (ms)", ".1f"), ("warm", "warm query (ms)", ".1f"),
            ("add", "add one (ms)", ".1f"), ("patch", "patch one (ms)", ".1f"), ("delete", "delete one (ms)", ".1f"),
            ("after", "query after our write (ms)", ".1f"), ("after_other", "query after another process's write (ms)", ".1f"),
            ("job", "job: parallel task over 100 images, merged (ms)", ".0f"), ("after_job", "query after the job (ms)", ".1f"),
            ("stored_mb", "stored list (MB)", ".1f"), ("rss_first_mb", "RSS after first query (MB)", ".0f"),
            ("rss_mb", "RSS after the series (MB)", ".0f"),
            ("rss_file_mb", "of which file pages (RssFile: the database's map and the binary; MB)", ".0f"),
            ("hwm_mb", "peak RSS (MB)", ".0f")]
    sizes = list(rows)
    out = ["| | " + " | ".join(f"{n:,} images" for n in sizes) + " |", "|---|" + "---:|" * len(sizes)]
    for key, label, spec in cols:
        out.append(f"| {label} | " + " | ".join(format(rows[n][key], spec) for n in sizes) + " |")
    if 1000 in rows and 100000 in rows:
        ratio = [f"{k} {rows[100000][k] / rows[1000][k]:.1f}×" for k in ("add", "patch", "delete", "after")]
        out.append(f"\n100,000 vs 1,000 images: " + ", ".join(ratio) + " (the goal: at most 5×).")
    return out


def main():
    pg = {"socket": os.environ["PGTEST_SOCKET"], "port": os.environ["PGTEST_PORT"]} if os.environ.get("PGTEST_SOCKET") else None
    engines = os.environ.get("BENCH_ENGINES", "sqlite,postgres" if pg else "sqlite").split(",")
    results = {e: run_engine(e, pg) for e in engines}
    out = ["## Images at scale", "",
           f"{os.cpu_count()} cores shared with other work (each engine's run says when, and how far; the 1-minute "
           f"load average was {os.getloadavg()[0]:.1f} at the end of the last run), with `bench/run.sh images` "
           f"(`bench/images.py`; BENCH_IMAGES_MAX=1000000 for the 1M points, BENCH_ENGINES=sqlite for one engine): one dataset of N "
           "images (zarr_url, origin, three attributes, one type), the query is bench/run.py's (type filter is_3D and one "
           "well, page of 100), latencies as a client sees them (request sent to the last byte read), medians of 5 for "
           "the writes and of 10 for the warm query. \"Another process\" is a second `fractalctl start` on the same "
           "database adding an image. The job's task is `/bin/true` over the 100 images of one well (100 "
           "subprocesses), so most of its time is theirs; the rest is the merge and the rewrite of the list.", "",
           "The issue's figures before this work (100,000 images, SQLite / PostgreSQL): add one image 1.8 s / 4.5 s, "
           "the query after any write 1.5 s / 2.3 s, 1.1 GB resident after a few writes, import 9 s / 5.5 s; at "
           "1,000,000 (SQLite) first query 30 s, warm 1.3 s, 2.5 GB resident. Upstream 2.8.1 at 100,000: add one "
           "image 2.3–3.2 s, the query after it 3–4 s.", ""]
    path = ROOT / "bench" / "RESULTS.md"
    old = path.read_text()
    m = re.search(r"\n## Images at scale\n", old)
    kept = {}
    if m:
        rest = old[m.end():]
        nxt = re.search(r"\n## ", rest)
        section = rest[:nxt.start()] if nxt else rest
        # an engine not run this time keeps its figures (and its date)
        for block in re.split(r"\n(?=### )", section)[1:]:
            kept[block.split("\n", 1)[0][4:].split(" ")[0]] = block.rstrip("\n")
        old = old[:m.start()] + (rest[nxt.start():] if nxt else "")
    when = datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    for e in ("sqlite", "postgres"):
        if e in results:
            out += [f"### {e} (run {when}, up to {max(results[e]):,} images)", ""] + table(results[e]) + [""]
        elif e in kept:
            out += [kept[e], ""]
    path.write_text(old.rstrip("\n") + "\n\n" + "\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
