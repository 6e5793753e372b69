"""Version updates of workflow tasks (candidates, replace-task) and the admin
accounting routes, on both engines."""
import json

import pytest

SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}}


@pytest.fixture
def api(server):
    server.http.token = server.http.login()
    return server.http


def new_user(api, email):
    u = api.post("/auth/register/", body={"email": email, "password": "abcd", "project_dirs": ["/data/u"]})[1]
    api.request("PATCH", f"/auth/users/{u['id']}/", body={"is_verified": True, "profile_id": 1})
    return u["id"], api.login(email, "abcd")


def task(api, name, version, token=None, **kw):
    body = {"name": name, "version": version}
    if not any(k.startswith("command") for k in kw):
        body["command_non_parallel"] = "python np.py"
    body.update(kw)
    body = {k: v for k, v in body.items() if v is not None}
    st, t, _ = api.post("/api/v2/task/", body=body, token=token)
    assert st == 201, t
    return t


def test_candidates(api, db):
    cur = task(api, "mytask", "1.0.0", args_schema_non_parallel=SCHEMA)
    newer = [task(api, "mytask", v, args_schema_non_parallel=SCHEMA) for v in ("2.0", "1.10", "1.2rc1")]
    task(api, "mytask", "0.9", args_schema_non_parallel=SCHEMA)                 # older
    task(api, "mytask", "not-a-version", args_schema_non_parallel=SCHEMA)       # unparsable
    task(api, "mytask", "3.0")                                                  # no args schema
    task(api, "mytask", "4.0", command_parallel="python p.py", command_non_parallel=None,
         args_schema_parallel=SCHEMA)                                           # non_parallel -> parallel: invalid
    conv = task(api, "mytask", "5.0", type="converter_non_parallel", args_schema_non_parallel=SCHEMA)
    inactive = task(api, "mytask", "6.0", args_schema_non_parallel=SCHEMA)
    db.execute(f"UPDATE taskgroupv2 SET active = FALSE WHERE id = {inactive['taskgroupv2_id']}")
    _, bob = new_user(api, "bob@example.org")
    noschema = task(api, "other", "1.0")
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    wid = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "wf"})[1]["id"]
    st, _, _ = api.post(f"/api/v2/project/{pid}/workflow/{wid}/wftask/",
                        body=[{"task_id": cur["id"]}, {"task_id": noschema["id"]}])
    assert st == 201
    st, body, _ = api.get(f"/api/v2/project/{pid}/workflow/{wid}/version-update-candidates/")
    assert st == 200, body
    by_version = {t["version"]: t["id"] for t in newer}
    assert body == [[{"task_id": by_version["1.2rc1"], "version": "1.2rc1"},
                     {"task_id": by_version["1.10"], "version": "1.10"},
                     {"task_id": by_version["2.0"], "version": "2.0"},
                     {"task_id": conv["id"], "version": "5.0"}],
                    []]
    assert api.get(f"/api/v2/project/{pid}/workflow/999/version-update-candidates/")[:2] == \
        (404, {"detail": "Workflow not found"})
    assert api.get(f"/api/v2/project/{pid}/workflow/{wid}/version-update-candidates/", token=bob)[0] == 403


def test_candidates_of_shared_groups_and_unparsable_current(api, db):
    uid, bob = new_user(api, "bob@example.org")
    gid = api.post("/auth/group/", body={"name": "team"})[1]["id"]
    mine = task(api, "t", "1.0", args_schema_non_parallel=SCHEMA)
    theirs = task(api, "t", "1.5", token=bob, args_schema_non_parallel=SCHEMA)
    private = task(api, "t", "1.6", token=bob, args_schema_non_parallel=SCHEMA)
    db.execute(f"UPDATE taskgroupv2 SET user_group_id = NULL WHERE id = {private['taskgroupv2_id']};"
               f"UPDATE taskgroupv2 SET user_group_id = {gid} WHERE id = {theirs['taskgroupv2_id']};"
               f"INSERT INTO linkusergroup (group_id, user_id, timestamp_created) VALUES "
               f"({gid}, 1, '2025-01-01T00:00:00+00:00')")
    weird = task(api, "u", "latest", args_schema_non_parallel=SCHEMA)
    task(api, "u", "2.0", args_schema_non_parallel=SCHEMA)
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    wid = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "wf"})[1]["id"]
    api.post(f"/api/v2/project/{pid}/workflow/{wid}/wftask/", body=[{"task_id": mine["id"]}, {"task_id": weird["id"]}])
    assert api.get(f"/api/v2/project/{pid}/workflow/{wid}/version-update-candidates/")[1] == \
        [[{"task_id": theirs["id"], "version": "1.5"}], []]


