"""Jobs on a slurm_sudo resource, on the real single-node SLURM cluster that
scripts/test.sh starts (tests/slurm_cluster.sh): workflows run as the
profile's user through sudo, sbatch, squeue and sacct, and end as the
local runner's do; failures, refusals, stops, shutdown, a slurmctld restart
and a server killed mid-job each end in a clear job log."""
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import test_jobs
from conftest import Server, init_db
from test_jobs import add, cmd, job_row, project, submit, task, tasks, wait

USER = os.environ.get("SLURMTEST_USER")
CLUSTER = os.environ.get("SLURMTEST_DIR")
HERE = Path(__file__).resolve().parent

RUNNER = {"default_slurm_config": {"partition": "main", "cpus_per_task": 1, "mem": "100M"},
          "batching_config": {"target_cpus_per_job": 1, "max_cpus_per_job": 2, "target_mem_per_job": 200,
                              "max_mem_per_job": 500, "target_num_jobs": 2, "max_num_jobs": 4}}


def slurm_state(job_id):
    """SLURM's state of a job, from sacct (accounting is on in the test cluster)."""
    deadline = time.time() + 20
    while time.time() < deadline:
        out = subprocess.run(["sacct", "--noheader", "-X", "-P", "--format=JobID,State,User", "-j", str(job_id)],
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            jid, state, user = line.split("|")
            # slurmdbd may hold a partial record for a moment: wait for the user too
            if jid == str(job_id) and user and state not in ("PENDING", "RUNNING", "COMPLETING"):
                return state.split()[0], user
        time.sleep(0.5)
    raise AssertionError(f"SLURM job {job_id}: no final state in sacct")


def slurm_ids(db, jid):
    ids = []
    for (raw,) in db.query(f"SELECT slurm_job_ids FROM accountingrecordslurm WHERE fractal_job_id = {jid} ORDER BY id"):
        ids += json.loads(raw) if raw.startswith("[") else [int(x) for x in raw.strip("{}").split(",") if x]
    return ids


def running_slurm_job(db, jid, timeout=60):
    """The SLURM job of a fractal job once SLURM runs it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ids = slurm_ids(db, jid)
        if ids:
            out = subprocess.run(["squeue", "--noheader", "--format=%i %T", "--jobs", str(ids[-1])],
                                 capture_output=True, text=True).stdout
            if "RUNNING" in out:
                return ids[-1]
        time.sleep(0.2)
    raise AssertionError(f"job {jid}: no running SLURM job")


class Site:
    """A server whose admin runs jobs on a slurm_sudo resource as USER; the
    job folders and the user's project folder live under a folder USER can
    read (pytest's own tmp folders are root's only)."""

    TYPE = "slurm_sudo"

    def resource_extra(self):
        """What a resource of this type needs beyond the common fields (or instead of them)."""
        return {}

    def profile_extra(self):
        return {}

    def __init__(self, env, tmp_path, grace="10"):
        if not USER or not CLUSTER:
            pytest.fail("the SLURM tests need the cluster of tests/slurm_cluster.sh: run them through scripts/test.sh")
        self.base = Path(tempfile.mkdtemp(prefix="fractal-slurm-", dir="/tmp"))
        self.base.chmod(0o755)
        self.user_dir = self.base / "user"
        self.user_dir.mkdir()
        pw = pwd.getpwnam(USER)
        self.uid = pw.pw_uid
        os.chown(self.user_dir, pw.pw_uid, pw.pw_gid)
        e = init_db(dict(env, FRACTAL_RUNNER_BACKEND=self.TYPE, FRACTAL_GRACEFUL_SHUTDOWN_TIME=grace,
                         **self.env_extra()), tmp_path)
        self.env, self.tmp_path = e, tmp_path
        self.server = Server(e, tmp_path)
        api = self.api = self.server.http
        api.token = api.login()
        st, res, _ = api.post("/admin/v2/resource/", body={
            "type": self.TYPE, "name": "Cluster", "jobs_local_dir": str(self.base / "jobs"),
            "tasks_local_dir": str(self.base / "tasks"), "jobs_slurm_python_worker": "/usr/bin/python3",
            "jobs_poll_interval": 1, "jobs_runner_config": RUNNER, "tasks_pixi_config": {},
            "tasks_python_config": {"default_version": "3.11", "versions": {"3.11": "/usr/bin/python3"}},
            **self.resource_extra()})
        assert st == 201, res
        self.resource_id = res["id"]
        st, prof, _ = api.post(f"/admin/v2/resource/{res['id']}/profile/",
                               body={"resource_type": self.TYPE, "name": "cluster", "username": USER,
                                     **self.profile_extra()})
        assert st == 201, prof
        me = api.get("/auth/current-user/")[1]
        self.local_profile = me["profile_id"]
        st, body, _ = api.request("PATCH", f"/auth/users/{me['id']}/",
                                  body={"profile_id": prof["id"], "project_dirs": [str(self.user_dir)]})
        assert st == 200, body

    def env_extra(self):
        return {}

    def jobs_user_prefix(self):
        """Where the user's side of a job folder lives."""
        return f"{self.user_dir}/fractal/.fractal_cache/"

    def project(self, images=None):
        return project(self.api, self.user_dir, images)

    def restart(self):
        self.server = Server(self.env, self.tmp_path)
        self.api = self.server.http
        self.api.token = self.api.login()

    def close(self):
        try:
            assert self.server.stop() == 0, self.server.output()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def site(env, tmp_path):
    s = Site(env, tmp_path)
    yield s
    s.close()


def owners(folder):
    return {p.stat().st_uid for p in Path(folder).rglob("*")}


def test_workflow_runs_as_the_user_and_matches_the_local_runner(site, db, tmp_path, monkeypatch):
    same_as_local(site, db, monkeypatch)


def same_as_local(site, db, monkeypatch):
    """The three-task workflow on the site's SLURM resource, then on the local one: the same images,
    history and unit logs. Returns the SLURM job."""
    api = site.api

    def run(project_maker):
        t = tasks(api)  # on the user's current resource
        pid, did, wid, zarr_dir = project_maker()
        add(api, pid, wid, t["create_ome_zarr"], args_non_parallel={"image_dir": "/tmp/input_images"})
        # two images, one per SLURM job
        add(api, pid, wid, t["illum"], args_parallel={"overwrite_input": True},
            meta_parallel={"tasks_per_job": 1, "parallel_tasks_per_job": 1})
        add(api, pid, wid, t["mip"])
        job = wait(api, pid, submit(api, pid, wid, did)["id"], timeout=180)
        imgs = api.post(f"/api/v2/project/{pid}/dataset/{did}/images/query/?page_size=100", body={})[1]["items"]
        units = db.query("SELECT u.status, u.logfile FROM historyunit u JOIN historyrun r ON r.id = u.history_run_id "
                         f"WHERE r.job_id = {job['id']} ORDER BY u.id")
        runs = db.query(f"SELECT status, num_available_images FROM historyrun WHERE job_id = {job['id']} ORDER BY id")
        return job, zarr_dir, imgs, units, runs

    job, zarr_dir, imgs, units, runs = run(site.project)
    assert job["status"] == "done", job["log"]
    assert job["working_dir_user"].startswith(site.jobs_user_prefix())
    # the tasks ran as the profile's user, through SLURM
    assert owners(zarr_dir) == {site.uid}
    assert owners(job["working_dir_user"]) == {site.uid}
    ids = slurm_ids(db, job["id"])
    # the heuristics give one unit per SLURM job here: create_ome_zarr init + 2 computes, illum 2, mip 1 + 2
    assert len(ids) == 8, ids
    for i in ids:
        assert slurm_state(i) == ("COMPLETED", USER)
    wd = Path(job["working_dir"])
    assert (wd / "1_illumination_correction").is_dir() or Path(str(wd) + ".zip").exists()

    # the same workflow with the local runner, on a fresh project of the same server
    me = api.get("/auth/current-user/")[1]
    assert api.request("PATCH", f"/auth/users/{me['id']}/", body={"profile_id": site.local_profile})[0] == 200

    def local_project():
        pid = api.post("/api/v2/project/", body={"name": "local"})[1]["id"]
        st, ds, _ = api.post(f"/api/v2/project/{pid}/dataset/", body={
            "name": "ds", "project_dir": str(site.user_dir), "zarr_subfolder": "zarr-local"})
        assert st == 201, ds
        wid = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "wf"})[1]["id"]
        return pid, ds["id"], wid, ds["zarr_dir"]
    # the same tasks once more, on the local resource (another version: the names are taken)
    monkeypatch.setattr(test_jobs, "task", lambda api, name, **f: task(api, name, version="0.0.2", **f))
    ljob, lzarr, limgs, lunits, lruns = run(local_project)
    assert ljob["status"] == "done", ljob["log"]

    def norm(images, zd):
        return json.loads(json.dumps(images).replace(zd, "ZARR"))
    assert norm(imgs, zarr_dir) == norm(limgs, lzarr)
    assert runs == lruns
    assert [u[0] for u in units] == [u[0] for u in lunits]
    # file names carry the batch index, which follows the batch size (SLURM's tasks_per_job here)
    import re

    def unbatched(u, j):
        return re.sub(r"par-\d{6}-", "par-", str(Path(u[1]).relative_to(j["working_dir"])))
    assert [unbatched(u, job) for u in units] == [unbatched(u, ljob) for u in lunits]
    # the unit logs hold the same task output (the mock tasks' own lines)
    zs, zl = (__import__("zipfile").ZipFile(j["working_dir"] + ".zip") for j in (job, ljob))
    for u, lu in zip(units, lunits):
        a = zs.read(str(Path(u[1]).relative_to(job["working_dir"]))).decode()
        b = zl.read(str(Path(lu[1]).relative_to(ljob["working_dir"]))).decode()
        stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
        assert re.sub(stamp, "T", a.replace(zarr_dir, "Z")) == re.sub(stamp, "T", b.replace(lzarr, "Z")), u[1]
    return job


