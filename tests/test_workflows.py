"""Workflows and workflow tasks, on both engines."""
import pytest


@pytest.fixture
def api(server):
    server.http.token = server.http.login()
    return server.http


def task(api, name, query="", **fields):
    body = {"name": name, "version": "1.0"}
    if not any(k.startswith("command") for k in fields):
        body["command_non_parallel"] = "python np.py"
    body.update(fields)
    body = {k: v for k, v in body.items() if v is not None}
    status, t, _ = api.post("/api/v2/task/" + query, body=body)
    assert status == 201, t
    return t


@pytest.fixture
def proj(api):
    return api.post("/api/v2/project/", body={"name": "p"})[1]["id"]


WF_KEYS = ["id", "name", "project_id", "is_starred", "task_list", "project", "timestamp_created", "description",
           "template_id"]
WFT_KEYS = ["id", "workflow_id", "order", "meta_non_parallel", "meta_parallel", "args_non_parallel", "args_parallel",
            "type_filters", "task_type", "task_id", "task", "alias", "description"]


def test_workflow_crud(api, proj):
    status, wf, _ = api.post(f"/api/v2/project/{proj}/workflow/", body={"name": " wf ", "description": "d"})
    assert status == 201, wf
    assert list(wf) == WF_KEYS and wf["name"] == "wf" and wf["task_list"] == [] and wf["template_id"] is None
    assert api.post(f"/api/v2/project/{proj}/workflow/", body={"name": "wf"})[1] == \
        {"detail": f"Workflow with name='wf' and project_id={proj} already exists."}
    w2 = api.post(f"/api/v2/project/{proj}/workflow/", body={"name": "another"})[1]
    assert [w["name"] for w in api.get(f"/api/v2/project/{proj}/workflow/")[1]] == ["another", "wf"]
    api.post(f"/api/v2/project/{proj}/workflow/{wf['id']}/star/")
    assert [w["name"] for w in api.get(f"/api/v2/project/{proj}/workflow/")[1]] == ["wf", "another"]
    status, got, _ = api.get(f"/api/v2/project/{proj}/workflow/{wf['id']}/")
    assert status == 200 and got["is_starred"] is True
    status, p, _ = api.request("PATCH", f"/api/v2/project/{proj}/workflow/{wf['id']}/", body={"name": "renamed", "description": None})
    assert status == 200 and p["name"] == "renamed" and p["description"] is None
    assert api.request("PATCH", f"/api/v2/project/{proj}/workflow/{wf['id']}/", body={"name": "another"})[0] == 422
    status, body, _ = api.request("PATCH", f"/api/v2/project/{proj}/workflow/{wf['id']}/", body={"x": 1})
    assert status == 422 and body["detail"][0]["type"] == "extra_forbidden"
    assert api.get(f"/api/v2/project/{proj}/workflow/999/")[1] == {"detail": "Workflow not found"}
    assert api.request("DELETE", f"/api/v2/project/{proj}/workflow/{w2['id']}/")[0] == 204
    assert api.get(f"/api/v2/project/{proj}/workflow/{w2['id']}/")[0] == 404


