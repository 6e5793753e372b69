"""Jobs: submission, execution with the local runner, history, logs, job routes, crash safety.

Tasks come from the offline mock package (tests/mock_tasks), registered through POST /api/v2/task/ with
commands that run the scripts straight from the source folder.
"""
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from conftest import ADMIN_EMAIL, Server, init_db

MOCK = Path(__file__).resolve().parent / "mock_tasks" / "fractal_tasks_mock"
PY = sys.executable


def cmd(script):
    return f"{PY} {MOCK / script}"


@pytest.fixture
def api(server):
    server.http.token = server.http.login()
    return server.http


def task(api, name, **fields):
    body = {"name": name, "version": "0.0.1", **fields}
    s, b, _ = api.post("/api/v2/task/", body=body)
    assert s == 201, b
    return b["id"]


def tasks(api):
    return {
        "create_ome_zarr": task(api, "create_ome_zarr_compound", type="converter_compound",
                                command_non_parallel=cmd("create_ome_zarr_init.py"),
                                command_parallel=cmd("create_ome_zarr_compute.py")),
        "illum": task(api, "illumination_correction", command_parallel=cmd("illumination_correction.py"),
                      input_types={"illumination_correction": False}, output_types={"illumination_correction": True}),
        "mip": task(api, "MIP_compound", command_non_parallel=cmd("mip_init.py"), command_parallel=cmd("mip_compute.py"),
                    input_types={"3D": True}, output_types={"3D": False}),
        "generic": task(api, "generic_task", command_non_parallel=cmd("generic_task.py")),
        "parallel": task(api, "generic_task_parallel", command_parallel=cmd("generic_task_parallel.py"),
                         input_types={"my_type": False}, output_types={"my_type": True}),
        "compound": task(api, "generic_task_compound", command_non_parallel=cmd("generic_compound_init.py"),
                         command_parallel=cmd("generic_compound_compute.py")),
        "invalid": task(api, "dummy_invalid_output", command_non_parallel=cmd("dummy_invalid_output.py")),
        "insert": task(api, "dummy_insert_single_image", type="converter_non_parallel",
                       command_non_parallel=cmd("dummy_insert_single_image.py")),
    }


def project(api, tmp_path, images=None):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    zarr_dir = str(tmp_path / "zarr")
    s, ds, _ = api.post(f"/api/v2/project/{pid}/dataset/", body={"name": "ds", "project_dir": str(tmp_path),
                                                                 "zarr_subfolder": "zarr"})
    assert s == 201, ds
    assert ds["zarr_dir"] == zarr_dir
    for img in images or []:
        assert api.post(f"/api/v2/project/{pid}/dataset/{ds['id']}/images/", body=img)[0] == 201
    wid = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "wf"})[1]["id"]
    return pid, ds["id"], wid, zarr_dir


def add(api, pid, wid, task_id, **body):
    s, b, _ = api.post(f"/api/v2/project/{pid}/workflow/{wid}/wftask/", body=[{"task_id": task_id, **body}])
    assert s == 201, b
    return b[0]["id"]


def submit(api, pid, wid, did, body=None, expect=202):
    s, b, _ = api.post(f"/api/v2/project/{pid}/job/submit/?workflow_id={wid}&dataset_id={did}", body=body or {})
    assert s == expect, b
    return b