def one_task_job(site, sleep):
    """A job of one generic_task unit sleeping that long, submitted: (api, project id, job id)."""
    api = site.api
    tid = task(api, "generic_task", command_non_parallel=cmd("generic_task.py"))
    pid, did, wid, _ = site.project([{"zarr_url": f"{site.user_dir}/zarr/a"}])
    add(api, pid, wid, tid, args_non_parallel={"sleep_time": sleep})
    return api, pid, submit(api, pid, wid, did)["id"]


def test_failing_unit(site, db):
    api = site.api
    tid = task(api, "generic_task", command_non_parallel=cmd("generic_task.py"))
    pid, did, wid, zarr_dir = site.project([{"zarr_url": f"{site.user_dir}/zarr/a"}])
    add(api, pid, wid, tid, args_non_parallel={"sleep_time": 0, "raise_error": True})
    job = wait(api, pid, submit(api, pid, wid, did)["id"], timeout=120)
    assert job["status"] == "failed"
    assert "TASK ERROR: Task name: generic_task, position in Workflow: 0" in job["log"] or \
           "This is the error message" in job["log"], job["log"]
    assert "ValueError: This is the error message" in job["log"], job["log"]
    assert db.query("SELECT status FROM historyunit") == [["failed"]]
    assert db.query("SELECT status FROM historyrun") == [["failed"]]