def test_replace_task_carries_over_meta_and_args(api, db):
    old = task(api, "t", "1.0", args_schema_non_parallel=SCHEMA,
               meta_non_parallel={"cpus": 1, "mem": 1000, "gone": True})
    new = task(api, "t", "2.0", args_schema_non_parallel=SCHEMA,
               meta_non_parallel={"mem": 2000, "cpus": 1, "extra": "x"}, input_types={"3D": True})
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    wid = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "wf"})[1]["id"]
    st, wfts, _ = api.post(f"/api/v2/project/{pid}/workflow/{wid}/wftask/",
                           body=[{"task_id": old["id"], "args_non_parallel": {"x": 1}}])
    wft = wfts[0]
    # the user changed cpus, removed "gone"
    db.execute("UPDATE workflowtaskv2 SET meta_non_parallel = " +
               "'" + json.dumps({"cpus": 4, "mem": 1000}) + "' WHERE id = " + str(wft["id"]))
    base = f"/api/v2/project/{pid}/workflow/{wid}/wftask/replace-task/"
    st, body, _ = api.post(base + f"?workflow_task_id={wft['id']}&task_id={new['id']}",
                           body={"args_non_parallel": {"y": 2, "b": 1}})
    assert st == 201, body
    assert body["id"] == wft["id"] and body["task_id"] == new["id"] and body["task"]["version"] == "2.0"
    assert body["meta_non_parallel"] == {"mem": 2000, "cpus": 4, "extra": "x"}
    assert list(body["meta_non_parallel"]) == ["mem", "cpus", "extra"]
    assert body["args_non_parallel"] == {"y": 2, "b": 1}
    assert body["meta_parallel"] == {} and body["task_type"] == "non_parallel"
    got = api.get(f"/api/v2/project/{pid}/workflow/{wid}/wftask/{wft['id']}/")[1]
    assert got["task_id"] == new["id"] and got["args_non_parallel"] == {"y": 2, "b": 1}
    # args not given: kept
    st, body, _ = api.post(base + f"?workflow_task_id={wft['id']}&task_id={old['id']}", body={})
    assert st == 201 and body["args_non_parallel"] == {"y": 2, "b": 1} and body["task_id"] == old["id"]


def test_replace_task_refusals(api, db):
    np_ = task(api, "t", "1.0")
    par = task(api, "t", "2.0", command_parallel="python p.py", command_non_parallel=None)
    conv = task(api, "t", "3.0", type="converter_non_parallel")
    typed = task(api, "t", "4.0", input_types={"3D": False})
    inactive = task(api, "t", "5.0")
    db.execute(f"UPDATE taskgroupv2 SET active = FALSE WHERE id = {inactive['taskgroupv2_id']}")
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    wid = api.post(f"/api/v2/project/{pid}/workflow/", body={"name": "wf"})[1]["id"]
    wft = api.post(f"/api/v2/project/{pid}/workflow/{wid}/wftask/",
                   body=[{"task_id": np_["id"], "type_filters": {"3D": True}}])[1][0]
    base = f"/api/v2/project/{pid}/workflow/{wid}/wftask/replace-task/?workflow_task_id={wft['id']}"

    def replace(tid, body=None):
        return api.post(base + f"&task_id={tid}", body={} if body is None else body)[:2]

    assert replace(par["id"]) == (422, {"detail": "Cannot change task type from non_parallel to parallel."})
    assert replace(inactive["id"]) == (422, {"detail": f"Error: task {inactive['id']} (t) is not active."})
    assert replace(999) == (404, {"detail": "TaskV2 999 not found"})
    assert replace(np_["id"], {"args_parallel": {"a": 1}}) == \
        (422, {"detail": "Cannot set 'args_parallel' for non-parallel task."})
    st, body = replace(typed["id"])
    assert st == 422 and body["detail"].startswith("Incompatible type filters.")
    st, body = replace(np_["id"], {"args_non_parallel": [1]})
    assert st == 422 and body["detail"][0]["type"] == "dict_type" and body["detail"][0]["loc"] == \
        ["body", "args_non_parallel"]
    st, body, _ = api.post(f"/api/v2/project/{pid}/workflow/{wid}/wftask/replace-task/", body={})
    assert st == 422 and [e["loc"] for e in body["detail"]] == [["query", "workflow_task_id"], ["query", "task_id"]]
    assert api.post(f"/api/v2/project/{pid}/workflow/{wid}/wftask/replace-task/?workflow_task_id=999&task_id=1",
                    body={})[:2] == (404, {"detail": "WorkflowTask not found"})
    # a guest with read-write permission may replace, with read only not
    _, bob = new_user(api, "bob@example.org")
    assert api.post(f"/api/v2/project/{pid}/guest/?email=bob@example.org", body={"permissions": "r"})[0] == 201
    assert api.post(f"/api/v2/project/{pid}/access/accept/", token=bob)[0] == 200
    assert api.post(base + f"&task_id={np_['id']}", body={}, token=bob)[0] == 403
    api.request("PATCH", f"/api/v2/project/{pid}/guest/?email=bob@example.org", body={"permissions": "rw"})
    st, body, _ = api.post(base + f"&task_id={np_['id']}", body={}, token=bob)
    assert (st, body["task_id"]) == (201, np_["id"])
    # args_parallel is only refused for non_parallel tasks, not for converters
    st, body = replace(conv["id"], {"args_parallel": {"a": 1}})
    assert st == 201 and body["task_type"] == "converter_non_parallel" and body["args_parallel"] == {"a": 1}
    assert replace(np_["id"]) == (422, {"detail": "Cannot change task type from converter_non_parallel to non_parallel."})