def wait(api, pid, jid, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = api.get(f"/api/v2/project/{pid}/job/{jid}/")[1]
        if job["status"] != "submitted" and Path(job["working_dir"] + ".zip").exists():
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {jid} still running: {job}")


def images(api, pid, did):
    return api.post(f"/api/v2/project/{pid}/dataset/{did}/images/query/", body={})[1]["items"]


def test_dumps_keep_names_exactly(api, tmp_path):
    # the dumps are read back from the stored JSON (jsonb on PostgreSQL) by a scanner, not a parser
    odd = 'q"uote\\ back/slash \u00e9\u4e2d \U0001f52c tab\tnl\n \x01 {"x": [1]}'
    t = task(api, "generic_task", command_non_parallel=cmd("generic_task.py"),
             meta_non_parallel={"nested": {"name": "not this one"}})
    pid, did, wid, _ = project(api, tmp_path)
    for kind, path in (("project", f"/api/v2/project/{pid}/"), ("workflow", f"/api/v2/project/{pid}/workflow/{wid}/"),
                       ("dataset", f"/api/v2/project/{pid}/dataset/{did}/")):
        # project and dataset names are limited to letters, digits and "_. -"
        s, b, _ = api.request("PATCH", path, body={"name": (odd if kind == "workflow" else "p. _-0 ") + kind})
        assert s == 200, b
    add(api, pid, wid, t)
    job = submit(api, pid, wid, did)
    wait(api, pid, job["id"])
    listed = [j for j in api.get("/api/v2/job/")[1] if j["id"] == job["id"]]
    assert len(listed) == 1
    for j in (job, listed[0], api.get(f"/api/v2/project/{pid}/job/{job['id']}/")[1]):
        assert j["project_dump"]["name"] == "p. _-0 project"
        assert j["workflow_dump"]["name"] == odd + "workflow" and j["workflow_dump"]["project_id"] == pid
        assert j["dataset_dump"]["name"] == "p. _-0 dataset" and j["dataset_dump"]["zarr_dir"] == str(tmp_path / "zarr")
        assert list(j["workflow_dump"]) == ["id", "name", "project_id", "timestamp_created"]
        assert j["project_dump"]["timestamp_created"] == listed[0]["project_dump"]["timestamp_created"]


def test_workflow_runs_to_done(api, db, tmp_path):
    t = tasks(api)
    pid, did, wid, zarr_dir = project(api, tmp_path)
    wft1 = add(api, pid, wid, t["create_ome_zarr"], args_non_parallel={"image_dir": "/tmp/input_images"})
    wft2 = add(api, pid, wid, t["illum"], args_parallel={"overwrite_input": True})
    wft3 = add(api, pid, wid, t["mip"], meta_parallel={"parallel_tasks_per_job": 1})
    job = submit(api, pid, wid, did, {"worker_init": "echo hi"})
    assert job["status"] == "submitted"
    assert job["first_task_index"] == 0 and job["last_task_index"] == 2
    assert job["project_dump"]["id"] == pid and set(job["project_dump"]) == {"id", "name", "timestamp_created"}
    assert list(job["dataset_dump"]) == ["id", "name", "project_id", "timestamp_created", "zarr_dir"]
    assert job["dataset_dump"]["timestamp_created"].endswith("Z")
    assert list(job["workflow_dump"]) == ["id", "name", "project_id", "timestamp_created"]
    assert job["user_email"] == ADMIN_EMAIL and job["worker_init"] == "echo hi"
    wd = Path(job["working_dir"])
    assert wd.parent.parent == tmp_path / "data-jobs"
    assert wd.name.startswith(f"proj_v2_{pid:07d}_wf_{wid:07d}_job_{job['id']:07d}_")
    assert wd.parent.name == job["start_timestamp"][:7]
    assert job["working_dir_user"] == job["working_dir"]

    job = wait(api, pid, job["id"])
    assert job["status"] == "done", job["log"]
    assert job["end_timestamp"] is not None
    lines = job["log"].splitlines()
    assert f'Start execution of workflow "wf"; more logs at {wd}/workflow.log' in lines[0]
    assert " - INFO - " in lines[0] and f" - WF{wid}_job{job['id']} - " in lines[0]
    assert any(line.endswith("DEBUG - Resource name: Local resource") for line in lines)
    assert any(line.endswith("DEBUG - Username: None") for line in lines)
    assert any(line.endswith("SUBMIT 0-th task ('create_ome_zarr_compound', 'default' 0.0.1)") or
               "SUBMIT 0-th task ('create_ome_zarr_compound'," in line for line in lines)
    assert lines[-1].endswith('END workflow "wf"')

    imgs = images(api, pid, did)
    plate = f"{zarr_dir}/my_plate.zarr"
    mip = f"{zarr_dir}/my_plate_new.zarr"
    assert imgs == [
        {"zarr_url": f"{plate}/A/01/0", "origin": None,
         "attributes": {"well": "A01", "plate": "my_plate.zarr"},
         "types": {"3D": True, "illumination_correction": True}},
        {"zarr_url": f"{plate}/A/02/0", "origin": None,
         "attributes": {"well": "A02", "plate": "my_plate.zarr"},
         "types": {"3D": True, "illumination_correction": True}},
        {"zarr_url": f"{mip}/A/01/0", "origin": f"{plate}/A/01/0",
         "attributes": {"well": "A01", "plate": "my_plate_new.zarr"},
         "types": {"3D": False, "illumination_correction": True}},
        {"zarr_url": f"{mip}/A/02/0", "origin": f"{plate}/A/02/0",
         "attributes": {"well": "A02", "plate": "my_plate_new.zarr"},
         "types": {"3D": False, "illumination_correction": True}},
    ]

    runs = db.query(f"SELECT workflowtask_id, status, num_available_images, task_id, id FROM historyrun "
                    f"WHERE job_id = {job['id']} ORDER BY id")
    assert [r[:4] for r in runs] == [[str(wft1), "done", "0", str(t["create_ome_zarr"])],
                                     [str(wft2), "done", "2", str(t["illum"])],
                                     [str(wft3), "done", "2", str(t["mip"])]]
    dump = json.loads(db.query(f"SELECT workflowtask_dump FROM historyrun WHERE id = {runs[1][4]}")[0][0])
    assert dump["id"] == wft2 and dump["task"]["name"] == "illumination_correction"
    assert dump["task"]["input_types"] == {"illumination_correction": False}
    units = db.query(f"SELECT history_run_id, status, logfile, zarr_urls FROM historyunit ORDER BY id")
    sub1, sub2, sub3 = (wd / "0_create_ome_zarr_compound", wd / "1_illumination_correction", wd / "2_mip_compound")
    logs = [u[2] for u in units]
    assert logs == [f"{sub1}/non_par--log.txt", f"{sub1}/par-000000-0000000-log.txt",
                    f"{sub1}/par-000000-0000001-log.txt",
                    f"{sub2}/par-000000-0000000-log.txt", f"{sub2}/par-000000-0000001-log.txt",
                    f"{sub3}/non_par--log.txt", f"{sub3}/par-000000-0000000-log.txt",
                    f"{sub3}/par-000001-0000001-log.txt"]
    assert all(u[1] == "done" for u in units)
    urls = [json.loads(u[3]) if u[3].startswith("[") else [x for x in u[3].strip("{}").split(",") if x]
            for u in units]
    assert urls[0] == [] and urls[1] == [f"{plate}/A/01/0"] and urls[5] == [f"{plate}/A/01/0", f"{plate}/A/02/0"]
    cache = db.query(f"SELECT zarr_url, workflowtask_id FROM historyimagecache ORDER BY workflowtask_id, zarr_url")
    assert cache == [[f"{plate}/A/01/0", str(wft2)], [f"{plate}/A/02/0", str(wft2)],
                     [f"{plate}/A/01/0", str(wft3)], [f"{plate}/A/02/0", str(wft3)]]
    acc = db.query("SELECT num_tasks, num_new_images FROM accountingrecord ORDER BY id")
    assert acc == [["3", "2"], ["2", "0"], ["3", "2"]]
    # task files: args as upstream writes them, FRACTAL_CACHE_DIR set
    zf = zipfile.ZipFile(str(wd) + ".zip")
    names = set(zf.namelist())
    assert "workflow.log" in names and "1_illumination_correction/par-000000-0000001-args.json" in names
    args = json.loads(zf.read("0_create_ome_zarr_compound/non_par--args.json"))
    assert list(args) == ["zarr_dir", "image_dir"] and args["zarr_dir"] == zarr_dir
    args = json.loads(zf.read("2_mip_compound/par-000001-0000001-args.json"))
    assert list(args)[:2] == ["zarr_url", "init_args"]
    # the folder stays next to its small zip (upstream's 1 MB rule)
    assert wd.is_dir()
    # download: the zip itself
    for path in (f"/api/v2/project/{pid}/job/{job['id']}/download/", f"/admin/v2/job/{job['id']}/download/"):
        req = urllib.request.Request(api.base + path, headers={"Authorization": f"Bearer {api.token}"})
        with urllib.request.urlopen(req) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "application/x-zip-compressed"
            assert r.headers["Content-Disposition"] == f"attachment;filename={wd.name}_archive.zip"
            assert r.read() == (Path(str(wd) + ".zip")).read_bytes()


def test_cache_dir_and_parallel_limit(api, db, tmp_path):
    script = tmp_path / "envtask.py"
    script.write_text(
        "import argparse, json, os, time\n"
        "p = argparse.ArgumentParser(); p.add_argument('--args-json'); p.add_argument('--out-json')\n"
        "a = p.parse_args(); args = json.load(open(a.args_json))\n"
        "print('cache', os.environ.get('FRACTAL_CACHE_DIR'))\n"
        "print('start', time.time()); time.sleep(0.3); print('end', time.time())\n")
    tid = task(api, "envtask", command_parallel=f"{PY} {script}")
    imgs = [{"zarr_url": f"{tmp_path}/zarr/{i}"} for i in range(4)]
    pid, did, wid, _ = project(api, tmp_path, imgs)
    add(api, pid, wid, tid, meta_parallel={"parallel_tasks_per_job": 2})
    job = wait(api, pid, submit(api, pid, wid, did)["id"])
    assert job["status"] == "done", job["log"]
    wd = Path(job["working_dir"])
    spans = []
    for i in range(4):
        text = (wd / "0_envtask" / f"par-{i // 2:06d}-{i:07d}-log.txt").read_text().split()
        assert text[1] == f"{tmp_path}/fractal/.fractal_cache"
        spans.append((float(text[3]), float(text[5])))
    # chunks of two: the second chunk starts after the first ended
    assert min(spans[2][0], spans[3][0]) >= max(spans[0][1], spans[1][1])


def test_failing_units(api, db, tmp_path):
    t = tasks(api)
    imgs = [{"zarr_url": f"{tmp_path}/zarr/{i}", "types": {"my_type": False}} for i in range(2)]
    pid, did, wid, zarr_dir = project(api, tmp_path, imgs)
    # a compound whose compute fails on even items
    add(api, pid, wid, t["compound"], args_parallel={"raise_error_if_ind_is_even": True})
    add(api, pid, wid, t["generic"])
    job = wait(api, pid, submit(api, pid, wid, did)["id"])
    assert job["status"] == "failed"
    log = job["log"]
    assert log.startswith(f"JOB ERROR in Fractal job {job['id']}:\nTRACEBACK:\nJobExecutionError\n\n"
                          "An error occurred.\nOriginal error:\nTask failed with returncode=1.\nSTDERR: ")
    assert log.endswith("\n\n")
    assert "Traceback" in log
    runs = db.query(f"SELECT status FROM historyrun WHERE job_id = {job['id']}")
    assert runs == [["failed"]]  # the second task never ran
    units = db.query("SELECT status FROM historyunit ORDER BY id")
    assert units == [["failed"], ["failed"], ["failed"]]
    wd = Path(job["working_dir"])
    wlog = (wd / "workflow.log").read_text()
    assert "END    0-th task ('generic_task_compound'," in wlog and wlog.rstrip().endswith(
        'Workflow "wf" failed (JobExecutionError).')
    # the successful compute's output still flags the images (no new ones)
    assert [i["zarr_url"] for i in images(api, pid, did)] == [f"{tmp_path}/zarr/0", f"{tmp_path}/zarr/1"]

    # invalid output
    wid2 = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "wf2"})[1]["id"]
    add(api, pid, wid2, t["invalid"])
    job = wait(api, pid, submit(api, pid, wid2, did)["id"])
    assert job["status"] == "failed"
    assert "Validation of task output failed.\nOriginal error: 1 validation error for TaskOutput\n" in job["log"]
    assert "Extra inputs are not permitted [type=extra_forbidden" in job["log"]
    unit = db.query(f"SELECT u.status FROM historyunit u JOIN historyrun r ON r.id = u.history_run_id "
                    f"WHERE r.job_id = {job['id']}")
    assert unit == [["failed"]]

    # a parallel task where one unit is killed: the other unit's output is kept
    script = tmp_path / "killme.py"
    script.write_text(
        "import argparse, json, os, signal\n"
        "p = argparse.ArgumentParser(); p.add_argument('--args-json'); p.add_argument('--out-json')\n"
        "a = p.parse_args(); args = json.load(open(a.args_json))\n"
        "if args['zarr_url'].endswith('/0'): os.kill(os.getpid(), signal.SIGKILL)\n"
        "json.dump({'image_list_updates': [{'zarr_url': args['zarr_url'], 'attributes': {'ok': 1}}]},"
        " open(a.out_json, 'w'))\n")
    tid = task(api, "killme", command_parallel=f"{PY} {script}", output_types={"killed": True})
    wid3 = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "wf3"})[1]["id"]
    add(api, pid, wid3, tid)
    job = wait(api, pid, submit(api, pid, wid3, did)["id"])
    assert job["status"] == "failed"
    assert "Original error:\nTask failed with returncode=-9.\nSTDERR: \n\n" in job["log"]
    imgs = {i["zarr_url"]: i for i in images(api, pid, did)}
    assert imgs[f"{tmp_path}/zarr/1"]["attributes"] == {"ok": 1}
    assert imgs[f"{tmp_path}/zarr/1"]["types"] == {"my_type": False, "killed": True}
    assert imgs[f"{tmp_path}/zarr/0"]["attributes"] == {}
    units = db.query(f"SELECT u.status FROM historyunit u JOIN historyrun r ON r.id = u.history_run_id "
                     f"WHERE r.job_id = {job['id']} ORDER BY u.id")
    assert units == [["failed"], ["done"]]

    # missing command / non-existing executable
    tid = task(api, "missing", command_non_parallel="/nonexistent/task --x")
    wid4 = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "wf4"})[1]["id"]
    add(api, pid, wid4, tid)
    job = wait(api, pid, submit(api, pid, wid4, did)["id"])
    assert job["log"] == (f"JOB ERROR in Fractal job {job['id']}:\nTRACEBACK:\nJobExecutionError\n\nAn error occurred.\n"
                          "Original error:\nCommand \"/nonexistent/task\" is not valid. "
                          "Hint: make sure that it is executable.\n\n")

    # an empty image list after filtering
    wid5 = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "wf5"})[1]["id"]
    add(api, pid, wid5, t["generic"])
    job = wait(api, pid, submit(api, pid, wid5, did, {"attribute_filters": {"well": ["A01"]}})["id"])
    assert job["log"] == (f"JOB ERROR in Fractal job {job['id']}:\nTRACEBACK:\nJobExecutionError\n"
                          "Cannot run task 'generic_task' for an empty image list (obtained after applying "
                          "type_filters={} and attribute_filters={'well': ['A01']}).")