def test_sbatch_refusal_fails_the_job_with_slurms_message(site, db):
    api = site.api
    tid = task(api, "generic_task", command_non_parallel=cmd("generic_task.py"))
    pid, did, wid, _ = site.project([{"zarr_url": f"{site.user_dir}/zarr/a"}])
    add(api, pid, wid, tid, args_non_parallel={"sleep_time": 0}, meta_non_parallel={"constraint": "no_such_feature"})
    t0 = time.time()
    job = wait(api, pid, submit(api, pid, wid, did)["id"], timeout=60)
    assert time.time() - t0 < 30
    assert job["status"] == "failed"
    assert "sbatch" in job["log"] and "Invalid feature specification" in job["log"], job["log"]
    assert db.query("SELECT status FROM historyunit") == [["failed"]]


def test_stop_by_the_user_scancels(site, db):
    api, pid, jid = one_task_job(site, 120)
    sid = running_slurm_job(db, jid)
    t0 = time.time()
    st, body, _ = api.get(f"/api/v2/project/{pid}/job/{jid}/stop/")
    assert st == 202, body
    job = wait(api, pid, jid, timeout=60)
    assert time.time() - t0 < 20
    assert job["status"] == "failed"
    assert "Failed due to job-execution shutdown." in job["log"], job["log"]
    assert slurm_state(sid)[0] == "CANCELLED"


