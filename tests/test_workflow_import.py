"""Workflow import (task resolution by pkg_name/version/name) and import from a template, on both engines."""
import pytest

from test_tasks import new_group, new_user
from test_workflows import WF_KEYS, task


@pytest.fixture
def api(server):
    server.http.token = server.http.login()
    return server.http


@pytest.fixture
def proj(api):
    return api.post("/api/v2/project/", body={"name": "p"})[1]["id"]


def wft(pkg, version, name=None, **kw):
    return dict(kw, task={"pkg_name": pkg, "version": version, "name": name or pkg})


def test_import_exact_versions_and_errors(api, proj, db):
    t1 = task(api, "alpha", meta_non_parallel={"m": 1}, input_types={"3D": True})
    t2 = task(api, "alpha", version="1.10")
    t3 = task(api, "alpha", version="1.9")
    url = f"/api/v2/project/{proj}/workflow/import/"
    body = {"name": " imported ", "description": "d", "task_list": [
        wft("alpha", "1.10", args_non_parallel={"b": 1, "a": 2}),
        wft(" alpha ", "1.0", meta_non_parallel={"x": 2}, type_filters={"3D": "true"}, alias="al"),
    ]}
    status, wf, _ = api.post(url, body=body)
    assert status == 201, wf
    assert list(wf) == WF_KEYS and wf["name"] == "imported" and wf["description"] == "d" and wf["template_id"] is None
    a, b = wf["task_list"]
    assert (a["task_id"], b["task_id"]) == (t2["id"], t1["id"]) and (a["order"], b["order"]) == (0, 1)
    assert a["args_non_parallel"] == {"b": 1, "a": 2} and a["warning"] is None
    assert b["meta_non_parallel"] == {"m": 1, "x": 2} and b["type_filters"] == {"3D": True} and b["alias"] == "al"
    # same name again
    assert api.post(url, body=body)[1] == {"detail": f"Workflow with name='imported' and project_id={proj} already exists."}
    # no version: always fails, listing the versions newest first
    status, err, _ = api.post(url, body={"name": "w2", "task_list": [wft("alpha", "1.0"), wft("alpha", None),
                                                                     wft("nope", "1")]})
    assert status == 422 and err["detail"] == "[HAS_ERROR_DATA]"
    assert err["data"][0] == {"outcome": "success", "pkg_name": "alpha", "version": "1.0", "task_name": "alpha",
                              "task_id": t1["id"]}
    assert err["data"][1]["outcome"] == "fail" and err["data"][1]["version"] is None
    assert err["data"][1]["available_tasks"] == [
        {"version": v, "older_than_target": False, "active": True, "is_core": False} for v in ["1.10", "1.9", "1.0"]]
    assert err["data"][2] == {"outcome": "fail", "pkg_name": "nope", "version": "1", "task_name": "nope",
                              "available_tasks": []}
    # an unknown version lists the others, marking the older ones
    status, err, _ = api.post(url, body={"name": "w2", "task_list": [wft("alpha", "1.9.5")]})
    assert status == 422
    assert [(x["version"], x["older_than_target"]) for x in err["data"][0]["available_tasks"]] == \
        [("1.10", False), ("1.9", True), ("1.0", True)]
    assert db.query("SELECT count(*) FROM workflowv2 WHERE name = 'w2'")[0][0] in (0, "0")
    # incompatible type filters roll everything back
    status, err, _ = api.post(url, body={"name": "w3", "task_list": [wft("alpha", "1.0", type_filters={"3D": False})]})
    assert status == 422 and err["detail"].startswith("Incompatible type filters.\nOriginal error:")
    assert db.query("SELECT count(*) FROM workflowv2 WHERE name = 'w3'")[0][0] in (0, "0")
    # validation
    status, err, _ = api.post(url, body={"name": "w4", "task_list": [{"task": {"pkg_name": "a", "name": "a", "x": 1}}],
                                         "y": 2})
    assert status == 422 and [e["loc"] for e in err["detail"]] == [["body", "task_list", 0, "task", "x"], ["body", "y"]]
    status, err, _ = api.post(url, body={"name": "w4", "task_list": [{}]})
    assert status == 422 and err["detail"][0]["loc"] == ["body", "task_list", 0, "task"]
    # a forbidden argument: upstream's unhandled validation error (500); ours says why
    status, err, _ = api.post(url, body={"name": "w5", "task_list": [wft("alpha", "1.0", args_non_parallel={"zarr_url": 1})]})
    assert status == 422 and "forbidden keys" in err["detail"]
    # empty task list, and a missing project
    assert api.post(url, body={"name": "empty", "task_list": []})[0] == 201
    assert api.post("/api/v2/project/999/workflow/import/", body={"name": "x", "task_list": []})[0] == 404