def test_workflow_tasks_insert_order_patch_delete(api, proj):
    t1 = task(api, "one", meta_non_parallel={"b": 1, "a": 2}, input_types={"3D": True})
    t2 = task(api, "two", command_parallel="python p.py", command_non_parallel=None)
    t3 = task(api, "three")
    wf = api.post(f"/api/v2/project/{proj}/workflow/", body={"name": "wf"})[1]
    base = f"/api/v2/project/{proj}/workflow/{wf['id']}"
    status, created, _ = api.post(f"{base}/wftask/", body=[
        {"task_id": t1["id"], "meta_non_parallel": {"c": 3}, "args_non_parallel": {"z": 1, "a": {"y": 1, "b": 2}}},
        {"task_id": t2["id"], "args_parallel": {"x": 1}}])
    assert status == 201, created
    assert [list(c) for c in created] == [WFT_KEYS, WFT_KEYS]
    a, b = created
    assert (a["order"], b["order"]) == (0, 1)
    assert a["meta_non_parallel"] == {"b": 1, "a": 2, "c": 3} and list(a["meta_non_parallel"]) == ["b", "a", "c"]
    assert a["meta_parallel"] is None and a["task_type"] == "non_parallel" and a["task"]["id"] == t1["id"]
    assert a["args_non_parallel"] == {"z": 1, "a": {"y": 1, "b": 2}}
    # insert at the front
    status, c, _ = api.post(f"{base}/wftask/?order=0", body=[{"task_id": t3["id"], "alias": "first"}])
    assert status == 201 and c[0]["order"] == 0 and c[0]["alias"] == "first"
    wfr = api.get(f"{base}/")[1]
    assert [w["task_id"] for w in wfr["task_list"]] == [t3["id"], t1["id"], t2["id"]]
    assert [w["order"] for w in wfr["task_list"]] == [0, 1, 2]
    assert all(w["warning"] is None for w in wfr["task_list"])
    # reorder
    ids = [w["id"] for w in wfr["task_list"]]
    status, wfr, _ = api.request("PATCH", f"{base}/", body={"reordered_workflowtask_ids": [ids[2], ids[0], ids[1]]})
    assert status == 200 and [w["id"] for w in wfr["task_list"]] == [ids[2], ids[0], ids[1]]
    status, body, _ = api.request("PATCH", f"{base}/", body={"reordered_workflowtask_ids": [ids[0], ids[1]]})
    assert status == 422 and "must be a permutation of" in body["detail"]
    # patch a workflow task
    status, p, _ = api.request("PATCH", f"{base}/wftask/{a['id']}/", body={"args_non_parallel": {}, "description": "desc",
                                                                           "type_filters": {"mip": "true"}})
    assert status == 200 and p["args_non_parallel"] is None and p["description"] == "desc"
    assert p["type_filters"] == {"mip": True}
    status, body, _ = api.request("PATCH", f"{base}/wftask/{a['id']}/", body={"args_parallel": {"x": 1}})
    assert status == 422 and "non parallel" in body["detail"]
    status, body, _ = api.request("PATCH", f"{base}/wftask/{b['id']}/", body={"meta_non_parallel": {"x": 1}})
    assert status == 422 and "is parallel" in body["detail"]
    status, body, _ = api.request("PATCH", f"{base}/wftask/{a['id']}/", body={"type_filters": {"3D": False}})
    assert status == 422 and body["detail"].startswith("Incompatible type filters.")
    assert api.get(f"{base}/wftask/{a['id']}/")[1]["description"] == "desc"
    # type filters flow
    flow = api.get(f"{base}/type-filters-flow/")[1]
    assert [f["workflowtask_id"] for f in flow] == [ids[2], ids[0], ids[1]]
    by_id = {f["workflowtask_id"]: f for f in flow}
    assert by_id[a["id"]]["input_type_filters"] == {"3D": True, "mip": True}
    assert flow[2]["current_type_filters"] == {}
    # delete and renumber
    assert api.request("DELETE", f"{base}/wftask/{a['id']}/")[0] == 204
    wfr = api.get(f"{base}/")[1]
    assert [w["order"] for w in wfr["task_list"]] == [0, 1]
    assert api.get(f"{base}/wftask/{a['id']}/")[1] == {"detail": "WorkflowTask not found"}
    # export
    status, ex, _ = api.get(f"{base}/export/")
    assert status == 200 and ex["name"] == "wf"
    assert [t["task"] for t in ex["task_list"]] == [{"pkg_name": "two", "version": "1.0", "name": "two"},
                                                     {"pkg_name": "three", "version": "1.0", "name": "three"}]