def sigterm_scancels_and_fails_the_job(s, db):
    """On a site started with grace 5: SIGTERM during a running SLURM job ends the server within
    its deadline, fails the job with upstream's line and scancels the user's SLURM job."""
    try:
        api, pid, jid = one_task_job(s, 120)
        sid = running_slurm_job(db, jid)
        t0 = time.time()
        assert s.server.stop() == 0, s.server.output()
        assert time.time() - t0 < 5 + 4 + 1
        status, log = job_row(db, jid)
        assert status == "failed"
        assert log.endswith("\nJob stopped due to app shutdown\n"), log
        assert slurm_state(sid) == ("CANCELLED", USER)
        s.restart()
    finally:
        s.close()


def test_sigterm_scancels_and_fails_the_job(env, db, tmp_path):
    sigterm_scancels_and_fails_the_job(Site(env, tmp_path, grace="5"), db)


def test_slurmctld_restart_during_a_job(site, db):
    api, pid, jid = one_task_job(site, 6)
    sid = running_slurm_job(db, jid)
    # SLURM says RUNNING once it allocates, before slurmd has started the
    # batch step: a controller stopped in between can lose that launch (a
    # job RUNNING for ever, seen once under load), which is SLURM's, not
    # ours. Restart it once the task itself runs.
    wd_user = Path(api.get(f"/api/v2/project/{pid}/job/{jid}/")[1]["working_dir_user"]).name
    deadline = time.time() + 60
    while not test_jobs.live_processes("generic_task.py", wd_user) and time.time() < deadline:
        time.sleep(0.1)
    assert test_jobs.live_processes("generic_task.py", wd_user), "the task never started"
    subprocess.run(["bash", str(HERE / "slurm_cluster.sh"), "restart-ctld", CLUSTER], check=True,
                   capture_output=True)
    try:
        job = wait(api, pid, jid, timeout=120)
    except AssertionError as e:
        wd = api.get(f"/api/v2/project/{pid}/job/{jid}/")[1]["working_dir"]
        q = subprocess.run(["squeue", "--states=all", "--jobs", str(sid)], capture_output=True, text=True)
        a = subprocess.run(["sacct", "-j", str(sid)], capture_output=True, text=True)
        ctld = Path(CLUSTER, "log", "slurmctld.log")
        raise AssertionError(f"{e}\n{site.server.output()}\nworkflow.log:\n{Path(wd, 'workflow.log').read_text()}\n"
                             f"squeue: {q.stdout}{q.stderr}\nsacct: {a.stdout}{a.stderr}\n"
                             f"slurmctld.log (end):\n{ctld.read_text()[-4000:] if ctld.exists() else '-'}")
    assert job["status"] == "done", job["log"]
    assert slurm_state(sid)[0] == "COMPLETED"


def test_server_killed_during_a_job(site, db):
    api, pid, jid = one_task_job(site, 120)
    sid = running_slurm_job(db, jid)
    site.server.proc.send_signal(signal.SIGKILL)
    site.server.proc.wait()
    site.restart()
    status, log = job_row(db, jid)
    assert status == "failed"
    assert log.endswith("\nJob marked as failed at server start-up: it was still 'submitted' when the previous "
                        "server process stopped, so its execution was interrupted.\n"
                        f"Its SLURM jobs ({sid}) were scancelled at server start-up.\n"), log
    assert slurm_state(sid)[0] == "CANCELLED"


def test_squeue_route(site, db):
    api, pid, jid = one_task_job(site, 30)
    sid = running_slurm_job(db, jid)
    for scope in ("all", "user"):
        st, text, headers = api.get(f"/api/v2/job/squeue/?scope={scope}")
        assert st == 200, text
        assert headers["Content-Type"].startswith("text/plain")
        assert "JOBID" in text and str(sid) in text and USER[:8] in text, text
    st, body, _ = api.get("/api/v2/job/squeue/?scope=nope")
    assert st == 422
    assert api.get(f"/api/v2/project/{pid}/job/{jid}/stop/")[0] == 202
    wait(api, pid, jid, timeout=60)