def test_converter_insert_and_warnings(api, db, tmp_path):
    t = tasks(api)
    pid, did, wid, zarr_dir = project(api, tmp_path)
    add(api, pid, wid, t["insert"])
    add(api, pid, wid, t["generic"], args_non_parallel={"sleep_time": 0})
    job = wait(api, pid, submit(api, pid, wid, did)["id"])
    assert job["status"] == "done", job["log"]
    imgs = images(api, pid, did)
    assert [i["zarr_url"] for i in imgs] == [f"{zarr_dir}/my-new-image"]
    units = db.query("SELECT status, has_warnings, zarr_urls FROM historyunit ORDER BY id")
    assert [u[:2] for u in units] == [["done", "0" if db.engine == "sqlite" else "f"],
                                      ["done", "1" if db.engine == "sqlite" else "t"]]


def test_submission_errors(api, db, tmp_path):
    t = tasks(api)
    pid, did, wid, _ = project(api, tmp_path, [{"zarr_url": f"{tmp_path}/zarr/a"}])
    url = f"/api/v2/project/{pid}/job/submit/"
    assert submit(api, pid, wid, did, expect=422) == {"detail": f"Workflow {wid} has empty task list"}
    add(api, pid, wid, t["generic"])
    b = submit(api, pid, wid, did, {"first_task_index": 2, "last_task_index": 1}, expect=422)
    assert b["detail"][0]["msg"] == "Value error, first_task_index=2 cannot be larger than last_task_index=1"
    b = submit(api, pid, wid, did, {"last_task_index": 3}, expect=422)
    assert b == {"detail": "Invalid values for first_task_index or last_task_index (with num_tasks=1).\n"
                           "Original error: last_task_index=3 cannot be larger than (num_tasks-1)=0"}
    b = submit(api, pid, wid, did, {"foo": 1}, expect=422)
    assert b["detail"][0]["type"] == "extra_forbidden"
    b = submit(api, pid, wid, did, {"slurm_account": "acc"}, expect=422)
    assert b == {"detail": "SLURM account 'acc' is not among those available to the current user"}
    assert submit(api, pid, wid, did + 100, expect=404) == {"detail": "Dataset not found"}
    s, b, _ = api.post(url + f"?dataset_id={did}", body={})
    assert s == 422 and b["detail"][0]["loc"] == ["query", "workflow_id"]
    # inactive task
    tg = db.query(f"SELECT taskgroupv2_id FROM taskv2 WHERE id = {t['generic']}")[0][0]
    db.execute(f"UPDATE taskgroupv2 SET active = false WHERE id = {tg}")
    assert submit(api, pid, wid, did, expect=422) == {"detail": f"Error: task {t['generic']} (generic_task) is not active."}
    db.execute(f"UPDATE taskgroupv2 SET active = true WHERE id = {tg}")
    # type filters that stopped merging once the task's input types changed
    wid3 = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "wf3"})[1]["id"]
    add(api, pid, wid3, t["parallel"], type_filters={"other": True})
    db.execute(f"""UPDATE taskv2 SET input_types = '{{"other": false, "my_type": false}}' WHERE id = {t['parallel']}""")
    assert submit(api, pid, wid3, did, expect=422) == {
        "detail": "Incompatible type filters.\nOriginal error: Cannot merge type filters "
                  "`{'other': False, 'my_type': False}` (from task) and `{'other': True}` (from workflowtask)."}
    # resource closed
    db.execute("UPDATE resource SET prevent_new_submissions = true")
    assert submit(api, pid, wid, did, expect=422) == {
        "detail": "The 'Local resource' resource does not currently accept new job submissions."}
    db.execute("UPDATE resource SET prevent_new_submissions = false")
    # one submitted job per dataset
    tid = task(api, "sleepy", command_non_parallel=cmd("generic_task.py"))
    wid2 = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "wf2"})[1]["id"]
    add(api, pid, wid2, tid, args_non_parallel={"sleep_time": 5})
    job = submit(api, pid, wid2, did)
    assert submit(api, pid, wid, did, expect=422) == {"detail": f"Dataset {did} is already in use in submitted job(s)."}
    # show_tmp_logs while running
    deadline = time.time() + 4
    while True:
        b = api.get(f"/api/v2/project/{pid}/job/{job['id']}/?show_tmp_logs=true")[1]
        if "START workflow" in (b["log"] or "") or time.time() > deadline:
            break
        time.sleep(0.1)
    assert b["status"] == "submitted" and "START workflow" in b["log"]
    assert api.get(f"/api/v2/project/{pid}/job/{job['id']}/")[1]["log"] is None
    # stop: not for the local backend
    assert api.get(f"/api/v2/project/{pid}/job/{job['id']}/stop/")[:2] == (
        422, {"detail": "Stopping a job execution is not implemented for FRACTAL_RUNNER_BACKEND=local."})
    assert api.get("/admin/v2/job/1/stop/")[0] == 422
    assert api.get("/api/v2/job/squeue/")[1] == {
        "detail": "This endpoint is not available for FRACTAL_RUNNER_BACKEND=local."}
    wait(api, pid, job["id"])


