"""Task-group lifecycle routes (deactivate, reactivate, delete; admin variants
and reset): permissions, the order of their checks, groups of origin
"other", leftovers of a stopped server, and a server stopped during a
collection. The full pip round trip is in test_collection.py."""
import signal
import time

import pytest

from conftest import Server
from test_collection import collect_wheel, make_server, wait_activity, wheels  # noqa: F401
from test_tasks import create, new_user, workflow_using


@pytest.fixture
def api(server):
    server.http.token = server.http.login()
    return server.http


def other_group(api, token=None, name="t", version="1"):
    s, t, _ = create(api, name=name, version=version, token=token, query="?private=true")
    assert s == 201, t
    return t["taskgroupv2_id"]


def tuple_403(tgid):
    return {"detail": [f"Current user has no full access to TaskGroupV2 {tgid}."]}


def test_other_origin_shortcuts(api, db):
    tgid = other_group(api)
    s, act, _ = api.post(f"/api/v2/task-group/{tgid}/deactivate/")
    assert s == 202
    assert (act["status"], act["action"], act["taskgroupv2_id"], act["pkg_name"], act["version"]) == \
        ("OK", "deactivate", tgid, "t", "1")
    assert act["log"] == "Task group has task_group.origin='other', set task_group.active to False and exit."
    assert act["timestamp_ended"] is not None
    assert api.get(f"/api/v2/task-group/{tgid}/")[1]["active"] is False
    s, act, _ = api.post(f"/api/v2/task-group/{tgid}/reactivate/")
    assert s == 202 and act["status"] == "OK" and act["action"] == "reactivate"
    assert act["log"] == "Task group has task_group.origin='other', set task_group.active to True and exit."
    assert api.get(f"/api/v2/task-group/{tgid}/")[1]["active"] is True
    # delete goes through the background job, also for "other"
    s, act, _ = api.post(f"/api/v2/task-group/{tgid}/delete/")
    assert s == 202 and (act["status"], act["action"]) == ("pending", "delete")
    act = wait_activity(api, act["id"], timeout=30)
    assert act["status"] == "OK", act["log"]
    assert act["taskgroupv2_id"] is None
    assert "Task group removed from database." in act["log"]
    assert db.query(f"SELECT count(*) FROM taskgroupv2 WHERE id = {tgid}") == [["0"]]
    assert db.query("SELECT count(*) FROM taskv2") == [["0"]]


def test_permissions(api, db):
    bob_id, bob = new_user(api, "bob@example.org")
    _, guest = new_user(api, "guest@example.org", guest=True)
    tgid = other_group(api)
    for action in ("deactivate", "reactivate", "delete"):
        s, body, _ = api.post(f"/api/v2/task-group/{tgid}/{action}/", token=bob)
        assert (s, body) == (403, tuple_403(tgid)), action
        s, body, _ = api.post(f"/api/v2/task-group/{tgid}/{action}/", token=guest)
        assert (s, body) == (403, {"detail": "This feature is not available for guest users."})
        s, body, _ = api.post(f"/admin/v2/task-group/{tgid}/{action}/", token=bob)
        assert s == 403
        s, body, _ = api.post(f"/api/v2/task-group/999/{action}/")
        assert (s, body) == (404, {"detail": "TaskGroupV2 999 not found"})
        s, body, _ = api.post(f"/admin/v2/task-group/999/{action}/")
        assert (s, body) == (404, {"detail": "TaskGroupV2 999 not found"})
    s, body, _ = api.post("/api/v2/task/collect/custom/", token=guest, body={})
    assert (s, body) == (403, {"detail": "This feature is not available for guest users."})
    assert api.post(f"/api/v2/task-group/{tgid}/deactivate/", token="")[0] == 401
    # a superuser acts on bob's group through the admin routes only
    bob_tg = other_group(api, token=bob, name="b")
    s, body, _ = api.post(f"/api/v2/task-group/{bob_tg}/deactivate/")
    assert (s, body) == (403, tuple_403(bob_tg))
    s, act, _ = api.post(f"/admin/v2/task-group/{bob_tg}/deactivate/")
    assert s == 202 and act["user_id"] == bob_id and act["status"] == "OK"
    s, act, _ = api.post(f"/admin/v2/task-group/{bob_tg}/reactivate/")
    assert s == 202 and act["status"] == "OK"
    # bob sees his activities, not the admin's
    acts = api.get("/api/v2/task-group/activity/", token=bob)[1]
    assert [a["action"] for a in acts] == ["deactivate", "reactivate"]
    s, act, _ = api.post(f"/admin/v2/task-group/{bob_tg}/delete/")
    assert s == 202 and act["user_id"] == bob_id
    assert wait_activity(api, act["id"], timeout=30, token=bob)["status"] == "OK"


