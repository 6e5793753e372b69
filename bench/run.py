#!/usr/bin/env python3
"""The benchmark: upstream's API workload on our server, on SQLite and PostgreSQL.

    bench/run.sh            (builds, then runs this; writes bench/RESULTS.md)

For each engine: a fresh database, `fractalctl start` timed to its first
/api/alive/ answer, resident memory at idle, then upstream's benchmark users
(vanilla, power, dataset, project, job) populated through the HTTP API, each
endpoint of upstream's benchmarks/api_bench.py measured with one client
(median and p99 latency) and with `wrk -t2 -c16` (throughput), resident memory
after the load, a parallel task over 10,000 images (its time and the server's
memory before, at peak and after), and the scaling series (images query and dataset export with
1k/10k/100k images; project list with 10/100/1000 projects).
Endpoints the server does not serve yet are listed as such.
"""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = os.environ.get("FRACTALCTL", str(ROOT / "build" / "fractalctl"))
WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "5"))
SINGLE_N = int(os.environ.get("BENCH_SINGLE_N", "50"))
USERS = ["vanilla", "power", "dataset", "project", "job"]
JOBS_PER_USER = int(os.environ.get("BENCH_JOBS", "100"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, base):
        self.base = base

    def call(self, method, path, body=None, form=None, token=None, parse=True):
        data, headers = None, {}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if token:
            headers["Authorization"] = "Bearer " + token
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                text = r.read()
                return r.status, (json.loads(text) if text and parse else text)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def login(self, email, pwd):
        st, body = self.call("POST", "/auth/token/login/", form={"username": email, "password": pwd})
        assert st == 200, body
        return body["access_token"]


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wrk(url, method="GET", body=None, token=None, content_type="application/json"):
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write(f'wrk.method = "{method}"\n')
    if body is not None:
        text = body if isinstance(body, str) else json.dumps(body)
        script.write("wrk.body = " + json.dumps(text) + "\n")
        script.write(f'wrk.headers["Content-Type"] = "{content_type}"\n')
    if token:
        script.write(f'wrk.headers["Authorization"] = "Bearer {token}"\n')
    script.close()
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{WRK_SECONDS}s", "--latency", "-s", script.name, url],
                         capture_output=True, text=True).stdout
    os.unlink(script.name)
    rps = non2xx = 0.0
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
        if "Non-2xx" in line:
            non2xx = float(line.split()[-1])
    return rps, non2xx