def test_job_lists_and_admin(api, db, tmp_path):
    t = tasks(api)
    pid, did, wid, _ = project(api, tmp_path, [{"zarr_url": f"{tmp_path}/zarr/a"}])
    add(api, pid, wid, t["generic"], args_non_parallel={"sleep_time": 0})
    j1 = wait(api, pid, submit(api, pid, wid, did)["id"])
    j2 = wait(api, pid, submit(api, pid, wid, did)["id"])
    assert [j["id"] for j in api.get("/api/v2/job/")[1]] == [j2["id"], j1["id"]]
    assert [j["log"] for j in api.get("/api/v2/job/?log=false")[1]] == [None, None]
    assert [j["id"] for j in api.get(f"/api/v2/project/{pid}/job/")[1]] == [j2["id"], j1["id"]]
    assert [j["id"] for j in api.get(f"/api/v2/project/{pid}/workflow/{wid}/job/")[1]] == [j2["id"], j1["id"]]
    assert api.get(f"/api/v2/project/{pid}/job/9999/")[:2] == (404, {"detail": "Job not found"})
    page = api.get("/admin/v2/job/?page_size=1")[1]
    assert page["total_count"] == 2 and page["page_size"] == 1 and page["items"][0]["id"] == j2["id"]
    assert api.get(f"/admin/v2/job/?id={j1['id']}")[1]["items"][0]["id"] == j1["id"]
    assert api.get("/admin/v2/job/?status=submitted")[1]["total_count"] == 0
    assert api.get("/admin/v2/job/?status=x")[0] == 422
    assert api.get(f"/admin/v2/job/?job_user_email={ADMIN_EMAIL}")[1]["total_count"] == 2
    assert api.get(f"/admin/v2/job/{j1['id']}/")[1]["id"] == j1["id"]
    assert api.get("/admin/v2/job/9999/")[1] == {"detail": "Job 9999 not found"}
    s, b, _ = api.request("PATCH", f"/admin/v2/job/{j1['id']}/", body={"status": "failed"})
    assert (s, b) == (422, {"detail": f"Job {j1['id']} has status job.status='done' != 'submitted'."})
    db.execute(f"UPDATE jobv2 SET status = 'submitted', log = 'x' WHERE id = {j1['id']}")
    s, b, _ = api.request("PATCH", f"/admin/v2/job/{j1['id']}/", body={"status": "done"})
    assert (s, b) == (422, {"detail": "Cannot set job status to done"})
    s, b, _ = api.request("PATCH", f"/admin/v2/job/{j1['id']}/", body={"status": "failed"})
    assert s == 200 and b["status"] == "failed"
    assert b["log"].startswith("x\nThis job was manually marked as 'failed' by an admin (")
    assert db.query(f"SELECT status FROM historyrun WHERE job_id = {j1['id']}") == [["failed"]]


