#!/usr/bin/env python3
"""The SLURM benchmark: jobs on a slurm_sudo resource, on a real single-node cluster.

    bench/slurm.sh          (builds, starts tests/slurm_cluster.sh's cluster, runs this;
                             writes the "## SLURM (slurm_sudo)" section of bench/RESULTS.md)

One server (`fractalctl start`, FRACTAL_RUNNER_BACKEND=slurm_sudo, SQLite) whose
admin runs jobs as the cluster's user (SLURMTEST_USER) through sudo, on a
slurm_sudo resource with jobs_poll_interval 1 (then 5 for one figure):

1. a one-task job (the mock package's generic_task, sleep_time 0, one image),
   submit to `done` as seen by a client polling every 20 ms; median of
   BENCH_SLURM_RUNS (10) runs after one warm-up run, each submitted after a
   random pause of up to one poll interval; again (BENCH_SLURM_RUNS5, 5 runs)
   with the default interval of 5 s;
2. a parallel task (`/bin/true`) over 100 and over BENCH_SLURM_UNITS (1,000)
   images, tasks_per_job 100 and parallel_tasks_per_job 2 from the workflow
   task's meta_parallel: submit to `done`, the SLURM jobs' own span (sacct),
   the server's resident memory before, at peak (VmHWM, reset through
   /proc/PID/clear_refs before the submission) and after;
3. BENCH_SLURM_JOBS (20) concurrent jobs, each one generic_task sleeping 60 s:
   once all are submitted to SLURM, the server's CPU time (utime+stime of
   /proc/PID/stat, and its children's) and resident memory over a
   BENCH_SLURM_WINDOW (20) s window, and the squeue/sacct calls made in it;
   the same window with no job first, for comparison. The jobs are stopped
   afterwards (the stop route).

BENCH_SLURM_WRITE=0 prints the section without writing RESULTS.md (for trials
with small sizes, e.g. BENCH_SLURM_UNITS=30 BENCH_SLURM_JOBS=3).

squeue and sacct calls are counted by wrappers put first on the server's
PATH (the server runs them without sudo, found through PATH): each appends
a line (time, arguments) to a log and execs the real command.
"""
import json
import os
import pwd
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import Client, free_port, rss_kb  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = os.environ.get("FRACTALCTL", str(ROOT / "build" / "fractalctl"))
MOCK = ROOT / "tests" / "mock_tasks" / "fractal_tasks_mock"
PY = "/usr/bin/python3"
USER = os.environ.get("SLURMTEST_USER")
RUNS = int(os.environ.get("BENCH_SLURM_RUNS", "10"))
RUNS5 = int(os.environ.get("BENCH_SLURM_RUNS5", "5"))
UNITS = int(os.environ.get("BENCH_SLURM_UNITS", "1000"))
NJOBS = int(os.environ.get("BENCH_SLURM_JOBS", "20"))
WINDOW = float(os.environ.get("BENCH_SLURM_WINDOW", "20"))
SLEEP = int(os.environ.get("BENCH_SLURM_SLEEP", "60"))
BATCH = {"tasks_per_job": 100, "parallel_tasks_per_job": 2}
TICK = os.sysconf("SC_CLK_TCK")
# tests/test_slurm.py's resource (1 CPU and 100 MB per task on partition main), but with max_num_jobs 50
# instead of 4: the heuristics refuse 1,000 units in batches of 100 (10 SLURM jobs) beyond max_num_jobs
RUNNER = {"default_slurm_config": {"partition": "main", "cpus_per_task": 1, "mem": "100M"},
          "batching_config": {"target_cpus_per_job": 1, "max_cpus_per_job": 2, "target_mem_per_job": 200,
                              "max_mem_per_job": 500, "target_num_jobs": 2, "max_num_jobs": 50}}

WRAPPER = """#!/bin/sh
printf '%s {name} %s\\n' "$(date +%s.%N)" "$*" >> {log}
exec {real} "$@"
"""