def test_checks_and_their_order(api, db):
    tgid = other_group(api)
    tid = db.query(f"SELECT id FROM taskv2 WHERE taskgroupv2_id = {tgid}")[0][0]
    # an ongoing activity blocks everything
    db.execute("INSERT INTO taskgroupactivityv2 (user_id, taskgroupv2_id, timestamp_started, pkg_name, version, "
               f"status, action) VALUES (1, {tgid}, '2024-05-06T07:08:09.123456+00:00', 't', '1', 'ongoing', 'collect')")
    ongoing = ("Found ongoing activities for the same task-group:\n1) Action=collect, status=ongoing, "
               "timestamp_started=2024-05-06 07:08:09.123456+00:00.")
    for prefix in ("/api/v2", "/admin/v2"):
        for action in ("deactivate", "delete"):
            s, body, _ = api.post(f"{prefix}/task-group/{tgid}/{action}/")
            assert (s, body) == (422, {"detail": ongoing}), (prefix, action)
    # reactivate checks `active` first
    s, body, _ = api.post(f"/api/v2/task-group/{tgid}/reactivate/")
    assert (s, body) == (422, {"detail": "Cannot reactivate a task group with task_group.active=True."})
    db.execute("UPDATE taskgroupactivityv2 SET status = 'OK'")
    # a workflow task using it blocks deletion; a submitted job blocks the rest
    _, wid = workflow_using(api, db, tid)
    for prefix in ("/api/v2", "/admin/v2"):
        s, body, _ = api.post(f"{prefix}/task-group/{tgid}/delete/")
        assert (s, body) == (422, {"detail": f"TaskV2 {tid} is still in use"})
    db.execute("INSERT INTO jobv2 (workflow_id, user_email, dataset_dump, workflow_dump, project_dump, "
               "first_task_index, last_task_index, start_timestamp, status, working_dir, "
               "fractal_server_version, attribute_filters, type_filters) VALUES "
               f"({wid}, 'a@b.c', '{{}}', '{{}}', '{{}}', 0, 0, '2024-01-01T00:00:00+00:00', 'submitted', '/tmp', "
               "'2.24.2', '{}', '{}')")
    for prefix in ("/api/v2", "/admin/v2"):
        s, body, _ = api.post(f"{prefix}/task-group/{tgid}/deactivate/")
        assert (s, body) == (422, {"detail": "Cannot act on task group because 1 submitted jobs use its tasks."})


def test_reset_gate_and_origin(api, db):
    tgid = other_group(api)
    s, body, _ = api.post(f"/admin/v2/task-group/{tgid}/reset/pip/", body={})
    assert (s, body) == (422, {"detail": "FRACTAL_ENABLE_TASK_GROUP_RESET=false"})
    s, body, _ = api.post(f"/admin/v2/task-group/{tgid}/reset/pixi/", body={})
    assert (s, body) == (422, {"detail": "FRACTAL_ENABLE_TASK_GROUP_RESET=false"})


def test_reset_checks(env, tmp_path, db):
    s = make_server(env, tmp_path)
    try:
        api = s.http
        api.token = api.login()
        tgid = other_group(api)
        status, body, _ = api.post(f"/admin/v2/task-group/{tgid}/reset/pip/", body={})
        assert (status, body) == (422, {"detail": "Cannot re-collect an active task group. Please deactivate it "
                                                  "first."})
        api.post(f"/api/v2/task-group/{tgid}/deactivate/")
        status, body, _ = api.post(f"/admin/v2/task-group/{tgid}/reset/pip/", body={})
        assert (status, body) == (422, {"detail": "Invalid task_group.origin='other' (expected pip)."})
        status, body, _ = api.post(f"/admin/v2/task-group/{tgid}/reset/pixi/", body={})
        assert (status, body) == (422, {"detail": "Invalid task_group.origin='other' (expected pixi)."})
        status, body, _ = api.post(f"/admin/v2/task-group/{tgid}/reset/pip/", body={"extra": 1})
        assert status == 422 and body["detail"][0]["type"] == "extra_forbidden"
        status, body, _ = api.post(f"/admin/v2/task-group/{tgid}/reset/pip/",
                                   body={"pinned_package_versions_pre": {"a": "1"}})
        assert status == 422 and body["detail"][0]["loc"] == ["body", "pinned_package_versions_pre"]
        status, body, _ = api.post("/admin/v2/task-group/999/reset/pip/", body={})
        assert (status, body) == (404, {"detail": "TaskGroupV2 999 not found"})
    finally:
        assert s.stop() == 0, s.output()


