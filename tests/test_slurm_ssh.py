"""Jobs and task collection on a slurm_ssh resource: the server reaches the single-node SLURM cluster of
tests/slurm_cluster.sh through the real OpenSSH server of tests/sshd.sh (127.0.0.1:PORT, key-only login as
the test user, host key checked against its own known_hosts). The same workflow as over sudo gives the same
images, history and unit logs as the local runner; sshd stopped mid-job, a wrong key and an unreachable host
end in a clear job log, with nothing left submitted."""
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from test_collection import check_pixi_group, collect_wheel, manifest, post_form, wait_activity, wheels  # noqa: F401 (wheels: a fixture)
from test_jobs import add, cmd, job_row, submit, task, wait
from test_slurm import USER, Site, one_task_job, running_slurm_job, same_as_local, \
    sigterm_scancels_and_fails_the_job, slurm_state
import pixi_project  # noqa: E402 (tests/pixi_standin, on the path through test_collection)
from test_slurm import test_squeue_route as squeue_route

SSH_HOST = os.environ.get("SSHTEST_HOST")
SSH_KEY = os.environ.get("SSHTEST_KEY")
KNOWN_HOSTS = os.environ.get("SSHTEST_KNOWN_HOSTS")
SSH_DIR = os.environ.get("SSHTEST_DIR")
HERE = Path(__file__).resolve().parent


class SshSite(Site):
    """A server whose admin runs jobs on a slurm_ssh resource, as USER over SSH. The remote folders are
    on this machine (the SSH server is local), under a folder USER owns."""
    TYPE = "slurm_ssh"

    def __init__(self, env, tmp_path, grace="10", key=None, host=None):
        if not SSH_HOST:
            pytest.fail("the SSH tests need the server of tests/sshd.sh: run them through scripts/test.sh")
        self.key, self.host = key or SSH_KEY, host or SSH_HOST
        super().__init__(env, tmp_path, grace)

    def env_extra(self):
        return {"FRACTAL_SSH_KNOWN_HOSTS": KNOWN_HOSTS, "FRACTAL_SSH_CONNECT_TIMEOUT": "5"}

    def resource_extra(self):
        return {"host": self.host}

    def profile_extra(self):
        return {"ssh_key_path": self.key, "jobs_remote_dir": f"{self.user_dir}/remote_jobs",
                "tasks_remote_dir": f"{self.user_dir}/remote_tasks"}

    def jobs_user_prefix(self):
        return f"{self.user_dir}/remote_jobs/"


@pytest.fixture
def site(env, tmp_path):
    s = SshSite(env, tmp_path)
    yield s
    s.close()


def sshd(*args):
    subprocess.run(["bash", str(HERE / "sshd.sh"), *args, SSH_DIR], check=True, capture_output=True)


def test_workflow_over_ssh_matches_the_local_runner(site, db, monkeypatch):
    job = same_as_local(site, db, monkeypatch)
    # the server's side kept only what it fetched back; the user's side holds the SLURM files
    remote = Path(job["working_dir_user"])
    assert remote.is_dir() and (remote / "slurm_worker.py").exists()
    assert {p.stat().st_uid for p in remote.rglob("*")} == {site.uid}
    # one master connection for the whole job: one login (sshd logs each accepted key)
    log = Path(SSH_DIR, "sshd.log").read_text()
    assert log.count("Accepted publickey for fractaltest") <= 3, log[-2000:]


def test_wrong_key_fails_the_job_with_ssh_s_words(env, db, tmp_path):
    key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    s = SshSite(env, tmp_path, key=str(key))
    try:
        api, pid, jid = one_task_job(s, 0)
        job = wait(api, pid, jid, timeout=60)
        assert job["status"] == "failed"
        assert "Cannot open SSH connection" in job["log"], job["log"]
        assert "Permission denied (publickey)" in job["log"], job["log"]
    finally:
        s.close()


def test_unreachable_host_fails_the_job(env, db, tmp_path):
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    s = SshSite(env, tmp_path, host=f"127.0.0.1:{port}")
    try:
        api, pid, jid = one_task_job(s, 0)
        job = wait(api, pid, jid, timeout=60)
        assert job["status"] == "failed"
        assert "Cannot open SSH connection" in job["log"] and "Connection refused" in job["log"], job["log"]
    finally:
        s.close()