def test_import_legacy_filters(api, proj):
    task(api, "leg")
    url = f"/api/v2/project/{proj}/workflow/import/"
    status, wf, _ = api.post(url, body={"name": "w", "task_list": [
        wft("leg", "1.0", input_filters={"attributes": {}, "types": {"a": True}})]})
    assert status == 201 and wf["task_list"][0]["type_filters"] == {"a": True}
    status, err, _ = api.post(url, body={"name": "w2", "task_list": [
        wft("leg", "1.0", input_filters={"attributes": {"x": 1}, "types": {}})]})
    assert status == 422 and err["detail"][0]["msg"] == "Value error, Cannot set attribute filters for WorkflowTasks."
    assert err["detail"][0]["loc"] == ["body", "task_list", 0]
    status, err, _ = api.post(url, body={"name": "w2", "task_list": [
        wft("leg", "1.0", input_filters={"attributes": {}}, type_filters={})]})
    assert status == 422 and "Cannot set filters both through the legacy field" in err["detail"][0]["msg"]
    # legacy filters without "attributes": upstream crashes (500); ours is a 422 naming the field
    status, err, _ = api.post(url, body={"name": "w2", "task_list": [wft("leg", "1.0", input_filters={"types": {}})]})
    assert status == 422 and err["detail"][0]["loc"] == ["body", "task_list", 0, "input_filters"]


def test_import_ownership_preference(api, proj, db):
    uid, tok = new_user(api, "imp@example.org")
    # admin's task shared through "All", then the same package private to the user
    shared = task(api, "pkg")
    status, mine, _ = api.post("/api/v2/task/?private=true", body={"name": "pkg", "version": "1.0",
                                                                  "command_non_parallel": "x"}, token=tok)
    assert status == 201, mine
    p2 = api.post("/api/v2/project/", body={"name": "p2"}, token=tok)[1]["id"]
    body = {"name": "w", "task_list": [wft("pkg", "1.0")]}
    status, wf, _ = api.post(f"/api/v2/project/{p2}/workflow/import/", body=body, token=tok)
    assert status == 201 and wf["task_list"][0]["task_id"] == mine["id"]
    status, wf, _ = api.post(f"/api/v2/project/{proj}/workflow/import/", body=body)
    assert status == 201 and wf["task_list"][0]["task_id"] == shared["id"]
    # groups only: the default group's wins over another group's
    gid = new_group(api, "other", uid)
    db.execute(f"UPDATE taskgroupv2 SET user_group_id = {gid} WHERE id = {mine['taskgroupv2_id']}")
    db.execute(f"UPDATE taskgroupv2 SET user_id = 1 WHERE id = {mine['taskgroupv2_id']}")
    status, wf, _ = api.post(f"/api/v2/project/{p2}/workflow/import/", body=dict(body, name="w2"), token=tok)
    assert status == 201 and wf["task_list"][0]["task_id"] == shared["id"]
    # a stranger (not in any group of the task) cannot see it; nor can a guest write
    db.execute(f"DELETE FROM linkusergroup WHERE user_id = {uid}")
    status, err, _ = api.post(f"/api/v2/project/{p2}/workflow/import/", body=dict(body, name="w3"), token=tok)
    assert status == 422 and err["data"][0]["available_tasks"] == []
    _, gtok = new_user(api, "guest-imp@example.org", guest=True)
    assert api.post(f"/api/v2/project/{p2}/workflow/import/", body=dict(body, name="w4"), token=gtok)[0] == 403