def ts(day):
    return f"'2025-01-{day:02d}T12:00:00.000000+00:00'"


def int_array(db, items):
    if db.engine == "sqlite":
        return "'" + json.dumps(items) + "'"
    return "'{" + ",".join(str(i) for i in items) + "}'::integer[]"


def test_accounting(api, db):
    uid, bob = new_user(api, "bob@example.org")
    db.execute("INSERT INTO accountingrecord (user_id, \"timestamp\", num_tasks, num_new_images) VALUES "
               f"(1, {ts(1)}, 1, 10), ({uid}, {ts(2)}, 2, 20), (1, {ts(3)}, 3, 30)")
    st, page, _ = api.post("/admin/v2/accounting/", body={})
    assert st == 200, page
    assert (page["current_page"], page["page_size"], page["total_count"]) == (1, 3, 3)
    assert page["items"][0] == {"id": 1, "user_id": 1, "timestamp": "2025-01-01T12:00:00+00:00", "num_tasks": 1,
                                "num_new_images": 10}
    assert [r["id"] for r in api.post("/admin/v2/accounting/", body={"user_id": 1})[1]["items"]] == [1, 3]
    st, page, _ = api.post("/admin/v2/accounting/?page=2&page_size=2", body={})
    assert (page["page_size"], page["total_count"], [r["id"] for r in page["items"]]) == (2, 3, [3])
    body = {"timestamp_min": "2025-01-02T12:00:00Z", "timestamp_max": "2025-01-03T11:00:00+00:00"}
    assert [r["id"] for r in api.post("/admin/v2/accounting/", body=body)[1]["items"]] == [2]
    # fractal_job_id is accepted and ignored here, as upstream
    assert api.post("/admin/v2/accounting/", body={"fractal_job_id": 5})[1]["total_count"] == 3
    st, err, _ = api.post("/admin/v2/accounting/", body={"timestamp_min": "2025-01-02T12:00:00", "user_id": "x"})
    assert st == 422 and [(e["type"], e["loc"]) for e in err["detail"]] == [
        ("int_parsing", ["body", "user_id"]), ("timezone_aware", ["body", "timestamp_min"])]
    assert api.post("/admin/v2/accounting/")[0] == 422
    assert api.post("/admin/v2/accounting/", body={}, token=bob)[:2] == (403, {"detail": "Forbidden"})
    assert api.post("/admin/v2/accounting/slurm/", body={}, token=bob)[0] == 403


def test_accounting_slurm(api, db):
    uid, _ = new_user(api, "bob@example.org")
    db.execute("INSERT INTO accountingrecordslurm (user_id, \"timestamp\", slurm_job_ids, fractal_job_id, resource_id) "
               f"VALUES (1, {ts(1)}, {int_array(db, [11, 12])}, NULL, 1), "
               f"({uid}, {ts(2)}, {int_array(db, [21])}, NULL, NULL), "
               f"(1, {ts(3)}, {int_array(db, [31, 32, 33])}, NULL, 1)")
    assert api.post("/admin/v2/accounting/slurm/", body={})[:2] == (200, [11, 12, 21, 31, 32, 33])
    assert api.post("/admin/v2/accounting/slurm/", body={"user_id": 1})[1] == [11, 12, 31, 32, 33]
    assert api.post("/admin/v2/accounting/slurm/", body={"resource_id": 1,
                                                          "timestamp_min": "2025-01-02T00:00:00Z"})[1] == [31, 32, 33]
    assert api.post("/admin/v2/accounting/slurm/", body={"fractal_job_id": 1})[1] == []
    st, err, _ = api.post("/admin/v2/accounting/slurm/", body={"resource_id": "a"})
    assert st == 422 and err["detail"][0]["loc"] == ["body", "resource_id"]