def test_sshd_restarted_during_a_job_the_job_goes_on(site, db):
    api, pid, jid = one_task_job(site, 4)
    running_slurm_job(db, jid)
    sshd("restart")  # drops the master connection: the next command reconnects once
    job = wait(api, pid, jid, timeout=120)
    assert job["status"] == "done", job["log"]


def test_sshd_stopped_during_a_job_fails_it_clearly(site, db):
    api, pid, jid = one_task_job(site, 3)
    running_slurm_job(db, jid)
    port = open(Path(SSH_DIR, "port")).read().strip()
    pid_sshd = int(open(Path(SSH_DIR, "sshd.pid")).read())
    # stop it (and its sessions), and keep it stopped until the job has ended
    children = subprocess.run(["pgrep", "-P", str(pid_sshd)], capture_output=True, text=True).stdout.split()
    os.kill(pid_sshd, signal.SIGTERM)
    for c in children:
        os.kill(int(c), signal.SIGTERM)
    try:
        job = wait(api, pid, jid, timeout=150)
    finally:
        sshd("restart")
    assert job["status"] == "failed"
    assert "Cannot open SSH connection" in job["log"], job["log"]
    assert f"port {port}" in job["log"] and "Connection refused" in job["log"], job["log"]
    assert db.query("SELECT status FROM historyunit") == [["failed"]]
    assert db.query(f"SELECT status FROM jobv2 WHERE id = {jid}") == [["failed"]]


def test_server_killed_during_a_job_scancels_over_ssh_at_restart(site, db):
    api, pid, jid = one_task_job(site, 120)
    sid = running_slurm_job(db, jid)
    site.server.proc.send_signal(signal.SIGKILL)
    site.server.proc.wait()
    site.restart()
    status, log = job_row(db, jid)
    assert status == "failed"
    assert f"Its SLURM jobs ({sid}) were scancelled at server start-up.\n" in log, log
    assert slurm_state(sid) == ("CANCELLED", USER)


def test_stop_by_the_user_scancels_over_ssh(site, db):
    api, pid, jid = one_task_job(site, 120)
    sid = running_slurm_job(db, jid)
    st, body, _ = api.get(f"/api/v2/project/{pid}/job/{jid}/stop/")
    assert st == 202, body
    job = wait(api, pid, jid, timeout=60)
    assert job["status"] == "failed"
    assert "Failed due to job-execution shutdown." in job["log"], job["log"]
    assert slurm_state(sid)[0] == "CANCELLED"