def single(client, method, path, body=None, form=None, token=None, n=SINGLE_N):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        # the body is read whole but not parsed: the figure is the server's, not Python's json
        st, _ = client.call(method, path, body=body, form=form, token=token, parse=False)
        times.append((time.perf_counter() - t0) * 1000)
        assert st < 300, (path, st)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def populate(c, admin):
    """Upstream's benchmark users and volumes (benchmarks/populate_db), as far as served:
    the admin's working and failing tasks (shared through the default group);
    power: a project with 20 workflows (half of 1 task, half of 3), plus 99 more
    projects for the project-list figure; dataset: 20 datasets of 1,000 images and
    20 one-task workflows; project: 25 projects; job: a dataset of 10 images and a
    one-task workflow run JOBS_PER_USER times (upstream: 100 jobs), each job
    waited for (one submitted job per dataset at a time)."""
    tokens, ids = {}, {}
    task_ids = []
    # real commands that run in no time: the job benchmark measures the server
    for name, cmd in (("working", "/bin/true"), ("failing", "/bin/false")):
        st, t = c.call("POST", "/api/v2/task/", token=admin,
                       body={"name": name, "version": "0.1.0", "command_non_parallel": cmd,
                             "type": "non_parallel"})
        assert st == 201, t
        task_ids.append(t["id"])
    for u in USERS:
        email = f"{u}@example.org"
        st, user = c.call("POST", "/auth/register/", token=admin,
                          body={"email": email, "password": f"{u}-pwd", "project_dirs": [f"/bench/{u}"]})
        assert st == 201, user
        c.call("PATCH", f"/auth/users/{user['id']}/", token=admin, body={"is_verified": True, "profile_id": 1})
        tokens[u] = c.login(email, f"{u}-pwd")
    for u, n in (("power", 100), ("project", 25), ("vanilla", 1), ("dataset", 1), ("job", 1)):
        for i in range(n):
            st, p = c.call("POST", "/api/v2/project/", token=tokens[u], body={"name": f"project {i}"})
            assert st == 201, p
            ids.setdefault(u, p["id"])

    def workflows(user, n, three_every=0):
        for i in range(n):
            st, wf = c.call("POST", f"/api/v2/project/{ids[user]}/workflow/", token=tokens[user],
                            body={"name": f"workflow {i}"})
            assert st == 201, wf
            wts = [{"task_id": task_ids[0]}]
            if three_every and i % three_every == 0:
                wts += [{"task_id": task_ids[0]}, {"task_id": task_ids[1]}]
            st, _ = c.call("POST", f"/api/v2/project/{ids[user]}/workflow/{wf['id']}/wftask/", token=tokens[user], body=wts)
            assert st == 201

    workflows("power", 20, three_every=2)
    workflows("dataset", 20)
    pid = ids["dataset"]
    for k in range(20):
        zarr = f"/bench/dataset/d{k}"
        images = [{"zarr_url": f"{zarr}/plate.zarr/{i // 100}/{i % 100}/0",
                   "attributes": {"well": f"{chr(65 + (i // 100) % 8)}{i % 12:02d}", "plate": "p.zarr", "idx": i},
                   "types": {"is_3D": i % 2 == 0}} for i in range(1000)]
        st, d = c.call("POST", f"/api/v2/project/{pid}/dataset/import/", token=tokens["dataset"],
                       body={"name": f"dataset {k}", "zarr_dir": zarr, "images": images})
        assert st == 201, d
        ids.setdefault("dataset_id", d["id"])
    # job user
    pj = ids["job"]
    zarr = "/bench/job/zarr"
    images = [{"zarr_url": f"{zarr}/p.zarr/A/{i:02d}/0", "attributes": {"well": f"A{i:02d}"}, "types": {}}
              for i in range(10)]
    st, d = c.call("POST", f"/api/v2/project/{pj}/dataset/import/", token=tokens["job"],
                   body={"name": "jobs dataset", "zarr_dir": zarr, "images": images})
    assert st == 201, d
    st, wf = c.call("POST", f"/api/v2/project/{pj}/workflow/", token=tokens["job"], body={"name": "jobs"})
    assert st == 201, wf
    st, _ = c.call("POST", f"/api/v2/project/{pj}/workflow/{wf['id']}/wftask/", token=tokens["job"],
                   body=[{"task_id": task_ids[0]}])
    assert st == 201
    t0 = time.perf_counter()
    for i in range(JOBS_PER_USER):
        st, job = c.call("POST", f"/api/v2/project/{pj}/job/submit/?workflow_id={wf['id']}&dataset_id={d['id']}",
                         token=tokens["job"], body={})
        assert st == 202, job
        while job["status"] == "submitted":
            time.sleep(0.005)
            st, job = c.call("GET", f"/api/v2/project/{pj}/job/{job['id']}/", token=tokens["job"])
        assert job["status"] == "done", job
    ids["job_seconds"] = (time.perf_counter() - t0) / JOBS_PER_USER
    return tokens, ids