def status_kb(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def cpu_ticks(pid):
    """(utime+stime, cutime+cstime) of pid, in clock ticks."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    # fields 14-17 of proc(5); f[0] is field 3 (state)
    return int(f[11]) + int(f[12]), int(f[13]) + int(f[14])


class Bench:
    def __init__(self):
        if not USER or not os.environ.get("SLURM_CONF"):
            raise SystemExit("bench/slurm.py needs the cluster of tests/slurm_cluster.sh: run bench/slurm.sh")
        self.base = Path(tempfile.mkdtemp(prefix="fractal-bench-slurm-", dir="/tmp"))
        self.base.chmod(0o755)
        self.user_dir = self.base / "user"
        self.user_dir.mkdir()
        pw = pwd.getpwnam(USER)
        os.chown(self.user_dir, pw.pw_uid, pw.pw_gid)
        self.work = self.base / "server"
        self.work.mkdir()
        # the squeue and sacct wrappers
        self.calls = self.base / "calls.log"
        wrap = self.base / "bin"
        wrap.mkdir()
        for name in ("squeue", "sacct"):
            real = shutil.which(name)
            (wrap / name).write_text(WRAPPER.format(name=name, log=self.calls, real=real))
            (wrap / name).chmod(0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FRACTAL_", "POSTGRES_", "DB_", "SQLITE_"))}
        self.db_path = self.work / "bench.sqlite"
        env.update({"JWT_SECRET_KEY": "bench", "FRACTAL_DEFAULT_GROUP_NAME": "All", "DB_ENGINE": "sqlite",
                    "SQLITE_PATH": str(self.db_path), "FRACTAL_RUNNER_BACKEND": "slurm_sudo",
                    "PATH": f"{wrap}:{env.get('PATH', '/usr/bin:/bin')}"})
        for cmd in (["set-db"], ["init-db-data", "--resource", "default", "--profile", "default", "--admin-email",
                                 "admin@example.org", "--admin-pwd", "1234", "--admin-project-dir",
                                 str(self.user_dir)]):
            subprocess.run([BIN] + cmd, env=env, cwd=self.work, check=True, capture_output=True)
        self.log = open(self.base / "server.log", "w")
        port = free_port()
        self.proc = subprocess.Popen([BIN, "start", "--port", str(port)], env=env, cwd=self.work,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.c = Client(f"http://127.0.0.1:{port}")
        deadline = time.time() + 30
        while True:
            try:
                if self.c.call("GET", "/api/alive/")[0] == 200:
                    break
            except OSError:
                time.sleep(0.02)
            if time.time() > deadline or self.proc.poll() is not None:
                raise SystemExit("server did not start: " + (self.base / "server.log").read_text())
        self.tok = self.c.login("admin@example.org", "1234")
        self.resource = {
            "type": "slurm_sudo", "name": "Cluster", "jobs_local_dir": str(self.base / "jobs"),
            "tasks_local_dir": str(self.base / "tasks"), "jobs_slurm_python_worker": PY,
            "jobs_poll_interval": 1, "jobs_runner_config": RUNNER, "tasks_pixi_config": {},
            "tasks_python_config": {"default_version": "3.11", "versions": {"3.11": PY}}}
        st, res = self.call("POST", "/admin/v2/resource/", self.resource)
        assert st == 201, res
        self.resource_id = res["id"]
        st, prof = self.call("POST", f"/admin/v2/resource/{res['id']}/profile/",
                             {"resource_type": "slurm_sudo", "name": "cluster", "username": USER})
        assert st == 201, prof
        st, me = self.call("GET", "/auth/current-user/")
        st, body = self.call("PATCH", f"/auth/users/{me['id']}/",
                             {"profile_id": prof["id"], "project_dirs": [str(self.user_dir)]})
        assert st == 200, body
        self.generic = self.task("generic_task", command_non_parallel=f"{PY} {MOCK / 'generic_task.py'}")
        self.true = self.task("true_parallel", command_parallel="/bin/true", type="parallel")
        st, p = self.call("POST", "/api/v2/project/", {"name": "slurm bench"})
        assert st == 201, p
        self.pid = p["id"]
        self.nds = 0

    def call(self, method, path, body=None):
        return self.c.call(method, path, body=body, token=self.tok)

    def task(self, name, **fields):
        st, t = self.call("POST", "/api/v2/task/", {"name": name, "version": "0.0.1", **fields})
        assert st == 201, t
        return t["id"]

    def dataset(self, n_images):
        self.nds += 1
        zarr = f"{self.user_dir}/zarr{self.nds}"
        images = [{"zarr_url": f"{zarr}/p.zarr/{i // 100}/{i % 100}/0", "attributes": {"well": f"W{i // 100:04d}"},
                   "types": {}} for i in range(n_images)]
        st, d = self.call("POST", f"/api/v2/project/{self.pid}/dataset/import/",
                          {"name": f"ds{self.nds}", "zarr_dir": zarr, "images": images})
        assert st == 201, d
        return d["id"]

    def workflow(self, name, task_id, **wft):
        st, wf = self.call("POST", f"/api/v2/project/{self.pid}/workflow/", {"name": name})
        assert st == 201, wf
        st, b = self.call("POST", f"/api/v2/project/{self.pid}/workflow/{wf['id']}/wftask/",
                          [{"task_id": task_id, **wft}])
        assert st == 201, b
        return wf["id"]

    def submit(self, wid, did):
        st, job = self.call("POST", f"/api/v2/project/{self.pid}/job/submit/?workflow_id={wid}&dataset_id={did}", {})
        assert st == 202, job
        return job

    def job(self, jid):
        st, job = self.call("GET", f"/api/v2/project/{self.pid}/job/{jid}/")
        assert st == 200, job
        return job

    def wait(self, jid, every=0.02, timeout=1800, sample=None):
        deadline = time.time() + timeout
        while True:
            job = self.job(jid)
            if job["status"] != "submitted":
                return job
            if time.time() > deadline:
                raise AssertionError(f"job {jid} still submitted after {timeout} s:\n{self.server_log()}")
            if sample:
                sample()
            time.sleep(every)

    def slurm_ids(self, jid):
        con = sqlite3.connect(self.db_path, timeout=30)
        try:
            rows = con.execute("SELECT slurm_job_ids FROM accountingrecordslurm WHERE fractal_job_id = ?",
                               (jid,)).fetchall()
        finally:
            con.close()
        return [i for (raw,) in rows for i in json.loads(raw)]

    def calls_between(self, t0, t1, name="squeue"):
        out = []
        if not self.calls.exists():
            return out
        for line in self.calls.read_text().splitlines():
            ts, cmd, args = (line.split(" ", 2) + [""])[:3]
            if cmd == name and t0 <= float(ts) <= t1:
                out.append((float(ts), args))
        return out

    def server_log(self):
        self.log.flush()
        return (self.base / "server.log").read_text()[-4000:]

    def close(self, keep=False):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
        self.log.close()
        if not keep:
            shutil.rmtree(self.base, ignore_errors=True)

    # ---- the measurements ----

    def one_task(self, runs, interval):
        """Submit-to-done of a one-task job, `runs` times, each submitted after a random pause of up to one
        poll interval (so that submissions fall anywhere between two polls); per run: the seconds, when
        sbatch had answered (the job log's line), the squeue calls made, and the time from the last of them
        (the one that saw the SLURM job end) to `done` as the client saw it."""
        did = self.dataset(1)
        wid = self.workflow(f"one task {self.nds}", self.generic, args_non_parallel={"sleep_time": 0})
        rng = random.Random(runs * 1000 + interval)
        out = []
        for _ in range(runs):
            time.sleep(rng.uniform(0, interval))
            w0 = time.time()
            t0 = time.perf_counter()
            job = self.submit(wid, did)
            job = self.wait(job["id"])
            secs = time.perf_counter() - t0
            w1 = time.time()
            assert job["status"] == "done", job["log"]
            polls = self.calls_between(w0, w1)
            sb = [ln for ln in job["log"].splitlines() if "[_submit_single_sbatch]" in ln]
            sbatch = (datetime.strptime(sb[0][:23], "%Y-%m-%d %H:%M:%S,%f").timestamp() - w0) if sb else None
            out.append({"secs": secs, "sbatch": sbatch, "polls": len(polls),
                        "after": (w1 - polls[-1][0]) if polls else None})
        return out

    def parallel(self, n):
        did = self.dataset(n)
        wid = self.workflow(f"parallel {n}", self.true, meta_parallel=BATCH)
        time.sleep(1)
        pid = self.proc.pid
        rss0 = rss_kb(pid)
        open(f"/proc/{pid}/clear_refs", "w").write("5")  # resets VmHWM to the current RSS
        peak = [rss0]
        c0 = cpu_ticks(pid)
        t0 = time.perf_counter()
        w0 = time.time()
        job = self.submit(wid, did)
        job = self.wait(job["id"], every=0.1, sample=lambda: peak.append(rss_kb(pid)))
        secs = time.perf_counter() - t0
        w1 = time.time()
        c1 = cpu_ticks(pid)
        assert job["status"] == "done", job["log"][-3000:]
        hwm = status_kb(pid, "VmHWM")
        time.sleep(1)
        rss1 = rss_kb(pid)
        ids = self.slurm_ids(job["id"])
        span = slurm_span(ids)
        squeues = len(self.calls_between(w0, w1))
        return {"n": n, "secs": secs, "rss0": rss0, "peak": max(max(peak), hwm), "rss1": rss1, "slurm_jobs": len(ids),
                "span": span, "squeue": squeues, "sacct": len(self.calls_between(w0, w1, "sacct")),
                "cpu": (c1[0] - c0[0]) / TICK, "child_cpu": (c1[1] - c0[1]) / TICK}

    def window(self, seconds):
        """The server's CPU, memory and squeue calls over a window of `seconds`."""
        pid = self.proc.pid
        rss = []
        c0 = cpu_ticks(pid)
        w0 = time.time()
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            rss.append(rss_kb(pid))
            time.sleep(0.25)
        c1 = cpu_ticks(pid)
        w1 = time.time()
        secs = time.perf_counter() - t0
        sq = self.calls_between(w0, w1)
        return {"secs": secs, "cpu": (c1[0] - c0[0]) / TICK, "child_cpu": (c1[1] - c0[1]) / TICK,
                "rss_min": min(rss), "rss_max": max(rss), "squeue": len(sq),
                "ids_per_squeue": [len(a.split("--jobs ", 1)[1].split(",")) if "--jobs " in a else 0 for _, a in sq],
                "sacct": len(self.calls_between(w0, w1, "sacct")),
                "gaps": [b[0] - a[0] for a, b in zip(sq, sq[1:])]}

    def concurrent(self, n, seconds):
        wid = self.workflow("sleepers", self.generic, args_non_parallel={"sleep_time": SLEEP})
        dids = [self.dataset(1) for _ in range(n)]
        idle = self.window(seconds)
        rss_before = rss_kb(self.proc.pid)
        jobs = [self.submit(wid, d)["id"] for d in dids]
        deadline = time.time() + 120
        while not all(self.slurm_ids(j) for j in jobs):
            if time.time() > deadline:
                raise AssertionError("the jobs were not all submitted to SLURM within 120 s:\n" + self.server_log())
            time.sleep(0.2)
        time.sleep(1)
        states = squeue_states([i for j in jobs for i in self.slurm_ids(j)])
        busy = self.window(seconds)
        t0 = time.perf_counter()
        for j in jobs:
            st, body = self.call("GET", f"/api/v2/project/{self.pid}/job/{j}/stop/")
            assert st == 202, body
        ends = [self.wait(j, every=0.2, timeout=300)["status"] for j in jobs]
        stop_secs = time.perf_counter() - t0
        return {"idle": idle, "busy": busy, "states": states, "ends": ends, "stop_secs": stop_secs,
                "rss_before": rss_before}

    def set_interval(self, seconds):
        body = dict(self.resource, jobs_poll_interval=seconds)
        st, res = self.call("PUT", f"/admin/v2/resource/{self.resource_id}/", body)
        assert st == 200, res


def slurm_span(ids):
    """(first Start, last End) of SLURM jobs, in seconds (sacct's resolution: 1 s)."""
    if not ids:
        return None
    out = subprocess.run(["sacct", "--noheader", "-X", "-P", "--format=JobID,Start,End", "-j",
                          ",".join(map(str, ids))], capture_output=True, text=True).stdout
    starts, ends = [], []
    for line in out.splitlines():
        _, s, e = line.split("|")
        try:
            starts.append(datetime.fromisoformat(s))
            ends.append(datetime.fromisoformat(e))
        except ValueError:
            return None
    return (max(ends) - min(starts)).total_seconds() if starts else None


def squeue_states(ids):
    out = subprocess.run(["squeue", "--noheader", "--format=%T", "--jobs", ",".join(map(str, ids))],
                         capture_output=True, text=True).stdout.split()
    return {s: out.count(s) for s in sorted(set(out))}


def med(v):
    return statistics.median(v) if v else float("nan")


def report(r):
    mb = lambda kb: kb / 1024  # noqa: E731
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = ["## SLURM (slurm_sudo)\n",
           f"Run on {now}, {os.cpu_count()} cores, with `bench/slurm.sh` (`bench/slurm.py`): the optimised "
           "binary on SQLite (these figures are the runner's and SLURM's; the engine does not matter for them), "
           "`FRACTAL_RUNNER_BACKEND=slurm_sudo`, a `slurm_sudo` resource with `jobs_poll_interval` 1 (the "
           "default is 5) and tests/test_slurm.py's runner config (partition `main`, 1 CPU and 100 MB per "
           "task) with the batching config's `max_num_jobs` 50 instead of 4 (with 4 the heuristics refuse the "
           "10 SLURM jobs of the 1,000-unit task: `Requested num_jobs=10 but max_num_jobs=4.`), the admin's profile running as the cluster's user through sudo. The cluster is "
           "`tests/slurm_cluster.sh`'s: one node (this machine, "
           f"{os.cpu_count()} CPUs, so at most {os.cpu_count()} one-CPU SLURM jobs run at once), slurmctld, "
           "slurmd, slurmdbd and MariaDB sharing the cores with the server and the client. Other test suites "
           f"may have been running on the machine at the same time (1-minute load average "
           f"{r['load'][0]:.2f} at the start, {r['load'][1]:.2f} at the end).\n"]
    def one(runs, interval):
        secs = [x["secs"] for x in runs]
        sb = [x["sbatch"] * 1000 for x in runs if x["sbatch"] is not None]
        after = [x["after"] * 1000 for x in runs if x["after"] is not None]
        polls = [x["polls"] for x in runs]
        return (f"with `jobs_poll_interval` {interval}: median **{med(secs):.2f} s** over {len(runs)} runs "
                f"(min {min(secs):.2f}, max {max(secs):.2f}); sbatch had answered {med(sb):.0f} ms after the "
                f"submission (median), the server made {min(polls)}-{max(polls)} `squeue` calls per job, and "
                f"`done` came {med(after):.0f} ms (median) after the call that saw the SLURM job end")
    out.append(f"- a one-task job (the mock package's `generic_task`, `sleep_time` 0, one image: one SLURM job of "
               f"one unit), submit to `done` as seen by a client polling every 20 ms, each run submitted after "
               f"a random pause of up to one poll interval (so that submissions fall anywhere between two "
               f"polls), after one warm-up run ({r['warm'][0]['secs']:.2f} s): " + one(r["one"], 1)
               + (f"; {one(r['one5'], 5)}" if r.get("one5") else "") + ".\n"
               "  What is in it: sbatch (through sudo), SLURM starting the job, `srun` starting the worker (a "
               "Python process) which runs the task (another one), all of which takes under a second here; the "
               "executor polls once right after sbatch when the previous poll is more than an interval old "
               "(the job is still pending or running then), and sees the end at a later poll, up to one "
               "interval after it happened: so the figure is about one second of SLURM plus 0 to 1 interval of "
               "waiting for the next poll; then copying the outputs back with `sudo -u <user> cat` and finishing "
               "the job (history, image merge, log, zip). The test cluster schedules a job as soon as it is "
               "submitted (`batch_sched_delay=0,sched_min_interval=0`), except the first job after slurmctld "
               "starts, which waits ~3 s for the first scheduling pass; `tests/slurm_cluster.sh start` runs "
               "that job itself, so no figure here includes it.")
    for p in r["par"]:
        span = "?" if p["span"] is None else format(p["span"], ".0f")
        out.append(f"- a parallel task (`/bin/true`) over {p['n']:,} images, `tasks_per_job` 100 and "
                   f"`parallel_tasks_per_job` 2 (the workflow task's `meta_parallel`): {p['slurm_jobs']} SLURM "
                   f"job(s) of {min(100, p['n'])} units, each asking for 2 CPUs (so one runs at a time on this "
                   f"node) and running its units 2 at a time with `srun`; submit to `done` **{p['secs']:.1f} s** "
                   f"({p['n'] / p['secs']:.0f} units/s), of which SLURM's own span (first job's start to last "
                   f"job's end, sacct, 1 s resolution) {span} s; the server's resident memory "
                   f"{mb(p['rss0']):.1f} MB before, **{mb(p['peak']):.1f} MB at peak** (VmHWM, reset before the "
                   f"submission; {(p['peak'] - p['rss0']) / p['n']:.1f} kB per unit), {mb(p['rss1']):.1f} MB "
                   f"after; the server's CPU time {p['cpu']:.2f} s, its children's (sbatch, squeue, and three "
                   f"`sudo -u <user> cat` per unit) {p['child_cpu']:.2f} s; {p['squeue']} `squeue` and "
                   f"{p['sacct']} `sacct` calls while it ran.")
    out.append("  SLURM's span is most of the time: each unit is an `srun` step (srun waits and retries while "
               "the job's two CPUs are taken) that starts the worker, a Python process, which runs `/bin/true`; "
               "the rest is the server's (writing and submitting the scripts, seeing each SLURM job end at its "
               "next poll, copying three files per unit back through sudo, the history and the job's end). The "
               "sudo processes are the server's main cost, and on this machine they share the two cores with "
               "the cluster; on a real site they run on the server's host, not on the compute nodes.")
    c = r["conc"]
    i, b = c["idle"], c["busy"]
    ids = sorted(set(b["ids_per_squeue"]))
    gaps = b["gaps"]
    states = ", ".join(f"{v} {k}" for k, v in c["states"].items())
    out.append(f"- {NJOBS} concurrent jobs, each one `generic_task` sleeping {SLEEP} s (one SLURM job each; at the "
               f"window's start SLURM had {states}), all submitted to SLURM before a window of {b['secs']:.1f} s: "
               f"the server used **{b['cpu']:.2f} s of CPU** (utime+stime of /proc/PID/stat, all its threads; "
               f"{100 * b['cpu'] / b['secs']:.1f}% of one core), its children (the squeue calls, with their "
               f"wrapper) {b['child_cpu']:.2f} s; resident memory {mb(b['rss_min']):.1f}-{mb(b['rss_max']):.1f} MB "
               f"(sampled every 0.25 s; {mb(c['rss_before']):.1f} MB before the submissions, so "
               f"{(b['rss_max'] - c['rss_before']) / NJOBS:.0f} kB per job in flight); **{b['squeue']} "
               f"`squeue` calls** (each listing {', '.join(map(str, ids))} job ids; "
               + (f"{min(gaps):.2f}-{max(gaps):.2f} s apart" if gaps else "no interval") +
               f") and {b['sacct']} `sacct` calls. The same window with no job: {i['cpu']:.2f} s of CPU, "
               f"{i['squeue']} `squeue` calls. Stopping the {NJOBS} jobs (the stop route, each scancelled) took "
               f"{c['stop_secs']:.1f} s until all were `{'/'.join(sorted(set(c['ends'])))}`.")
    step = [ln for ln in r["slurm_errors"] if "Step created for job" in ln]
    if step:
        out.append(f"- The server logged {len(step)} warning(s) `{step[0].split(' - ')[-1]}` (one per parallel "
                   "task, the message going on with more such lines): that is the jobs' stderr, srun's step "
                   f"messages, whose wording in this cluster's SLURM ({r['slurm_version']}: `srun: Step created for job "
                   "N`) is not "
                   "among the step messages the executor's stderr filter drops; the units and jobs were all `done`, "
                   "and the text is kept as the job's `executor_error_log`. Its other "
                   f"{len(r['slurm_errors']) - len(step)} `SLURM error detected` warnings were the stopped jobs' "
                   "real stderr (`srun: Job step aborted: ...`).")
    out.append("\nHow the calls were counted: the server runs `squeue` and `sacct` as its own user, found "
               "through its PATH (sbatch, scancel and cat go through sudo, which resets PATH); `bench/slurm.py` puts "
               "first on the server's PATH a folder with a `squeue` and a `sacct` shell wrapper that append a line "
               "(the time and the arguments) to a log and exec the real command; the figures count that log's "
               "lines inside each window. The executor makes one `squeue` call per poll interval for the SLURM "
               "jobs of every running job of the server, and `sacct` only for ids `squeue` does not list.\n")
    return "\n".join(out) + "\n"


def write_results(section):
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    mark = "\n## SLURM (slurm_sudo)\n"
    if mark in text:
        text = text[:text.index(mark)]
    path.write_text(text.rstrip("\n") + "\n" + mark + section[len(mark) - 1:])


def main():
    b = Bench()
    ok = False
    try:
        r = {"load": [os.getloadavg()[0]]}
        print("one-task job, interval 1 ...", flush=True)
        r["warm"] = b.one_task(1, 1)
        r["one"] = b.one_task(RUNS, 1)
        print(f"  {r['warm']} {r['one']}", flush=True)
        r["par"] = []
        for n in sorted({min(100, UNITS), UNITS}):
            print(f"parallel task over {n} images ...", flush=True)
            r["par"].append(b.parallel(n))
            print(f"  {r['par'][-1]}", flush=True)
        print(f"{NJOBS} concurrent jobs ...", flush=True)
        r["conc"] = b.concurrent(NJOBS, WINDOW)
        print(f"  {r['conc']}", flush=True)
        if RUNS5:
            print("one-task job, interval 5 ...", flush=True)
            b.set_interval(5)
            r["one5"] = b.one_task(RUNS5, 5)
            print(f"  {r['one5']}", flush=True)
        r["load"].append(os.getloadavg()[0])
        b.log.flush()
        r["slurm_version"] = subprocess.run(["sinfo", "--version"], capture_output=True, text=True).stdout.strip()
        r["slurm_errors"] = [ln for ln in (b.base / "server.log").read_text().splitlines()
                             if "SLURM error detected" in ln]
        print("\n".join(r["slurm_errors"]), flush=True)
        section = report(r)
        print(section)
        if os.environ.get("BENCH_SLURM_WRITE", "1") == "1":
            write_results(section)
        ok = True
    finally:
        if not ok:
            print(f"server log (tail), work folder kept in {b.base}:\n{b.server_log()}", file=sys.stderr)
        b.close(keep=not ok)


if __name__ == "__main__":
    main()