def test_collect_wheel_over_ssh_then_deactivate_reactivate_delete(site, db, wheels):  # noqa: F811
    api = site.api
    s, act, _ = collect_wheel(api, wheels["mock"])
    assert s == 202, act
    logs = []
    act = wait_activity(api, act["id"], logs=logs)
    assert act["status"] == "OK", act["log"]
    # a live log, under upstream's SSH logger name
    assert len(set(logs)) >= 2 and all(logs[-1].startswith(x) for x in logs[:-1])
    assert " - fractal_server.tasks.v2.ssh.collect.ID%d - INFO - START\n" % act["id"] in act["log"]
    tgid = act["taskgroupv2_id"]
    tg = api.get(f"/api/v2/task-group/{tgid}/")[1]
    path = Path(site.user_dir, "remote_tasks", str(act["user_id"]), "fractal-tasks-mock", "0.0.1")
    assert tg["path"] == str(path) and tg["venv_path"] == str(path / "venv") and tg["active"] is True
    # everything on the remote side, made by the user there
    assert Path(tg["archive_path"]).read_bytes() == wheels["mock"].read_bytes()
    assert (path / "fractal_task_group_id.txt").read_text() == str(tgid)
    assert {p.stat().st_uid for p in path.rglob("*")} == {site.uid}
    assert [t["name"] for t in tg["task_list"]] == [t["name"] for t in manifest()["task_list"]]
    conv = next(t for t in tg["task_list"] if t["name"] == "generic_task_converter")
    command = api.get(f"/api/v2/task/{conv['id']}/")[1]["command_non_parallel"]
    assert command.startswith(f"{path}/venv/bin/python {path}/venv/lib/python3.11/site-packages/")
    assert db.query(f"SELECT count(*) FROM taskgroupv2 WHERE id = {tgid} AND env_info LIKE '%pip==%'") == [["1"]]

    act = wait_activity(api, api.post(f"/api/v2/task-group/{tgid}/deactivate/")[1]["id"])
    assert act["status"] == "OK", act["log"]
    assert not (path / "venv").exists() and Path(tg["archive_path"]).exists()
    assert "fractal_server.tasks.v2.ssh.deactivate.ID" in act["log"], act["log"]
    act = wait_activity(api, api.post(f"/api/v2/task-group/{tgid}/reactivate/")[1]["id"])
    assert act["status"] == "OK", act["log"]
    assert (path / "venv" / "bin" / "python").exists()
    assert api.get(f"/api/v2/task-group/{tgid}/")[1]["active"] is True

    # the collected task runs through SLURM over SSH
    pid, did, wid, zarr_dir = site.project()
    add(api, pid, wid, conv["id"], args_non_parallel={})
    job = wait(api, pid, submit(api, pid, wid, did)["id"], timeout=120)
    assert job["status"] == "done", job["log"]

    # a second collection of the same version: the folder is there
    s, body, _ = collect_wheel(api, wheels["mock"])
    assert s == 422, body

    assert api.request("DELETE", f"/api/v2/project/{pid}/workflow/{wid}/")[0] == 204
    s, act, _ = api.post(f"/api/v2/task-group/{tgid}/delete/")
    assert s == 202, act
    act = wait_activity(api, act["id"])
    assert act["status"] == "OK", act["log"]
    assert not path.exists()
    assert api.get(f"/api/v2/task-group/{tgid}/")[0] == 404


def test_collect_over_ssh_with_a_wrong_key_fails_the_activity(env, db, tmp_path, wheels):  # noqa: F811
    key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    s = SshSite(env, tmp_path, key=str(key))
    try:
        st, act, _ = collect_wheel(s.api, wheels["mock"])
        assert st == 202, act
        act = wait_activity(s.api, act["id"], timeout=60)
        assert act["status"] == "failed"
        assert "Cannot open SSH connection" in act["log"] and "Permission denied (publickey)" in act["log"], act["log"]
        # the failed collection leaves no task group
        assert db.query(f"SELECT count(*) FROM taskgroupv2 WHERE id = {act['taskgroupv2_id'] or 0}") == [["0"]]
    finally:
        s.close()


def test_sigterm_scancels_over_ssh_and_fails_the_job(env, db, tmp_path):
    sigterm_scancels_and_fails_the_job(SshSite(env, tmp_path, grace="5"), db)


def test_squeue_route_over_ssh(site, db):
    squeue_route(site, db)  # the sudo test's checks, with squeue run over SSH as the user


# ---- pixi: `pixi install` through SLURM, with the pixi stand-in of tests/pixi_standin ----

PIXI_SLURM = {"partition": "main", "cpus": 1, "mem": "200M", "time": "10"}


class PixiSshSite(SshSite):
    """An SshSite whose resource has pixi (the stand-in, readable by USER) with a SLURM_CONFIG, and whose
    profile a pixi cache folder of USER's."""

    def resource_extra(self):
        self.pixi_home = pixi_project.install_pixi(self.base)
        cfg = pixi_project.pixi_config(self.pixi_home, SLURM_CONFIG=PIXI_SLURM)
        return dict(super().resource_extra(), tasks_pixi_config=cfg)

    def profile_extra(self):
        return dict(super().profile_extra(), pixi_cache_dir=f"{self.user_dir}/pixi_cache")

    def env_extra(self):
        return dict(super().env_extra(), FRACTAL_ENABLE_TASK_GROUP_RESET="true")


@pytest.fixture
def pixi_site(env, tmp_path):
    s = PixiSshSite(env, tmp_path)
    yield s
    s.close()