def job_row(db, jid):
    """status and log of a job (newlines kept, whatever the engine's client does with them)."""
    nl = "char(10)" if db.engine == "sqlite" else "chr(10)"
    status, log = db.query(f"SELECT status, replace(log, {nl}, '<NL>') FROM jobv2 WHERE id = {jid}")[0]
    return status, log.replace("<NL>", "\n")


def test_second_server_leaves_the_first_ones_jobs_alone(env, db, tmp_path):
    # only the server holding the database's server lock fails jobs left 'submitted' at start-up
    e = init_db(env, tmp_path)
    first = Server(e, tmp_path)
    api = first.http
    api.token = api.login()
    tid = task(api, "sleepy", command_non_parallel=cmd("generic_task.py"))
    pid, did, wid, _ = project(api, tmp_path, [{"zarr_url": f"{tmp_path}/zarr/a"}])
    add(api, pid, wid, tid, args_non_parallel={"sleep_time": 6})
    job = submit(api, pid, wid, did)
    second = Server(e, tmp_path)
    try:
        assert "Another fractalctl server holds this database" in second.output()
        assert db.query(f"SELECT status FROM jobv2 WHERE id = {job['id']}") == [["submitted"]]
        second.http.token = second.http.login()
        assert second.http.get(f"/api/v2/project/{pid}/job/{job['id']}/")[1]["status"] == "submitted"
        assert wait(api, pid, job["id"])["status"] == "done"
    finally:
        assert second.stop() == 0
        assert first.stop() == 0
    # with both gone, the next server holds the lock again
    db.execute(f"UPDATE jobv2 SET status = 'submitted' WHERE id = {job['id']}")
    third = Server(e, tmp_path)
    try:
        assert "Another fractalctl server" not in third.output()
        assert job_row(db, job["id"])[0] == "failed"
    finally:
        assert third.stop() == 0


