"""History and status routes (/api/v2/project/{p}/status/...), the latest job
of a workflow on a dataset, and the pre-submission checks, on both engines.

The runner that fills jobv2 and the history tables is not used here: rows are
inserted with SQL shaped as upstream's runner writes them (one historyrun per
workflow task run, one historyunit per invocation with its log file, and
historyimagecache pointing every image at its latest unit), with log files on
disk and, for a job whose folder was zipped away, inside `<working_dir>.zip`.
"""
import json
import zipfile

import pytest

STATUS_KEY = "__wftask_dataset_image_status__"


@pytest.fixture
def api(server):
    server.http.token = server.http.login()
    return server.http


def new_user(api, email, guest=False):
    u = api.post("/auth/register/", body={"email": email, "password": "abcd", "project_dirs": ["/data/u"]})[1]
    api.request("PATCH", f"/auth/users/{u['id']}/", body={"is_verified": True, "profile_id": 1, "is_guest": guest})
    return u["id"], api.login(email, "abcd")


def share(api, pid, email, token, permissions):
    assert api.post(f"/api/v2/project/{pid}/guest/?email={email}", body={"permissions": permissions})[0] == 201
    assert api.post(f"/api/v2/project/{pid}/access/accept/", token=token)[0] == 200


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


def sql_json(v):
    return sql_str(json.dumps(v))


def sql_text_array(db, items):
    if db.engine == "sqlite":
        return sql_json(items)
    return "ARRAY[" + ",".join(sql_str(i) for i in items) + "]::varchar[]" if items else "'{}'::varchar[]"


def sql_int_array(db, items):
    if db.engine == "sqlite":
        return sql_json(items)
    return "'{" + ",".join(str(i) for i in items) + "}'::integer[]"


def ts(minute):
    return f"'2025-03-04T10:{minute:02d}:00.123456+00:00'"


def insert_job(db, job_id, pid, wid, did, working_dir, status, start_minute, first=0, last=2, email="admin@example.org"):
    db.execute(
        "INSERT INTO jobv2 (id, project_id, workflow_id, dataset_id, user_email, slurm_account, dataset_dump, "
        "workflow_dump, project_dump, worker_init, working_dir, working_dir_user, first_task_index, last_task_index, "
        "start_timestamp, end_timestamp, status, log, attribute_filters, type_filters, executor_error_log, "
        "fractal_server_version) VALUES "
        f"({job_id}, {pid}, {wid}, {did}, {sql_str(email)}, NULL, "
        + sql_json({"id": did, "name": "ds", "project_id": pid, "timestamp_created": "2025-03-04T09:00:00+00:00",
                    "zarr_dir": "/z", "type_filters": {}}) + ", "
        + sql_json({"id": wid, "name": "wf", "project_id": pid, "timestamp_created": "2025-03-04T09:00:00+00:00"}) + ", "
        + sql_json({"id": pid, "name": "p", "timestamp_created": "2025-03-04T09:00:00+00:00"}) + ", "
        f"NULL, {sql_str(str(working_dir))}, {sql_str(str(working_dir))}, {first}, {last}, {ts(start_minute)}, "
        f"{'NULL' if status == 'submitted' else ts(start_minute + 5)}, {sql_str(status)}, NULL, "
        + sql_json({"well": ["A01"]}) + ", " + sql_json({"3D": True}) + ", NULL, '2.24.2')")


def insert_run(db, run_id, did, wft, job_id, task_id, status, minute, available):
    dump = {"id": wft, "workflow_id": 1, "order": 0, "type_filters": {}, "task_id": task_id,
            "task": {"id": task_id, "name": "x", "type": "non_parallel", "command_non_parallel": "python np.py",
                     "command_parallel": None, "version": "1.0", "input_types": {}, "output_types": {}}}
    db.execute(
        "INSERT INTO historyrun (id, dataset_id, workflowtask_id, job_id, task_id, workflowtask_dump, task_group_dump, "
        f"timestamp_started, status, num_available_images) VALUES ({run_id}, {did}, {wft}, {job_id}, {task_id}, "
        f"{sql_json(dump)}, {sql_json({'id': 1, 'pkg_name': 'x', 'version': '1.0'})}, {ts(minute)}, "
        f"{sql_str(status)}, {available})")