def collect_pixi(api, tgz, fields=None):
    s, act, _ = post_form(api, "/api/v2/task/collect/pixi/", fields or {}, {"file": (tgz.name, tgz.read_bytes())})
    assert s == 202, act
    return act


def slurm_job_of(log):
    """The SLURM job a pixi activity submitted, from its log."""
    m = re.search(r"SLURM-job submission successful \(job_id=(\d+)\)", log)
    assert m, log
    return int(m.group(1))


def test_pixi_over_ssh_installs_through_slurm_then_runs_a_task_and_goes_through_its_lifecycle(pixi_site, db,
                                                                                               tmp_path):
    site, api = pixi_site, pixi_site.api
    tgz = pixi_project.pixi_targz(tmp_path)
    logs = []
    act = wait_activity(api, collect_pixi(api, tgz, {"use_pixi_lockfile": "false"})["id"], logs=logs)
    assert act["status"] == "OK", act["log"]
    log = act["log"]
    assert len(set(logs)) >= 2 and all(logs[-1].startswith(x) for x in logs[:-1])
    assert " - fractal_server.tasks.v2.ssh.collect_pixi.ID%d - " % act["id"] in log
    # pixi ran in a SLURM job as the user, and its output is in the log
    assert slurm_state(slurm_job_of(log)) == ("COMPLETED", USER)
    assert "[install-tasks-pixi, " in log and "The default environment has been installed." in log, log
    assert "SLURM-job execution completed successfully, continue." in log
    path = Path(site.user_dir, "remote_tasks", str(act["user_id"]), "fractal-tasks-mock", "0.0.1")
    src = path / "source_dir"
    tg = api.get(f"/api/v2/task-group/{act['taskgroupv2_id']}/")[1]
    assert (tg["path"], tg["origin"], tg["archive_path"]) == (str(path), "pixi", str(path / tgz.name))
    prefix = re.search(r"/(\d+_collect)-submit\.sh", log).group(1)
    script = (path / "scripts" / f"{prefix}-submit.sh").read_text()
    assert script.startswith("#!/bin/bash\n#SBATCH --job-name=fractal_server.tasks.v2.ssh.collect_pixi.ID%d\n"
                             "#SBATCH --partition=main\n#SBATCH --cpus-per-task=1\n#SBATCH --mem=200M\n"
                             "#SBATCH --time=10\n" % act["id"]), script
    assert (path / "scripts" / f"{prefix}-success.txt").exists()
    assert {p.lstat().st_uid for p in path.rglob("*")} == {site.uid}  # lstat: the venv links to /usr/bin/python3
    lock, conv, _ = check_pixi_group(api, db, tg, src)

    # the collected task runs through SLURM over SSH, with the pixi environment's Python
    pid, did, wid, zarr_dir = site.project()
    add(api, pid, wid, conv["id"], args_non_parallel={})
    job = wait(api, pid, submit(api, pid, wid, did)["id"], timeout=120)
    assert job["status"] == "done", job["log"]
    assert api.request("DELETE", f"/api/v2/project/{pid}/workflow/{wid}/")[0] == 204

    act = wait_activity(api, api.post(f"/api/v2/task-group/{tg['id']}/deactivate/")[1]["id"])
    assert act["status"] == "OK", act["log"]
    assert "fractal_server.tasks.v2.ssh.deactivate_pixi.ID" in act["log"]
    assert not src.exists() and (path / tgz.name).exists()
    # the admin reset is for local resources only, as upstream's
    assert api.post(f"/admin/v2/task-group/{tg['id']}/reset/pixi/", body={})[:2] == \
        (422, {"detail": "Resource type slurm_ssh not supported."})
    # reactivation: the stored lock file, a frozen install in a new SLURM job
    act = wait_activity(api, api.post(f"/api/v2/task-group/{tg['id']}/reactivate/")[1]["id"])
    assert act["status"] == "OK", act["log"]
    assert "#SBATCH" not in act["log"] and "--frozen --manifest-path" in act["log"], act["log"]
    assert slurm_state(slurm_job_of(act["log"])) == ("COMPLETED", USER)
    assert (src / "pixi.lock").read_text() == lock and (src / "project_python.sh").exists()
    assert api.get(f"/api/v2/task-group/{tg['id']}/")[1]["active"] is True

    act = wait_activity(api, api.post(f"/api/v2/task-group/{tg['id']}/delete/")[1]["id"])
    assert act["status"] == "OK", act["log"]
    assert not path.exists()
    assert api.get(f"/api/v2/task-group/{tg['id']}/")[0] == 404