def start_server(env, cwd, port):
    t0 = time.perf_counter()
    proc = subprocess.Popen([BIN, "start", "--port", str(port)], env=env, cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c = Client(f"http://127.0.0.1:{port}")
    while True:
        try:
            if c.call("GET", "/api/alive/")[0] == 200:
                break
        except OSError:
            pass
        if time.perf_counter() - t0 > 30:
            raise SystemExit("server did not start")
    return proc, c, (time.perf_counter() - t0) * 1000


def fresh_database(engine, pg, work, name, project_dir, extra=None):
    """Settings for a new, initialised database (admin@example.org / 1234) in work."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRACTAL_", "POSTGRES_", "DB_", "SQLITE_"))}
    env.update({"JWT_SECRET_KEY": "bench", "FRACTAL_DEFAULT_GROUP_NAME": "All", "FRACTAL_LOGGING_LEVEL": "30"})
    env.update(extra or {})
    if engine == "sqlite":
        env.update({"DB_ENGINE": "sqlite", "SQLITE_PATH": str(work / "bench.sqlite")})
    else:
        subprocess.run(["psql", "-h", pg["socket"], "-p", pg["port"], "-U", "postgres", "-qc",
                        f'CREATE DATABASE "{name}" OWNER fractal'], check=True)
        env.update({"DB_ENGINE": "postgres", "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": pg["port"],
                    "POSTGRES_USER": "fractal", "POSTGRES_PASSWORD": "fractal-test-pw", "POSTGRES_DB": name})
    for cmd in (["set-db"], ["init-db-data", "--resource", "default", "--profile", "default", "--admin-email",
                             "admin@example.org", "--admin-pwd", "1234", "--admin-project-dir", project_dir]):
        subprocess.run([BIN] + cmd, env=env, cwd=work, check=True, capture_output=True)
    return env


def run_engine(engine, pg):
    work = Path(tempfile.mkdtemp(prefix=f"fractal-bench-{engine}-"))
    env = fresh_database(engine, pg, work, f"bench_{os.getpid()}", "/bench")
    res = {}
    port = free_port()
    proc, c, res["start_ms"] = start_server(env, work, port)
    time.sleep(0.5)
    res["rss_idle_kb"] = rss_kb(proc.pid)
    admin = c.login("admin@example.org", "1234")
    tokens, ids = populate(c, admin)
    base = f"http://127.0.0.1:{port}"
    pid, did = ids["dataset"], ids["dataset_id"]
    endpoints = [
        ("GET /api/alive/", "GET", "/api/alive/", None, None),
        ("GET /api/v2/project/{p}/dataset/", "GET", f"/api/v2/project/{pid}/dataset/", None, tokens["dataset"]),
        (f"GET /api/v2/job/ ({JOBS_PER_USER} jobs)", "GET", "/api/v2/job/", None, tokens["job"]),
        ("GET /api/v2/project/ (100 projects)", "GET", "/api/v2/project/", None, tokens["power"]),
        ("GET /api/v2/task-group/", "GET", "/api/v2/task-group/", None, tokens["vanilla"]),
        ("GET /api/v2/project/{p}/workflow/ (20 workflows)", "GET", f"/api/v2/project/{ids['power']}/workflow/", None,
         tokens["power"]),
        ("POST .../images/query/ (1,000 images, page of 1,000)", "POST",
         f"/api/v2/project/{pid}/dataset/{did}/images/query/", {}, tokens["dataset"]),
        ("GET /auth/current-user/", "GET", "/auth/current-user/", None, tokens["vanilla"]),
    ]
    rows = []
    for label, method, path, body, token in endpoints:
        if method is None:
            rows.append((label, None, None, None))
            continue
        med, p99 = single(c, method, path, body=body, token=token)
        rps, bad = wrk(base + path, method, body, token)
        rows.append((label, med, p99, rps))
    # login: bound by bcrypt on purpose
    med, p99 = single(c, "POST", "/auth/token/login/", form={"username": "vanilla@example.org", "password": "vanilla-pwd"}, n=10)
    rps, _ = wrk(base + "/auth/token/login/", "POST", "username=vanilla%40example.org&password=vanilla-pwd",
                 None, "application/x-www-form-urlencoded")
    rows.append(("POST /auth/token/login/", med, p99, rps))
    res["rows"] = rows
    res["job_ms"] = ids["job_seconds"] * 1000
    res["rss_load_kb"] = rss_kb(proc.pid)
    # a parallel task over 10,000 images: one `/bin/true` subprocess per image
    zarr = "/bench/dataset/bigjob"
    images = [{"zarr_url": f"{zarr}/p.zarr/{i // 100}/{i % 100}/0", "attributes": {"well": f"W{i // 100:04d}"},
               "types": {"is_3D": True}} for i in range(10000)]
    st, d = c.call("POST", f"/api/v2/project/{pid}/dataset/import/", token=tokens["dataset"],
                   body={"name": "big job", "zarr_dir": zarr, "images": images})
    assert st == 201, d
    big_dataset = d["id"]
    st, t = c.call("POST", "/api/v2/task/", token=admin,
                   body={"name": "true-parallel", "version": "0.1.0", "command_parallel": "/bin/true",
                         "type": "parallel"})
    assert st == 201, t
    st, wf = c.call("POST", f"/api/v2/project/{pid}/workflow/", token=tokens["dataset"], body={"name": "big job"})
    assert st == 201, wf
    st, _ = c.call("POST", f"/api/v2/project/{pid}/workflow/{wf['id']}/wftask/", token=tokens["dataset"],
                   body=[{"task_id": t["id"]}])
    assert st == 201
    time.sleep(1)
    rss0 = rss_kb(proc.pid)
    t0 = time.perf_counter()
    st, job = c.call("POST", f"/api/v2/project/{pid}/job/submit/?workflow_id={wf['id']}&dataset_id={big_dataset}",
                     token=tokens["dataset"], body={})
    assert st == 202, job
    peak = rss0
    while job["status"] == "submitted":
        time.sleep(0.1)
        peak = max(peak, rss_kb(proc.pid))
        st, job = c.call("GET", f"/api/v2/project/{pid}/job/{job['id']}/", token=tokens["dataset"])
    assert job["status"] == "done", job["log"]
    secs = time.perf_counter() - t0
    time.sleep(1)
    res["big_job"] = (secs, rss0, peak, rss_kb(proc.pid))
    # scaling: images in one dataset; projects of one user
    scale = []
    for n in (1000, 10000, 100000):
        zarr = f"/bench/dataset/scale{n}"
        images = [{"zarr_url": f"{zarr}/p.zarr/{i // 100}/{i % 100}/0", "attributes": {"well": f"W{i // 100:04d}"},
                   "types": {"is_3D": i % 2 == 0}} for i in range(n)]
        st, d = c.call("POST", f"/api/v2/project/{pid}/dataset/import/", token=tokens["dataset"],
                       body={"name": f"scale {n}", "zarr_dir": zarr, "images": images})
        assert st == 201, d
        q = f"/api/v2/project/{pid}/dataset/{d['id']}/images/query/?page=1&page_size=100"
        qmed, _ = single(c, "POST", q, body={"type_filters": {"is_3D": True}, "attribute_filters": {"well": ["W0005"]}},
                         token=tokens["dataset"], n=10)
        gmed, _ = single(c, "GET", f"/api/v2/project/{pid}/dataset/{d['id']}/", token=tokens["dataset"], n=10)
        emed, _ = single(c, "GET", f"/api/v2/project/{pid}/dataset/{d['id']}/export/", token=tokens["dataset"], n=5)
        scale.append((f"{n:,} images", qmed, gmed, emed))
    res["scale_images"] = scale
    pscale = []
    for n in (10, 100, 1000):
        email = f"scale{n}@example.org"
        st, u = c.call("POST", "/auth/register/", token=admin, body={"email": email, "password": "abcd", "project_dirs": ["/b"]})
        c.call("PATCH", f"/auth/users/{u['id']}/", token=admin, body={"is_verified": True, "profile_id": 1})
        tok = c.login(email, "abcd")
        for i in range(n):
            c.call("POST", "/api/v2/project/", token=tok, body={"name": f"p{i}"})
        med, _ = single(c, "GET", "/api/v2/project/", token=tok, n=20)
        pscale.append((f"{n:,} projects", med))
    res["scale_projects"] = pscale
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    shutil.rmtree(work, ignore_errors=True)
    return res


def fmt(v, spec):
    return "—" if v is None else format(v, spec)


def main():
    pg = {"socket": os.environ["PGTEST_SOCKET"], "port": os.environ["PGTEST_PORT"]} if os.environ.get("PGTEST_SOCKET") else None
    results = {e: run_engine(e, pg) for e in (["sqlite", "postgres"] if pg else ["sqlite"])}
    out = [f"# Benchmark results\n",
           f"Run on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, {os.cpu_count()} cores, "
           f"`wrk -t2 -c16 -d{WRK_SECONDS}s` for throughput (client and server share the machine), "
           f"{SINGLE_N} sequential requests for latency (request sent to last byte of the answer read; "
           "the answer is not parsed). Re-run with `bench/run.sh`.\n",
           "Upstream 2.8.1 on a 2-core machine (the issue's figures): start ~2 s, 106 MB idle / ~150 MB after load, "
           "alive ~4,500 req/s, project list (100 projects) ~65 req/s, dataset of 1,000 images ~60 req/s, "
           "images query returning 1,000 images ~7 req/s, login ~4 req/s.\n"]
    for engine, r in results.items():
        out.append(f"## {engine}\n")
        out.append(f"- start to first `/api/alive/` answer: {r['start_ms']:.0f} ms")
        out.append(f"- resident memory: {r['rss_idle_kb'] / 1024:.1f} MB idle, {r['rss_load_kb'] / 1024:.1f} MB after load")
        out.append(f"- a one-task job over 10 images, submit to `done` as seen by a polling client: {r['job_ms']:.0f} ms")
        secs, r0, rp, r1 = r["big_job"]
        out.append(f"- a parallel task over 10,000 images (10,000 `/bin/true` subprocesses, history and image merge): "
                   f"{secs:.1f} s; resident memory {r0 / 1024:.1f} MB before, {rp / 1024:.1f} MB at peak, "
                   f"{r1 / 1024:.1f} MB after\n")
        out.append("| endpoint | median ms | p99 ms | req/s (16 connections) |")
        out.append("|---|---:|---:|---:|")
        for label, med, p99, rps in r["rows"]:
            if med is None:
                out.append(f"| {label} | not served yet | | |")
            else:
                out.append(f"| {label} | {fmt(med, '.2f')} | {fmt(p99, '.2f')} | {fmt(rps, ',.0f')} |")
        out.append("\n| dataset size | images query, page of 100 (ms) | dataset GET (ms) | dataset export (ms) |")
        out.append("|---|---:|---:|---:|")
        for label, q, g, e in r["scale_images"]:
            out.append(f"| {label} | {q:.1f} | {g:.2f} | {e:.1f} |")
        out.append("\n| projects of one user | project list (ms) |")
        out.append("|---|---:|")
        for label, m in r["scale_projects"]:
            out.append(f"| {label} | {m:.2f} |")
        out.append("")
    # bench/slurm.sh's and bench/accesslog.sh's sections (at the end), kept
    path = ROOT / "bench" / "RESULTS.md"
    old = path.read_text() if path.exists() else ""
    kept = [i for i in (old.find("\n## SLURM (slurm_sudo)\n"), old.find("\n## Access log\n")) if i >= 0]
    slurm = min(kept) if kept else -1
    body = "\n".join(out) + "\n"
    path.write_text(body if slurm < 0 else body.rstrip("\n") + "\n" + old[slurm:])
    print("\n".join(out))


if __name__ == "__main__":
    main()
