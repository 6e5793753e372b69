"""One shutdown deadline (cli/start.c): after SIGTERM the server exits
within FRACTAL_GRACEFUL_SHUTDOWN_TIME plus start.c's margin, with a job and
a task collection in flight whose processes ignore SIGTERM, instead of
giving each kind of work a grace period of its own in turn. Whatever was
running ends failed, with a line saying why, and no task process is left."""
import json
import os
import time

from conftest import Server, init_db
from test_collection import PIXI_CONFIG, pixi_targz, post_form
from test_jobs import add, job_row, project, submit, task

GRACE = 5.0
MARGIN = 4.0  # SHUTDOWN_MARGIN_USEC in src/cli/start.c


def stubborn(path, pidfile):
    """An executable that ignores SIGTERM and sleeps (itself and a child),
    recording both pids."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\ntrap '' TERM\necho $$ >> {pidfile}\nsleep 300 &\necho $! >> {pidfile}\nwait\n")
    path.chmod(0o755)
    return path


def pids(pidfile, n, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pidfile.exists():
            got = [int(x) for x in pidfile.read_text().split()]
            if len(got) >= n:
                return got
        time.sleep(0.1)
    raise AssertionError(f"{pidfile} never had {n} pids")


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purpose
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_sigterm_ends_everything_within_one_deadline(env, db, tmp_path):
    e = init_db(env, tmp_path)
    e["FRACTAL_GRACEFUL_SHUTDOWN_TIME"] = str(GRACE)
    s = Server(e, tmp_path)
    api = s.http
    api.token = api.login()
    # a job whose task ignores SIGTERM
    job_pids = tmp_path / "job.pids"
    exe = stubborn(tmp_path / "bin" / "stubborn-task", job_pids)
    tid = task(api, "stubborn", command_non_parallel=str(exe))
    pid, did, wid, _ = project(api, tmp_path, [{"zarr_url": f"{tmp_path}/zarr/a"}])
    add(api, pid, wid, tid)
    job = submit(api, pid, wid, did)
    # a pixi collection whose pixi ignores SIGTERM
    pixi_pids = tmp_path / "pixi.pids"
    stubborn(tmp_path / "pixi" / "0.41.0" / "bin" / "pixi", pixi_pids)
    cfg = dict(PIXI_CONFIG, versions={"0.41.0": str(tmp_path / "pixi" / "0.41.0")})
    db.execute(f"UPDATE resource SET tasks_pixi_config = '{json.dumps(cfg)}'")
    tgz = pixi_targz(tmp_path)
    st, act, _ = post_form(api, "/api/v2/task/collect/pixi/", {}, {"file": (tgz.name, tgz.read_bytes())})
    assert st == 202, act
    running = pids(job_pids, 2) + pids(pixi_pids, 2)

    t0 = time.time()
    assert s.stop() == 0, s.output()
    took = time.time() - t0
    # before, the runner's grace, the request drain's and collection's came one after the other
    assert took < GRACE + MARGIN, (took, s.output())
    assert "Shutdown complete" in s.output()

    status, log = job_row(db, job["id"])
    assert status == "failed"
    assert log.endswith("\nJob stopped due to app shutdown\n"), log
    assert "Task failed with returncode=-9." in log, log
    row = db.query(f"SELECT status, taskgroupv2_id FROM taskgroupactivityv2 WHERE id = {act['id']}")[0]
    assert row == ["failed", None], row
    assert db.query("SELECT count(*) FROM taskgroupv2 WHERE origin = 'pixi'") == [["0"]]
    assert db.query("SELECT count(*) FROM historyunit WHERE status = 'submitted'") == [["0"]]
    # the job's task processes, which ignored SIGTERM, were killed
    left = [p for p in running[:2] if alive(p)]
    assert not left, left