def test_pixi_over_ssh_failures_fail_the_activity_with_pixi_s_and_slurm_s_words(pixi_site, db, tmp_path):
    api = pixi_site.api
    tgz = pixi_project.pixi_targz(tmp_path)
    path = Path(pixi_site.user_dir, "remote_tasks")

    def failed(fields=None):
        act = wait_activity(api, collect_pixi(api, tgz, fields)["id"])
        assert act["status"] == "failed", act["log"]
        # nothing left behind: no task group, no folder
        assert db.query("SELECT count(*) FROM taskgroupv2") == [["0"]]
        assert not any(p.name == "0.0.1" for p in path.rglob("*")), list(path.rglob("*"))
        return act["log"]

    # a frozen install (the default) and no pixi.lock in the archive: the SLURM job fails with pixi's error
    log = failed()
    assert slurm_state(slurm_job_of(log))[0] == "FAILED"
    assert "SLURM-job stderr:\n" in log and "no lockfile available, can't do a frozen installation." in log, log
    assert re.search(r"Task collect failed\. Original error: success_file_remote='[^']*-success\.txt' missing\.",
                     log), log

    # sbatch refuses the job: a partition the cluster does not have
    cfg = pixi_project.pixi_config(pixi_site.pixi_home, SLURM_CONFIG=dict(PIXI_SLURM, partition="nosuch"))
    db.execute(f"UPDATE resource SET tasks_pixi_config = '{json.dumps(cfg)}'")
    log = failed({"use_pixi_lockfile": "false"})
    assert "Submission of " in log and "Invalid partition name specified" in log, log

    # no pixi where the resource says
    cfg = pixi_project.pixi_config("/nonexistent/pixi/" + pixi_project.PIXI_VERSION, SLURM_CONFIG=PIXI_SLURM)
    db.execute(f"UPDATE resource SET tasks_pixi_config = '{json.dumps(cfg)}'")
    log = failed({"use_pixi_lockfile": "false"})
    assert "Pixi executable /nonexistent/pixi/0.47.0/bin/pixi not found or not executable" in log, log


def test_pixi_over_ssh_server_stopped_during_the_slurm_job_scancels_it(env, db, tmp_path):
    site = PixiSshSite(env, tmp_path, grace="1")
    try:
        api = site.api
        act = collect_pixi(api, pixi_project.pixi_targz(tmp_path), {"use_pixi_lockfile": "false"})
        deadline = time.time() + 60
        log = ""
        while "SLURM-job submission successful" not in log:
            assert time.time() < deadline, "no SLURM job submitted within 60 s: " + log
            time.sleep(0.1)
            log = api.get(f"/api/v2/task-group/activity/{act['id']}/")[1]["log"] or ""
        sid = slurm_job_of(log)
        assert site.server.stop() == 0, site.server.output()
        assert db.query(f"SELECT status, taskgroupv2_id FROM taskgroupactivityv2 WHERE id = {act['id']}") == \
            [["failed", None]]
        assert db.query(f"SELECT count(*) FROM taskgroupactivityv2 WHERE id = {act['id']} AND log LIKE "
                        f"'%fractal-server is shutting down: SLURM job {sid} was scancelled.%'") == [["1"]]
        assert db.query("SELECT count(*) FROM taskgroupv2") == [["0"]]
        assert slurm_state(sid)[0] == "CANCELLED"
        assert not Path(site.user_dir, "remote_tasks", str(act["user_id"]), "fractal-tasks-mock", "0.0.1").exists()
    finally:
        shutil.rmtree(site.base, ignore_errors=True)