def sleepy_job(api, tmp_path):
    """A job whose one task sleeps 60 s: (project id, job)."""
    tid = task(api, "sleepy", command_non_parallel=cmd("generic_task.py"))
    pid, did, wid, _ = project(api, tmp_path, [{"zarr_url": f"{tmp_path}/zarr/a"}])
    add(api, pid, wid, tid, args_non_parallel={"sleep_time": 60})
    return pid, submit(api, pid, wid, did)


def test_server_restart_during_a_job(env, db, tmp_path):
    e = init_db(env, tmp_path)
    s = Server(e, tmp_path)
    api = s.http
    api.token = api.login()
    pid, job = sleepy_job(api, tmp_path)
    deadline = time.time() + 10
    while time.time() < deadline:
        if "0-th task" in (api.get(f"/api/v2/project/{pid}/job/{job['id']}/?show_tmp_logs=true")[1]["log"] or ""):
            break
        time.sleep(0.1)
    time.sleep(0.5)  # the task's process is started right after that line
    # SIGTERM: the task is stopped and the job fails, with a clear line
    t0 = time.time()
    assert s.stop() == 0
    assert time.time() - t0 < 20
    status, log = job_row(db, job["id"])
    assert status == "failed"
    assert log.endswith("\nJob stopped due to app shutdown\n")
    assert "Task failed with returncode=-15." in log
    # a job left 'submitted' by a killed server is failed at the next start
    db.execute(f"UPDATE jobv2 SET status = 'submitted' WHERE id = {job['id']}")
    db.execute("UPDATE historyrun SET status = 'submitted'")
    db.execute("UPDATE historyunit SET status = 'submitted'")
    s = Server(e, tmp_path)
    try:
        status, log = job_row(db, job["id"])
        assert status == "failed"
        assert log.endswith("\nJob marked as failed at server start-up: it was still 'submitted' when the previous "
                            "server process stopped, so its execution was interrupted.\n")
        assert db.query("SELECT status FROM historyrun") == [["failed"]]
        assert db.query("SELECT status FROM historyunit") == [["failed"]]
    finally:
        assert s.stop() == 0