def test_workflow_task_errors(api, proj, db):
    t1 = task(api, "one", input_types={"3D": True})
    tp = task(api, "par", command_parallel="python p.py", command_non_parallel=None)
    wf = api.post(f"/api/v2/project/{proj}/workflow/", body={"name": "wf"})[1]
    base = f"/api/v2/project/{proj}/workflow/{wf['id']}/wftask/"
    status, body, _ = api.post(base, body=[{"task_id": t1["id"], "args_non_parallel": {"zarr_url": "x"}}])
    assert status == 422 and "forbidden keys" in body["detail"][0]["msg"]
    assert body["detail"][0]["loc"] == ["body", 0, "args_non_parallel"]
    status, body, _ = api.post(base, body=[{"task_id": t1["id"], "type_filters": {"3D": False}}])
    assert status == 422 and "Incompatible type filters" in body["detail"]
    status, body, _ = api.post(base, body=[{"task_id": tp["id"], "meta_non_parallel": {"a": 1}}])
    assert status == 422 and "is `parallel`" in body["detail"]
    status, body, _ = api.post(base, body={"task_id": t1["id"]})
    assert status == 422 and body["detail"][0]["type"] == "list_type"
    status, body, _ = api.post(base + "?order=-1", body=[{"task_id": t1["id"]}])
    assert status == 422 and body["detail"][0]["loc"] == ["query", "order"]
    assert api.post(base, body=[{"task_id": 999}])[0] == 404
    db.execute(f"UPDATE taskgroupv2 SET active = false WHERE id = {t1['taskgroupv2_id']}")
    status, body, _ = api.post(base, body=[{"task_id": t1["id"]}])
    assert (status, body) == (422, {"detail": f"Error: task {t1['id']} (one) is not active."})
    # a task that became inactive shows a warning
    db.execute(f"UPDATE taskgroupv2 SET active = true WHERE id = {t1['taskgroupv2_id']}")
    api.post(base, body=[{"task_id": t1["id"]}])
    db.execute(f"UPDATE taskgroupv2 SET active = false WHERE id = {t1['taskgroupv2_id']}")
    wfr = api.get(f"/api/v2/project/{proj}/workflow/{wf['id']}/")[1]
    assert wfr["task_list"][0]["warning"] == "Task is not active."
    assert api.get(f"/api/v2/project/{proj}/workflow/{wf['id']}/type-filters-flow/")[0] == 200
    empty = api.post(f"/api/v2/project/{proj}/workflow/", body={"name": "empty"})[1]
    assert api.get(f"/api/v2/project/{proj}/workflow/{empty['id']}/type-filters-flow/")[1] == {"detail": "Workflow has no tasks."}


def test_running_job_blocks_edits(api, proj, db):
    t1 = task(api, "one")
    wf = api.post(f"/api/v2/project/{proj}/workflow/", body={"name": "wf"})[1]
    base = f"/api/v2/project/{proj}/workflow/{wf['id']}"
    w1 = api.post(f"{base}/wftask/", body=[{"task_id": t1["id"]}])[1][0]
    db.execute("INSERT INTO jobv2 (project_id, workflow_id, user_email, dataset_dump, workflow_dump, project_dump, "
               f"first_task_index, last_task_index, start_timestamp, status) VALUES ({proj}, {wf['id']}, 'a@b.c', "
               "'{}', '{}', '{}', 0, 0, '2024-01-01T00:00:00+00:00', 'submitted')")
    assert api.request("DELETE", f"{base}/wftask/{w1['id']}/")[1] == \
        {"detail": "Cannot delete a WorkflowTask while a Job is running for this Workflow."}
    assert api.post(f"{base}/wftask/?order=0", body=[{"task_id": t1["id"]}])[1] == \
        {"detail": "Cannot perform WorkflowTask insertion while a Job is running for this Workflow."}
    assert api.post(f"{base}/wftask/", body=[{"task_id": t1["id"]}])[0] == 201  # appending is fine
    assert api.request("PATCH", f"{base}/", body={"reordered_workflowtask_ids": [w1["id"]]})[0] == 422
    status, body, _ = api.request("DELETE", f"{base}/")
    assert status == 422 and "linked to active job(s)" in body["detail"]


def test_guest_reads_but_cannot_write(api, proj):
    u = api.post("/auth/register/", body={"email": "g@example.org", "password": "abcd", "project_dirs": ["/d"]})[1]
    api.request("PATCH", f"/auth/users/{u['id']}/", body={"is_verified": True, "profile_id": 1})
    tok = api.login("g@example.org", "abcd")
    t1 = task(api, "one", query="?private=true")
    wf = api.post(f"/api/v2/project/{proj}/workflow/", body={"name": "wf"})[1]
    api.post(f"/api/v2/project/{proj}/workflow/{wf['id']}/wftask/", body=[{"task_id": t1["id"]}])
    api.post(f"/api/v2/project/{proj}/guest/?email=g@example.org", body={"permissions": "r"})
    api.post(f"/api/v2/project/{proj}/access/accept/", token=tok)
    status, got, _ = api.get(f"/api/v2/project/{proj}/workflow/{wf['id']}/", token=tok)
    assert status == 200
    # the guest cannot read the owner's private task group
    assert got["task_list"][0]["warning"] == "Current user has no access to this task."
    assert api.post(f"/api/v2/project/{proj}/workflow/", body={"name": "x"}, token=tok)[0] == 403