def insert_unit(db, unit_id, run_id, logfile, status, zarr_urls, warnings=False):
    db.execute(
        "INSERT INTO historyunit (id, history_run_id, logfile, status, zarr_urls, has_warnings) VALUES "
        f"({unit_id}, {run_id}, {sql_str(str(logfile))}, {sql_str(status)}, {sql_text_array(db, zarr_urls)}, "
        f"{'TRUE' if warnings else 'FALSE'})")


def cache(db, zarr_url, did, wft, unit_id):
    db.execute("INSERT INTO historyimagecache (zarr_url, dataset_id, workflowtask_id, latest_history_unit_id) "
               f"VALUES ({sql_str(zarr_url)}, {did}, {wft}, {unit_id}) ON CONFLICT (zarr_url, dataset_id, workflowtask_id) "
               f"DO UPDATE SET latest_history_unit_id = {unit_id}")


class World:
    pass


@pytest.fixture
def world(api, db, tmp_path):
    """A project with one dataset of three images and a workflow of three
    tasks (non-parallel, parallel, compound), and what two jobs left: job 1
    (done, folder on disk) ran np and par; job 2 (submitted, its folder
    already zipped) ran np again on image a."""
    w = World()
    w.pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    ds = api.post(f"/api/v2/project/{w.pid}/dataset/", body={"name": "ds", "project_dir": str(tmp_path)})[1]
    w.did = ds["id"]
    w.zarr_dir = ds["zarr_dir"]
    w.a, w.b, w.c = (f"{w.zarr_dir}/{x}" for x in "abc")
    for url, well, types in [(w.a, "A01", {"3D": True, "x": True}), (w.b, "B01", {"3D": False, "x": True}),
                             (w.c, "C01", {"x": True})]:
        assert api.post(f"/api/v2/project/{w.pid}/dataset/{w.did}/images/",
                        body={"zarr_url": url, "attributes": {"well": well}, "types": types})[0] == 201

    def task(name, **kw):
        body = {"name": name, "version": "1.0"}
        body.update(kw)
        status, t, _ = api.post("/api/v2/task/", body=body)
        assert status == 201, t
        return t["id"]

    w.t_np = task("np", command_non_parallel="python np.py")
    w.t_par = task("par", command_parallel="python par.py")
    w.t_cmp = task("cmp", command_non_parallel="python i.py", command_parallel="python c.py")
    w.wid = api.post(f"/api/v2/project/{w.pid}/workflow/", body={"name": "wf"})[1]["id"]
    st, wfts, _ = api.post(f"/api/v2/project/{w.pid}/workflow/{w.wid}/wftask/",
                           body=[{"task_id": w.t_np}, {"task_id": w.t_par}, {"task_id": w.t_cmp}])
    assert st == 201, wfts
    w.wft_np, w.wft_par, w.wft_cmp = (x["id"] for x in wfts)

    # job 1: done, its folder on disk
    w.job1 = tmp_path / "jobs" / "job_1"
    (w.job1 / "0_np").mkdir(parents=True)
    (w.job1 / "1_par").mkdir()
    w.log1 = w.job1 / "0_np" / "non_par--log.txt"
    w.log1.write_bytes(b"np line 1\r\nnp line 2\rend \xc3\xa9\n")
    w.log2 = w.job1 / "1_par" / "par-000000-0000000-log.txt"
    w.log2.write_text("WARNING: something\n")
    w.log3 = w.job1 / "1_par" / "par-000000-0000001-log.txt"
    w.log3.write_text("Traceback: failed\n")
    insert_job(db, 1, w.pid, w.wid, w.did, w.job1, "done", 0)
    insert_run(db, 1, w.did, w.wft_np, 1, w.t_np, "done", 1, 3)
    insert_unit(db, 1, 1, w.log1, "done", [w.a, w.b, w.c])
    for url in (w.a, w.b, w.c):
        cache(db, url, w.did, w.wft_np, 1)
    insert_run(db, 2, w.did, w.wft_par, 1, w.t_par, "failed", 2, 3)
    insert_unit(db, 2, 2, w.log2, "done", [w.a], warnings=True)
    insert_unit(db, 3, 2, w.log3, "failed", [w.b])
    cache(db, w.a, w.did, w.wft_par, 2)
    cache(db, w.b, w.did, w.wft_par, 3)

    # job 2: submitted, its folder zipped and removed (np only, on image a)
    w.job2 = tmp_path / "jobs" / "job_2"
    w.log5 = w.job2 / "0_np" / "non_par--log.txt"
    with zipfile.ZipFile(str(w.job2) + ".zip", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("0_np/non_par--log.txt", "from the zip\r\nsecond line\n")
    insert_job(db, 2, w.pid, w.wid, w.did, w.job2, "submitted", 30, first=0, last=0)
    insert_run(db, 3, w.did, w.wft_np, 2, w.t_np, "submitted", 31, 1)
    insert_unit(db, 5, 3, w.log5, "submitted", [w.a])
    cache(db, w.a, w.did, w.wft_np, 5)
    return w


def test_run_list_counts_units_and_reads_the_task(api, world):
    w = world
    st, runs, _ = api.get(f"/api/v2/project/{w.pid}/status/run/?dataset_id={w.did}&workflowtask_id={w.wft_np}")
    assert st == 200, runs
    assert [r["id"] for r in runs] == [1, 3]
    assert list(runs[0]) == ["id", "timestamp_started", "workflowtask_dump", "num_submitted_units", "num_done_units",
                             "num_failed_units", "num_units_with_warnings", "args_schema_parallel",
                             "args_schema_non_parallel", "version"]
    assert runs[0]["timestamp_started"] == "2025-03-04T10:01:00.123456+00:00"
    assert runs[0]["workflowtask_dump"]["task"]["command_non_parallel"] == "python np.py"
    assert runs[0]["workflowtask_dump"]["id"] == w.wft_np
    assert (runs[0]["num_submitted_units"], runs[0]["num_done_units"], runs[0]["num_failed_units"],
            runs[0]["num_units_with_warnings"]) == (0, 1, 0, 0)
    assert (runs[1]["num_submitted_units"], runs[1]["num_done_units"]) == (1, 0)
    assert runs[0]["version"] == "1.0" and runs[0]["args_schema_parallel"] is None
    st, runs, _ = api.get(f"/api/v2/project/{w.pid}/status/run/?dataset_id={w.did}&workflowtask_id={w.wft_par}")
    assert [(r["id"], r["num_done_units"], r["num_failed_units"], r["num_units_with_warnings"]) for r in runs] == \
        [(2, 1, 1, 1)]
    assert api.get(f"/api/v2/project/{w.pid}/status/run/?dataset_id={w.did}&workflowtask_id={w.wft_cmp}")[1] == []


def test_access_and_query_errors(api, world, db):
    w = world
    base = f"/api/v2/project/{w.pid}/status/run/"
    st, body, _ = api.get(base)
    assert st == 422 and [(e["type"], e["loc"]) for e in body["detail"]] == \
        [("missing", ["query", "dataset_id"]), ("missing", ["query", "workflowtask_id"])]
    st, body, _ = api.get(base + "?dataset_id=x&workflowtask_id=1")
    assert st == 422 and body["detail"][0]["type"] == "int_parsing" and len(body["detail"]) == 1
    assert api.get(base + f"?dataset_id={w.did}&workflowtask_id=999")[1] == {"detail": "WorkflowTask 999 not found."}
    assert api.get(base + f"?dataset_id=999&workflowtask_id={w.wft_np}")[1] == {"detail": "Dataset 999 not found."}
    other = api.post("/api/v2/project/", body={"name": "other"})[1]["id"]
    did2 = api.post(f"/api/v2/project/{other}/dataset/", body={"name": "d2"})[1]["id"]
    st, body, _ = api.get(base + f"?dataset_id={did2}&workflowtask_id={w.wft_np}")
    assert (st, body) == (422, {"detail": "Dataset does not belong to expected project."})
    st, body, _ = api.get(f"/api/v2/project/{other}/status/run/?dataset_id={did2}&workflowtask_id={w.wft_np}")
    assert (st, body) == (422, {"detail": "Workflow does not belong to expected project."})
    assert api.get(f"/api/v2/project/999/status/run/?dataset_id={w.did}&workflowtask_id={w.wft_np}")[1] == \
        {"detail": "Project not found"}
    # a stranger is refused, a guest with read permission reads
    _, bob = new_user(api, "bob@example.org")
    url = base + f"?dataset_id={w.did}&workflowtask_id={w.wft_np}"
    assert api.get(url, token=bob)[0] == 403
    share(api, w.pid, "bob@example.org", bob, "r")
    st, runs, _ = api.get(url, token=bob)
    assert st == 200 and [r["id"] for r in runs] == [1, 3]
    st, body, _ = api.post(f"/api/v2/project/{w.pid}/status/image-log/", token=bob,
                           body={"workflowtask_id": w.wft_np, "dataset_id": w.did, "zarr_url": w.b})
    assert st == 200 and body.startswith("np line 1")


def test_units_paginated_and_filtered(api, world):
    w = world
    base = f"/api/v2/project/{w.pid}/status/run/2/units/?dataset_id={w.did}&workflowtask_id={w.wft_par}"
    st, page, _ = api.get(base)
    assert st == 200, page
    assert (page["current_page"], page["page_size"], page["total_count"]) == (1, 2, 2)
    assert page["items"] == [
        {"id": 2, "logfile": str(w.log2), "has_warnings": True, "status": "done", "zarr_urls": [w.a]},
        {"id": 3, "logfile": str(w.log3), "has_warnings": False, "status": "failed", "zarr_urls": [w.b]}]
    st, page, _ = api.get(base + "&unit_status=failed")
    assert (page["total_count"], [u["id"] for u in page["items"]]) == (1, [3])
    st, page, _ = api.get(base + "&page=2&page_size=1")
    assert (page["current_page"], page["page_size"], page["total_count"], [u["id"] for u in page["items"]]) == \
        (2, 1, 2, [3])
    st, page, _ = api.get(base + "&page=5&page_size=1")
    assert st == 200 and page["items"] == [] and page["current_page"] == 5
    st, body, _ = api.get(base + "&unit_status=unset")
    assert st == 422 and body["detail"] == [{"type": "enum", "loc": ["query", "unit_status"],
                                             "msg": "Input should be 'submitted', 'done' or 'failed'",
                                             "input": "unset", "ctx": {"expected": "'submitted', 'done' or 'failed'"}}]
    st, body, _ = api.get(base + "&page=0")
    assert st == 422 and body["detail"].startswith("Invalid pagination parameters.")
    st, body, _ = api.get(f"/api/v2/project/{w.pid}/status/run/1/units/?dataset_id={w.did}&workflowtask_id={w.wft_par}")
    assert (st, body) == (422, {"detail": f"Invalid query parameters: HistoryRun[1] is not related to "
                                          f"dataset_id={w.did} and workflowtask_id={w.wft_par}."})
    st, body, _ = api.get(f"/api/v2/project/{w.pid}/status/run/99/units/?dataset_id={w.did}&workflowtask_id={w.wft_par}")
    assert (st, body) == (404, {"detail": "HistoryRun 99 not found"})


def test_images_with_status_filters_and_warnings(api, world):
    w = world
    base = f"/api/v2/project/{w.pid}/status/images/?dataset_id={w.did}&workflowtask_id={w.wft_par}"
    st, page, _ = api.post(base, body={})
    assert st == 200, page
    assert (page["current_page"], page["page_size"], page["total_count"]) == (1, 3, 3)
    assert [i["zarr_url"] for i in page["items"]] == [w.a, w.b, w.c]
    assert page["items"][0] == {"zarr_url": w.a, "origin": None,
                                "attributes": {"well": "A01", STATUS_KEY: "done"},
                                "types": {"3D": True, "x": True}, "has_warnings": None}
    assert [i["attributes"][STATUS_KEY] for i in page["items"]] == ["done", "failed", "unset"]
    assert page["attributes"] == {"well": ["A01", "B01", "C01"], STATUS_KEY: ["done", "submitted", "failed", "unset"]}
    assert list(page["attributes"]) == ["well", STATUS_KEY]
    assert sorted(page["types"]) == ["3D", "x"]
    st, page, _ = api.post(base + "&include_warnings=true", body={})
    assert [i["has_warnings"] for i in page["items"]] == [True, False, False]
    st, page, _ = api.post(base, body={"attribute_filters": {STATUS_KEY: ["unset", "failed"]}})
    assert [i["zarr_url"] for i in page["items"]] == [w.b, w.c] and page["total_count"] == 2
    st, page, _ = api.post(base, body={"type_filters": {"3D": True}, "attribute_filters": {"well": ["A01", "B01"]}})
    assert [i["zarr_url"] for i in page["items"]] == [w.a]
    st, page, _ = api.post(base + "&page=2&page_size=2", body={})
    assert (page["page_size"], page["total_count"], [i["zarr_url"] for i in page["items"]]) == (2, 3, [w.c])
    # the status of np is that of each image's latest unit (a: job 2's run)
    st, page, _ = api.post(f"/api/v2/project/{w.pid}/status/images/?dataset_id={w.did}&workflowtask_id={w.wft_np}",
                           body={})
    assert [i["attributes"][STATUS_KEY] for i in page["items"]] == ["submitted", "done", "done"]
    # body and query errors in one 422
    st, body, _ = api.post(f"/api/v2/project/{w.pid}/status/images/?dataset_id={w.did}",
                           body={"type_filters": {"a": "maybe"}})
    assert st == 422, body
    assert [(e["type"], e["loc"]) for e in body["detail"]] == [
        ("missing", ["query", "workflowtask_id"]), ("bool_parsing", ["body", "type_filters", "a"])]
    st, body, _ = api.post(base)
    assert st == 422 and body["detail"][0]["type"] == "missing" and body["detail"][0]["loc"] == ["body"]


def test_image_log_from_disk_zip_and_placeholders(api, world, db):
    w = world
    url = f"/api/v2/project/{w.pid}/status/image-log/"

    def log(zarr_url, wft):
        return api.post(url, body={"workflowtask_id": wft, "dataset_id": w.did, "zarr_url": zarr_url})

    # on disk, read as Python's text mode does (universal newlines)
    assert log(w.b, w.wft_np)[:2] == (200, "np line 1\nnp line 2\nend \u00e9\n")
    # the folder of job 2 is gone: the member of job_2.zip
    st, body, _ = log(w.a, w.wft_np)
    assert (st, body) == (200, "from the zip\nsecond line\n")
    st, body, _ = log(w.a, w.wft_par)
    assert (st, body) == (200, "WARNING: something\n")
    assert log(w.c, w.wft_par)[:2] == (404, {"detail": "HistoryImageCache not found"})
    # neither the file nor an archive
    w.log3.unlink()
    st, body, _ = log(w.b, w.wft_par)
    assert (st, body) == (200, f"Logs for task 'par' in dataset {w.did} are not available.")
    # the archive exists but lacks the member, or the file is not UTF-8
    insert_unit(db, 7, 3, w.job2 / "0_np" / "missing.txt", "done", [w.c])
    cache(db, w.c, w.did, w.wft_np, 7)
    st, body, _ = log(w.c, w.wft_np)
    assert (st, body) == (200, f"Error while retrieving logs for task 'np' in dataset {w.did}.")
    w.log1.write_bytes(b"\xff\xfe bad")
    assert log(w.b, w.wft_np)[1] == f"Error while retrieving logs for task 'np' in dataset {w.did}."
    st, body, _ = api.post(url, body={"workflowtask_id": "x", "dataset_id": w.did})
    assert st == 422 and [(e["type"], e["loc"]) for e in body["detail"]] == [
        ("int_parsing", ["body", "workflowtask_id"]), ("missing", ["body", "zarr_url"])]


def test_unit_log(api, world):
    w = world
    base = f"/api/v2/project/{w.pid}/status/unit-log/"

    def q(run, unit, wft):
        return api.get(base + f"?history_run_id={run}&history_unit_id={unit}&workflowtask_id={wft}&dataset_id={w.did}")

    assert q(2, 3, w.wft_par)[:2] == (200, "Traceback: failed\n")
    assert q(3, 5, w.wft_np)[:2] == (200, "from the zip\nsecond line\n")
    assert q(2, 5, w.wft_par)[:2] == (422, {"detail": "Invalid query parameters: HistoryUnit[5] is not related to "
                                                      "HistoryRun[2]"})
    assert q(2, 99, w.wft_par)[:2] == (404, {"detail": "HistoryUnit 99 not found"})
    assert q(2, 3, w.wft_np)[:2] == (422, {"detail": f"Invalid query parameters: HistoryRun[2] is not related to "
                                                     f"dataset_id={w.did} and workflowtask_id={w.wft_np}."})
    st, body, _ = api.get(base + "?history_run_id=2")
    assert st == 422 and [e["loc"][1] for e in body["detail"]] == ["history_unit_id", "workflowtask_id", "dataset_id"]


def test_latest_job_with_task_statuses(api, world, db):
    w = world
    base = f"/api/v2/project/{w.pid}/latest-job/"
    st, job, _ = api.get(base + f"?workflow_id={w.wid}&dataset_id={w.did}")
    assert st == 200, job
    assert list(job) == ["id", "project_id", "project_dump", "user_email", "slurm_account", "workflow_id",
                         "workflow_dump", "dataset_id", "dataset_dump", "start_timestamp", "end_timestamp", "status",
                         "log", "executor_error_log", "working_dir", "working_dir_user", "first_task_index",
                         "last_task_index", "worker_init", "attribute_filters", "type_filters", "task_statuses"]
    assert job["id"] == 2 and job["status"] == "submitted" and job["end_timestamp"] is None
    assert job["start_timestamp"] == "2025-03-04T10:30:00.123456+00:00"
    assert job["project_dump"] == {"id": w.pid, "name": "p", "timestamp_created": "2025-03-04T09:00:00+00:00"}
    # dumps are read as their models: extra keys dropped, model order
    assert list(job["dataset_dump"]) == ["id", "name", "project_id", "timestamp_created", "zarr_dir"]
    assert job["attribute_filters"] == {"well": ["A01"]} and job["type_filters"] == {"3D": True}
    assert job["working_dir"] == str(w.job2)
    ts_ = job["task_statuses"]
    assert list(ts_) == [str(w.wft_np), str(w.wft_par), str(w.wft_cmp)]
    # np runs in job 2 (the running job): its latest run's status; 3 images
    # counted but only 1 available, so num_available_images is null
    assert ts_[str(w.wft_np)] == {"status": "submitted", "num_submitted_images": 1, "num_done_images": 2,
                                  "num_failed_images": 0, "num_available_images": None, "has_warnings": False}
    assert ts_[str(w.wft_par)] == {"status": "failed", "num_submitted_images": 0, "num_done_images": 1,
                                   "num_failed_images": 1, "num_available_images": 3, "has_warnings": True}
    assert ts_[str(w.wft_cmp)] is None
    # job 2 also covers par (without a run of its own yet): par is submitted
    db.execute("UPDATE jobv2 SET last_task_index = 2 WHERE id = 2")
    ts_ = api.get(base + f"?workflow_id={w.wid}&dataset_id={w.did}")[1]["task_statuses"]
    assert ts_[str(w.wft_par)]["status"] == "submitted" and ts_[str(w.wft_par)]["num_failed_images"] == 1
    assert ts_[str(w.wft_cmp)] == {"status": "submitted"}
    # once no job runs, each task shows its latest run
    db.execute("UPDATE jobv2 SET status = 'failed' WHERE id = 2")
    ts_ = api.get(base + f"?workflow_id={w.wid}&dataset_id={w.did}")[1]["task_statuses"]
    assert ts_[str(w.wft_par)]["status"] == "failed" and ts_[str(w.wft_cmp)] is None
    # no job for that pair
    did2 = api.post(f"/api/v2/project/{w.pid}/dataset/", body={"name": "d2"})[1]["id"]
    assert api.get(base + f"?workflow_id={w.wid}&dataset_id={did2}")[:2] == \
        (404, {"detail": f"Job with workflow_id={w.wid} and dataset_id={did2} not found."})
    assert api.get(base + f"?workflow_id=999&dataset_id={w.did}")[:2] == (404, {"detail": "Workflow not found"})
    st, body, _ = api.get(base)
    assert st == 422 and [e["loc"] for e in body["detail"]] == [["query", "workflow_id"], ["query", "dataset_id"]]


def test_non_processed_images(api, world):
    w = world
    base = f"/api/v2/project/{w.pid}/dataset/{w.did}/images/non-processed/?workflow_id={w.wid}"
    # the first task has no predecessor
    assert api.post(base + f"&workflowtask_id={w.wft_np}", body={})[:2] == (200, [])
    # before par comes np: a is still submitted there
    assert api.post(base + f"&workflowtask_id={w.wft_par}", body={})[:2] == (200, [w.a])
    # before cmp comes par: b failed, c never ran
    st, body, _ = api.post(base + f"&workflowtask_id={w.wft_cmp}", body={})
    assert st == 200 and sorted(body) == [w.b, w.c]
    # an unset type counts as false: b and c; only a (done) has 3D
    st, body, _ = api.post(base + f"&workflowtask_id={w.wft_cmp}", body={"type_filters": {"3D": False}})
    assert st == 200 and sorted(body) == [w.b, w.c]
    assert api.post(base + f"&workflowtask_id={w.wft_cmp}", body={"type_filters": {"3D": True}})[:2] == (200, [])
    st, body, _ = api.post(base + f"&workflowtask_id={w.wft_cmp}", body={"attribute_filters": {"well": ["C01"]}})
    assert (st, body) == (200, [w.c])
    assert api.post(base + "&workflowtask_id=999", body={})[:2] == (404, {"detail": "WorkflowTask not found"})
    st, body, _ = api.post(base + f"&workflowtask_id={w.wft_cmp}")
    assert st == 422 and body["detail"][0]["loc"] == ["body"]


def test_non_processed_skips_after_converters_and_output_types(api, world, db):
    w = world
    db.execute(f"UPDATE taskv2 SET output_types = '{{\"3D\": true}}' WHERE id = {w.t_par}")
    base = f"/api/v2/project/{w.pid}/dataset/{w.did}/images/non-processed/?workflow_id={w.wid}"
    assert api.post(base + f"&workflowtask_id={w.wft_cmp}", body={})[:2] == (200, [])
    db.execute(f"UPDATE taskv2 SET type = 'converter_non_parallel' WHERE id = {w.t_np}")
    assert api.post(base + f"&workflowtask_id={w.wft_par}", body={})[:2] == (200, [])


def test_verify_unique_types(api, world):
    w = world
    base = f"/api/v2/project/{w.pid}/dataset/{w.did}/images/verify-unique-types/?workflowtask_id={w.wft_np}"
    # 3D: true on a, false on b, unset (false) on c; x: true everywhere
    assert api.post(base)[:2] == (200, ["3D"])
    assert api.post(base, body={"attribute_filters": {"well": ["A01"]}})[:2] == (200, [])
    # c has no 3D type: with b both are false
    assert api.post(base, body={"attribute_filters": {"well": ["B01", "C01"]}})[:2] == (200, [])
    assert api.post(base, body={"attribute_filters": {"well": ["A01", "C01"]}})[:2] == (200, ["3D"])
    # filtering on the status for np: b and c are done
    assert api.post(base, body={"attribute_filters": {STATUS_KEY: ["done"]}})[:2] == (200, [])
    assert api.post(base, body={"attribute_filters": {STATUS_KEY: ["done", "submitted"]}})[:2] == (200, ["3D"])
    st, body, _ = api.post(f"/api/v2/project/{w.pid}/dataset/{w.did}/images/verify-unique-types/")
    assert st == 422 and body["detail"][0]["loc"] == ["query", "workflowtask_id"]