def live_processes(*markers):
    """pids of the processes (zombies excluded) whose command line holds every marker."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and all(m in cmdline for m in markers):
            found.append(int(d.name))
    return found


def running_sleepy_job(api, db, tmp_path):
    """sleepy_job() once its task runs: (project id, job, working_dir, pids of the task's processes)."""
    pid, job = sleepy_job(api, tmp_path)
    working_dir = db.query(f"SELECT working_dir FROM jobv2 WHERE id = {job['id']}")[0][0]
    deadline = time.time() + 20
    while not live_processes("generic_task.py", working_dir) and time.time() < deadline:
        time.sleep(0.05)
    tasks_running = live_processes("generic_task.py", working_dir)
    assert tasks_running, "the task did not start"
    return pid, job, working_dir, tasks_running


def test_tasks_of_a_killed_server_are_stopped_at_the_next_start(env, db, tmp_path):
    # issue 19 finding 8: kill -9 leaves the task running under PID 1; the next start must stop it before
    # failing the job, and say so in the job's log
    e = init_db(env, tmp_path)
    s = Server(e, tmp_path)
    decoy = None
    try:
        api = s.http
        api.token = api.login()
        pid, job, working_dir, tasks_running = running_sleepy_job(api, db, tmp_path)
        s.stop(signal.SIGKILL)
        time.sleep(0.3)
        assert live_processes("generic_task.py", working_dir) == tasks_running  # orphaned, still running
        assert db.query(f"SELECT status FROM jobv2 WHERE id = {job['id']}") == [["submitted"]]
        # a record naming another process group (a reused pid: the start time does not match) is left alone
        decoy = subprocess.Popen(["sleep", "60"], start_new_session=True)
        (Path(working_dir) / f".fractal-pgid-{decoy.pid}").write_text(f"{decoy.pid} 1\n")
        s = Server(e, tmp_path)
        status, log = job_row(db, job["id"])
        assert status == "failed"
        assert live_processes("generic_task.py", working_dir) == []
        assert decoy.poll() is None
        lines = log.splitlines()
        assert lines[-1] == ("Job marked as failed at server start-up: it was still 'submitted' when the previous "
                             "server process stopped, so its execution was interrupted.")
        assert lines[-2] == (f"Stopped task process group {tasks_running[0]}, left running by the previous server "
                             "process."), log
        assert not list(Path(working_dir).glob(".fractal-pgid-*"))
    finally:
        for p in live_processes("generic_task.py", str(tmp_path)):
            os.kill(p, signal.SIGKILL)
        if decoy:
            decoy.kill()
            decoy.wait()
        s.stop()


def test_a_slurm_ssh_host_that_refuses_fails_the_job_at_once(env, db, tmp_path):
    # the slurm_ssh executor cannot log in (nothing listens on port 1): the job fails at once with ssh's words,
    # before any history run (tests/test_slurm_ssh.py runs jobs over a real sshd)
    e = init_db(dict(env, FRACTAL_RUNNER_BACKEND="slurm_ssh"), tmp_path)
    s = Server(e, tmp_path)
    try:
        api = s.http
        api.token = api.login()
        runner = {"default_slurm_config": {"partition": "main", "cpus_per_task": 1, "mem": "100M"},
                  "batching_config": {"target_cpus_per_job": 1, "max_cpus_per_job": 1, "target_mem_per_job": 200,
                                      "max_mem_per_job": 500, "target_num_jobs": 2, "max_num_jobs": 4}}
        status, res, _ = api.post("/admin/v2/resource/", body={
            "type": "slurm_ssh", "name": "Ssh", "host": "127.0.0.1:1", "jobs_local_dir": str(tmp_path / "jobs"),
            "tasks_local_dir": str(tmp_path / "tasks"), "jobs_slurm_python_worker": "/venv/bin/python",
            "jobs_runner_config": runner, "tasks_pixi_config": {},
            "tasks_python_config": {"default_version": "3.12", "versions": {"3.12": "/usr/bin/python3.12"}}})
        assert status == 201, res
        status, prof, _ = api.post(f"/admin/v2/resource/{res['id']}/profile/",
                                   body={"resource_type": "slurm_ssh", "name": "p", "username": "u",
                                         "ssh_key_path": "/k/id", "jobs_remote_dir": "/r/jobs",
                                         "tasks_remote_dir": "/r/tasks"})
        assert status == 201, prof
        me = api.get("/auth/current-user/")[1]
        assert api.request("PATCH", f"/auth/users/{me['id']}/", body={"profile_id": prof["id"]})[0] == 200
        tid = task(api, "generic_task", command_non_parallel=cmd("generic_task.py"))
        pid, did, wid, _ = project(api, tmp_path, [{"zarr_url": f"{tmp_path}/zarr/a"}])
        add(api, pid, wid, tid)
        jid = submit(api, pid, wid, did)["id"]
        deadline = time.time() + 30
        while db.query(f"SELECT status FROM jobv2 WHERE id = {jid}") == [["submitted"]] and time.time() < deadline:
            time.sleep(0.1)
        status, log = job_row(db, jid)
        assert status == "failed"
        assert log.startswith(f"UNKNOWN ERROR in Fractal job {jid}\nTRACEBACK:\nRuntimeError: Cannot open SSH connection. "
                              "Original error:\n"), log
        assert "ssh: connect to host 127.0.0.1 port 1: Connection refused" in log, log
        assert int(db.query(f"SELECT count(*) FROM historyrun WHERE job_id = {jid}")[0][0]) == 0
    finally:
        assert s.stop() == 0, s.output()


def canonical(items):
    """The images as text, key order included (dict equality ignores it)."""
    return [json.dumps(i) for i in items]


def test_a_jobs_list_is_the_one_stored_and_served(env, db, tmp_path):
    """The job's image list (runner/joblist.c): after each task the list it
    wrote is handed to the images cache; what this server answers, what a
    second server scans from the database and what is stored are the same,
    key order included (jsonb's, as the images routes store it), and an edit
    made afterwards applies to it."""
    e = init_db(env, tmp_path)
    a, b = Server(e, tmp_path), Server(e, tmp_path)
    try:
        api, other = a.http, b.http
        api.token, other.token = api.login(), other.login()
        t = tasks(api)
        zd = tmp_path / "zarr"
        pre = [{"zarr_url": f"{zd}/pre/{i}", "attributes": {"zz": i, "a": "x", "well": f"B{i}"},
                "types": {"my_type": False, "3D": False}} for i in range(4)]
        pid, did, wid, zarr_dir = project(api, tmp_path, pre)
        base = f"/api/v2/project/{pid}/dataset/{did}"
        assert len(images(api, pid, did)) == 4 and len(images(other, pid, did)) == 4  # both cached
        add(api, pid, wid, t["create_ome_zarr"], args_non_parallel={"image_dir": "/tmp/input_images"})
        add(api, pid, wid, t["parallel"])
        add(api, pid, wid, t["mip"], meta_parallel={"parallel_tasks_per_job": 1})
        job = wait(api, pid, submit(api, pid, wid, did)["id"])
        assert job["status"] == "done", job["log"]
        mine, fresh = images(api, pid, did), images(other, pid, did)
        stored = json.loads(db.query(f"SELECT images FROM datasetv2 WHERE id = {did}")[0][0])
        assert canonical(mine) == canonical(fresh) and mine == stored, (mine, fresh)
        assert len(mine) > 4 and all(i["types"].get("my_type") is True for i in mine[:4])
        for img in mine:
            for field in ("attributes", "types"):
                keys = list(img[field])
                assert keys == sorted(keys, key=lambda k: (len(k.encode()), k.encode())), img
        q = {"type_filters": {"3D": False}}
        assert api.post(f"{base}/images/query/", body=q)[1] == other.post(f"{base}/images/query/", body=q)[1]
        # an edit after the job, on the list the job handed over
        st, img, _ = api.request("PATCH", f"{base}/images/", body={"zarr_url": mine[1]["zarr_url"],
                                                                    "attributes": {"well": "Z9"}})
        assert st == 200, img
        assert api.request("DELETE", f"{base}/images/?zarr_url={mine[0]['zarr_url']}")[0] == 204
        mine, fresh = images(api, pid, did), images(other, pid, did)
        stored = json.loads(db.query(f"SELECT images FROM datasetv2 WHERE id = {did}")[0][0])
        assert canonical(mine) == canonical(fresh) and mine == stored and mine[0]["attributes"]["well"] == "Z9"
    finally:
        assert a.stop() == 0, a.output()
        assert b.stop() == 0, b.output()


def test_a_job_never_overwrites_a_list_it_cannot_read(api, db, tmp_path):
    tid = task(api, "generic_task", command_non_parallel=cmd("generic_task.py"))
    pid, did, wid, _ = project(api, tmp_path, [{"zarr_url": f"{tmp_path}/zarr/a"}])
    add(api, pid, wid, tid, args_non_parallel={"sleep_time": 0})
    # written by someone else: valid JSON (jsonb on PostgreSQL), not a list
    db.execute(f"UPDATE datasetv2 SET images = '{{\"not\": \"a list\"}}' WHERE id = {did}")
    job = wait(api, pid, submit(api, pid, wid, did)["id"])
    assert job["status"] == "failed"
    assert f"ValueError: the images of dataset {did} cannot be read: the images are not a JSON list" in job["log"], \
        job["log"]
    assert json.loads(db.query(f"SELECT images FROM datasetv2 WHERE id = {did}")[0][0]) == {"not": "a list"}
    assert db.query("SELECT count(*) FROM historyrun") == [["0"]]


def test_a_task_that_changes_no_image_does_not_rewrite_the_list(api, db, tmp_path, server):
    """A task whose output names no image (runner/joblist.c) leaves the row
    as it is: no UPDATE of datasetv2.images (a trigger counts them), the
    stored text byte for byte the same. When the row changed meanwhile
    (an edit through the API while the task ran), the job writes its own
    list, as upstream's does after every task: the edit is overwritten."""
    tid = task(api, "generic_task", command_non_parallel=cmd("generic_task.py"))
    zd = tmp_path / "zarr"
    pid, did, wid, _ = project(api, tmp_path, [{"zarr_url": f"{zd}/{i}", "types": {"3D": True}} for i in range(3)])
    base = f"/api/v2/project/{pid}/dataset/{did}"
    # a removal in place leaves spaces in the text, which a rewrite would not keep
    assert api.request("DELETE", f"{base}/images/?zarr_url={zd}/1")[0] == 204
    if db.engine == "sqlite":
        db.execute("CREATE TABLE image_writes (n INTEGER); CREATE TRIGGER count_image_writes AFTER UPDATE OF images "
                   "ON datasetv2 BEGIN INSERT INTO image_writes VALUES (1); END;")
    else:
        db.execute("CREATE TABLE image_writes (n INTEGER); GRANT ALL ON image_writes TO PUBLIC; "
                   "CREATE FUNCTION count_image_writes() RETURNS trigger "
                   "LANGUAGE plpgsql AS $$ BEGIN INSERT INTO image_writes VALUES (1); RETURN NEW; END $$; "
                   "CREATE TRIGGER count_image_writes AFTER UPDATE OF images ON datasetv2 FOR EACH ROW "
                   "EXECUTE FUNCTION count_image_writes();")

    def text():
        return db.query(f"SELECT images FROM datasetv2 WHERE id = {did}")[0][0]

    def writes():
        return int(db.query("SELECT count(*) FROM image_writes")[0][0])

    before = text()
    wf_task = add(api, pid, wid, tid, args_non_parallel={"sleep_time": 0})
    job = wait(api, pid, submit(api, pid, wid, did)["id"])
    assert job["status"] == "done", job["log"]
    assert writes() == 0 and text() == before, server.output()[-3000:]
    assert [i["zarr_url"] for i in images(api, pid, did)] == [f"{zd}/0", f"{zd}/2"]
    # the same task, slower, with an edit through the API while it runs
    st, _, _ = api.request("PATCH", f"/api/v2/project/{pid}/workflow/{wid}/wftask/{wf_task}/",
                           body={"args_non_parallel": {"sleep_time": 3}})
    assert st == 200
    job = submit(api, pid, wid, did)
    jid, log = job["id"], Path(job["working_dir"]) / "workflow.log"
    deadline = time.time() + 60
    while not (log.exists() and "SUBMIT" in log.read_text()) and time.time() < deadline:
        time.sleep(0.05)  # the task is submitted: the job holds its list
    assert api.post(f"{base}/images/", body={"zarr_url": f"{zd}/during"})[0] == 201
    # the job started from the cache's index of the list; the edit went to
    # a copy of it (the job's stays as it was, and is what it writes)
    assert [i["zarr_url"] for i in images(api, pid, did)] == [f"{zd}/0", f"{zd}/2", f"{zd}/during"]
    job = wait(api, pid, jid)
    assert job["status"] == "done", job["log"]
    assert writes() >= 1
    assert [i["zarr_url"] for i in json.loads(text())] == [f"{zd}/0", f"{zd}/2"]
    assert [i["zarr_url"] for i in images(api, pid, did)] == [f"{zd}/0", f"{zd}/2"]