def test_invalid_profile_is_a_422(api, db):
    tgid = other_group(api)
    db.execute("UPDATE resource SET jobs_local_dir = 'relative/path'")
    s, body, _ = api.post(f"/api/v2/task-group/{tgid}/deactivate/")
    assert s == 422
    assert body["detail"].startswith("User resource/profile are not valid for resource type 'local'. Original "
                                     "error: 1 validation error for cast_serialize_resource\n")
    assert "jobs_local_dir" in body["detail"]
    s, body, _ = api.post("/api/v2/task/", body={"name": "x", "version": "1", "command_non_parallel": "a b"})
    assert s == 422 and body["detail"].startswith("User resource/profile are not valid")


def test_leftovers_are_failed_at_start(env, tmp_path, db):
    s = make_server(env, tmp_path)
    s.http.token = s.http.login()
    tgid = other_group(s.http)
    assert s.stop() == 0
    folder = tmp_path / "data-tasks" / "1" / "half" / "1"
    (folder / "venv").mkdir(parents=True)
    db.execute("INSERT INTO taskgroupv2 (user_id, resource_id, origin, pkg_name, version, path, venv_path, "
               "pinned_package_versions_pre, pinned_package_versions_post, active, timestamp_created, "
               f"timestamp_last_used) VALUES (1, 1, 'wheel-file', 'half', '1', '{folder}', '{folder}/venv', '{{}}', "
               "'{}', true, '2024-01-01T00:00:00+00:00', '2024-01-01T00:00:00+00:00')")
    half = db.query("SELECT id FROM taskgroupv2 WHERE pkg_name = 'half'")[0][0]
    db.execute("INSERT INTO taskgroupactivityv2 (user_id, taskgroupv2_id, timestamp_started, pkg_name, version, "
               f"status, action, log) VALUES (1, {half}, '2024-01-01T00:00:00+00:00', 'half', '1', 'ongoing', "
               "'collect', 'some progress\n');"
               "INSERT INTO taskgroupactivityv2 (user_id, taskgroupv2_id, timestamp_started, pkg_name, version, "
               f"status, action) VALUES (1, {tgid}, '2024-01-01T00:00:00+00:00', 't', '1', 'pending', 'delete')")
    s2 = Server(s.env, tmp_path)
    try:
        rows = db.query("SELECT action, status, timestamp_ended IS NOT NULL, taskgroupv2_id FROM taskgroupactivityv2 "
                        "ORDER BY id")
        assert [r[:2] for r in rows] == [["collect", "failed"], ["delete", "failed"]]
        assert rows[0][2] in ("1", "t") and rows[0][3] is None
        # logs are multi-line: matched in SQL (psql prints lines as rows)
        assert db.query("SELECT count(*) FROM taskgroupactivityv2 WHERE action = 'collect' AND log LIKE 'some "
                        "progress_Task collect failed: fractal-server stopped while this activity was ongoing; marked "
                        "as failed at the next start (%'") == [["1"]]
        assert db.query("SELECT count(*) FROM taskgroupactivityv2 WHERE action = 'delete' AND log LIKE 'Task delete "
                        "failed: fractal-server stopped while this activity was pending;%'") == [["1"]]
        assert db.query(f"SELECT count(*) FROM taskgroupv2 WHERE id = {half}") == [["0"]]
        assert not folder.exists()
        # the other group is untouched
        assert db.query(f"SELECT count(*) FROM taskgroupv2 WHERE id = {tgid}") == [["1"]]
    finally:
        assert s2.stop() == 0, s2.output()


def test_stop_during_collection_fails_it(env, tmp_path, db, wheels):  # noqa: F811
    s = make_server(env, tmp_path, {"FRACTAL_GRACEFUL_SHUTDOWN_TIME": "0.5"})
    api = s.http
    api.token = api.login()
    status, act, _ = collect_wheel(api, wheels["mock"])
    assert status == 202
    deadline = time.time() + 60
    while time.time() < deadline:
        a = api.get(f"/api/v2/task-group/activity/{act['id']}/")[1]
        if a["status"] == "ongoing":
            break
        time.sleep(0.05)
    assert s.stop(signal.SIGTERM) == 0, s.output()
    row = db.query(f"SELECT status, taskgroupv2_id FROM taskgroupactivityv2 WHERE id = {act['id']}")[0]
    if row[0] == "OK":
        pytest.skip("the collection finished within the grace time")
    assert row == ["failed", None]
    assert db.query(f"SELECT count(*) FROM taskgroupactivityv2 WHERE id = {act['id']} AND log LIKE "
                    "'%fractal-server is shutting down%'") == [["1"]]
    assert db.query("SELECT count(*) FROM taskgroupv2") == [["0"]]
    assert not (tmp_path / "data-tasks" / "1" / "fractal-tasks-mock").joinpath("0.0.1").exists()
