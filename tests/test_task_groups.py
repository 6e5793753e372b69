"""Task groups: the grouped list (PEP 440 order, one group per version),
reading and patching, activities, and the admin task-group routes."""
import pytest

from test_tasks import create, new_group, new_user, other_resource, workflow_using


@pytest.fixture
def api(server):
    server.http.token = server.http.login()
    return server.http


TG_KEYS = ["id", "task_list", "user_email", "user_group_id", "origin", "pkg_name", "version", "python_version",
           "pixi_version", "path", "venv_path", "archive_path", "pip_extras", "pinned_package_versions_pre",
           "pinned_package_versions_post", "in_use", "active", "timestamp_created", "timestamp_last_used"]
ACTIVITY_KEYS = ["id", "user_id", "taskgroupv2_id", "timestamp_started", "timestamp_ended", "pkg_name", "version",
                 "status", "action", "log"]

# creation order, and the order upstream lists them in (packaging's Version,
# newest first; equal versions keep their order; unparsable ones last,
# reverse-alphabetically)
VERSIONS = ["1.0.0", "latest", "1.0.0a1", "2.0.0rc1", "1.0.0.post1", "1!0.1", "1.0+local", "dev-branch", "0.9",
            "1.0", "1.0.0.dev0", "10.0", "1.0+local.2", "1.0+local.10", "V1.1", "1.0.0-1"]
EXPECTED = ["1!0.1", "10.0", "2.0.0rc1", "V1.1", "1.0.0.post1", "1.0.0-1", "1.0+local.10", "1.0+local.2",
            "1.0+local", "1.0.0", "1.0", "1.0.0a1", "1.0.0.dev0", "0.9", "latest", "dev-branch"]


def test_list_sorts_versions_as_pep440(api):
    for v in VERSIONS:
        assert create(api, name="pkg", version=v, query="?private=true")[0] == 201, v
    create(api, name="aaa", version="1")
    create(api, name="zzz", version="1")
    s, body, _ = api.get("/api/v2/task-group/")
    assert s == 200
    assert [p for p, _ in body] == ["aaa", "pkg", "zzz"]
    groups = dict(body)["pkg"]
    assert [g["version"] for g in groups] == EXPECTED
    g = groups[0]
    assert list(g) == TG_KEYS
    assert g["user_email"] == "admin@example.org" and g["in_use"] is False and g["origin"] == "other"
    assert list(g["task_list"][0]) == ["id", "name", "version", "is_core", "category", "modality", "authors", "tags",
                                       "input_types", "docs_info", "docs_link"]


# packaging's spellings: separators, aliases (c/pre/preview = rc, r/rev =
# post), implicit numbers, case, huge numbers, local parts (numeric above
# alphanumeric), trailing zeros, and strings it refuses ("1.0.", "1.0+")
TRICKY = ["1.0a.", "01.02", "1.2", "1.0-r3", "1.0_a_1", "1.0.", "1.0+", "1.0c1", "1.0rc1", "1.0preview2", "1.0.dev",
          "1.0a1.dev1", "1.0a1.post1.dev1", "1.0.post1.dev2", "1.0+A", "1.0+1", "1.0+a.1", "1.0+1.a",
          "99999999999999999999999.0", "1.0BETA", "2!0", "Zeta", "alpha", "1.0.0.0.1", "1.0.0.0.0"]
TRICKY_EXPECTED = ["2!0", "99999999999999999999999.0", "01.02", "1.2", "1.0.0.0.1", "1.0-r3", "1.0.post1.dev2",
                   "1.0+1.a", "1.0+1", "1.0+a.1", "1.0+A", "1.0.0.0.0", "1.0preview2", "1.0c1", "1.0rc1", "1.0BETA",
                   "1.0a1.post1.dev1", "1.0_a_1", "1.0a1.dev1", "1.0a.", "1.0.dev", "alpha", "Zeta", "1.0.", "1.0+"]


def test_list_sorts_tricky_versions(api):
    for v in TRICKY:
        assert create(api, name="tricky", version=v, query="?private=true")[0] == 201, v
    assert [g["version"] for g in dict(api.get("/api/v2/task-group/")[1])["tricky"]] == TRICKY_EXPECTED


def test_list_keeps_one_group_per_version(api, db):
    bob_id, bob = new_user(api, "bob@example.org")
    carol_id, carol = new_user(api, "carol@example.org")
    dave_id, dave = new_user(api, "dave@example.org")
    admin_id = 1
    g1 = new_group(api, "g1", carol_id, admin_id)
    g2 = new_group(api, "g2", dave_id, admin_id)
    # v1: the user's own group wins
    create(api, name="pkg", version="1", token=bob)
    own = create(api, name="pkg", version="1", query="?private=true")[1]
    # v2: the default group's wins over another group's
    create(api, name="pkg", version="2", query=f"?user_group_id={g1}", token=carol)
    dflt = create(api, name="pkg", version="2", token=dave)[1]
    # v3: the group the user joined first wins
    create(api, name="pkg", version="3", query=f"?user_group_id={g1}", token=carol)
    older = create(api, name="pkg", version="3", query=f"?user_group_id={g2}", token=dave)[1]
    db.execute(f"UPDATE linkusergroup SET timestamp_created = '2020-01-01T00:00:00+00:00' "
               f"WHERE group_id = {g2} AND user_id = {admin_id}")
    body = api.get("/api/v2/task-group/")[1]
    groups = dict(body)["pkg"]
    assert [(g["version"], g["id"]) for g in groups] == [
        ("3", older["taskgroupv2_id"]), ("2", dflt["taskgroupv2_id"]), ("1", own["taskgroupv2_id"])]
    assert [g["user_email"] for g in groups] == ["dave@example.org", "dave@example.org", "admin@example.org"]
    # only_owner: the user's own groups
    assert [(p, [g["version"] for g in gs]) for p, gs in api.get("/api/v2/task-group/?only_owner=true")[1]] == \
        [("pkg", ["1"])]
    # only_active
    db.execute(f"UPDATE taskgroupv2 SET active = {'false' if db.engine == 'postgres' else 0} "
               f"WHERE id = {own['taskgroupv2_id']}")
    versions = [g["version"] for g in dict(api.get("/api/v2/task-group/?only_active=true")[1])["pkg"]]
    assert versions == ["3", "2", "1"]   # v1 now comes from bob's group in "All"
    assert dict(api.get("/api/v2/task-group/?only_active=true")[1])["pkg"][2]["user_email"] == "bob@example.org"
    assert api.get("/api/v2/task-group/?only_owner=true&only_active=true")[1] == []
    assert api.get("/api/v2/task-group/?only_active=x")[1]["detail"][0]["loc"] == ["query", "only_active"]
    # another resource sees none of them
    other_resource(db)
    api.request("PATCH", f"/auth/users/{bob_id}/", body={"profile_id": 2})
    assert api.get("/api/v2/task-group/", token=bob)[1] == []


def test_get_and_in_use(api, db):
    t = create(api, name="x")[1]
    tgid = t["taskgroupv2_id"]
    s, g, _ = api.get(f"/api/v2/task-group/{tgid}/")
    assert s == 200 and list(g) == TG_KEYS and g["in_use"] is False
    assert list(g["task_list"][0])[:5] == ["id", "name", "type", "version", "is_core"]
    assert g["timestamp_created"].endswith("+00:00")
    workflow_using(api, db, t["id"])
    assert api.get(f"/api/v2/task-group/{tgid}/")[1]["in_use"] is True
    assert dict(api.get("/api/v2/task-group/")[1])["x"][0]["in_use"] is True
    assert api.get("/api/v2/task-group/999/")[1] == {"detail": "TaskGroupV2 999 not found"}
    uid, bob = new_user(api, "bob@example.org")
    p = create(api, name="p", query="?private=true")[1]
    assert api.get(f"/api/v2/task-group/{p['taskgroupv2_id']}/", token=bob)[1] == \
        {"detail": f"Current user has no read access to TaskGroupV2 {p['taskgroupv2_id']}."}
    assert api.get(f"/api/v2/task-group/{tgid}/", token=bob)[0] == 200


def test_patch(api, db):
    uid, bob = new_user(api, "bob@example.org")
    g = new_group(api, "g", uid, 1)
    other = new_group(api, "other", uid)
    t = create(api, name="x", version="1", query="?private=true")[1]
    tgid = t["taskgroupv2_id"]
    s, body, _ = api.request("PATCH", f"/api/v2/task-group/{tgid}/", body={"user_group_id": g})
    assert s == 200 and body["user_group_id"] == g and list(body) == TG_KEYS
    assert api.request("PATCH", f"/api/v2/task-group/{tgid}/", body={"user_group_id": None})[1]["user_group_id"] is None
    assert api.request("PATCH", f"/api/v2/task-group/{tgid}/", body={"user_group_id": other})[1] == \
        {"detail": f"User 1 does not belong to UserGroup {other}"}
    assert api.request("PATCH", f"/api/v2/task-group/{tgid}/", body={"user_group_id": 999})[1] == \
        {"detail": "UserGroup 999 not found"}
    # the group already has an "x" 1
    create(api, name="x", version="1", query=f"?user_group_id={g}", token=bob)
    assert api.request("PATCH", f"/api/v2/task-group/{tgid}/", body={"user_group_id": g})[1] == \
        {"detail": "UserGroup g already owns a task group with pkg_name='x' and version='1'."}
    assert api.request("PATCH", f"/api/v2/task-group/{tgid}/", body={})[0] == 200
    s, body, _ = api.request("PATCH", f"/api/v2/task-group/{tgid}/", body={"active": False})
    assert s == 422 and body["detail"][0]["type"] == "extra_forbidden"
    s, body, _ = api.request("PATCH", f"/api/v2/task-group/{tgid}/", body={"user_group_id": g}, token=bob)
    assert (s, body) == (403, {"detail": [f"Current user has no full access to TaskGroupV2 {tgid}."]})


def insert_activity(db, user_id, tgid, pkg, status, action, started, ended=None, log=None):
    """Timestamps go in as the server stores them (canonical, microseconds)."""
    started = started.replace("+00:00", ".000000+00:00")
    tg = "NULL" if tgid is None else tgid
    e = "NULL" if ended is None else f"'{ended}'"
    lg = "NULL" if log is None else f"'{log}'"
    db.execute("INSERT INTO taskgroupactivityv2 (user_id, taskgroupv2_id, timestamp_started, timestamp_ended, pkg_name, "
               f"version, status, action, log) VALUES ({user_id}, {tg}, '{started}', {e}, '{pkg}', '1.0', '{status}', "
               f"'{action}', {lg})")
    return int(db.query("SELECT max(id) FROM taskgroupactivityv2")[0][0])


def test_activities(api, db):
    uid, bob = new_user(api, "bob@example.org")
    t = create(api, name="x")[1]
    tgid = t["taskgroupv2_id"]
    a1 = insert_activity(db, 1, tgid, "Fractal-Tasks", "OK", "collect", "2024-01-01T10:00:00+00:00",
                         "2024-01-01T10:05:00.500000+00:00", "done")
    a2 = insert_activity(db, 1, None, "other", "failed", "delete", "2024-02-01T00:00:00+00:00")
    a3 = insert_activity(db, uid, None, "bobs", "pending", "deactivate", "2024-03-01T00:00:00+00:00")
    s, acts, _ = api.get("/api/v2/task-group/activity/")
    assert s == 200 and [a["id"] for a in acts] == [a1, a2]
    assert list(acts[0]) == ACTIVITY_KEYS
    assert acts[0] == {"id": a1, "user_id": 1, "taskgroupv2_id": tgid, "timestamp_started": "2024-01-01T10:00:00+00:00",
                       "timestamp_ended": "2024-01-01T10:05:00.500000+00:00", "pkg_name": "Fractal-Tasks",
                       "version": "1.0", "status": "OK", "action": "collect", "log": "done"}
    assert acts[1]["timestamp_ended"] is None and acts[1]["taskgroupv2_id"] is None

    def ids(q, token=None):
        s, b, _ = api.get(f"/api/v2/task-group/activity/{q}", token=token)
        assert s == 200, b
        return [a["id"] for a in b]
    assert ids("?pkg_name=tasks") == [a1]
    assert ids("?status=failed") == [a2] and ids("?action=collect") == [a1]
    assert ids(f"?taskgroupv2_id={tgid}") == [a1] and ids(f"?task_group_activity_id={a2}") == [a2]
    assert ids("?timestamp_started_min=2024-01-15T00:00:00Z") == [a2]
    assert ids("?timestamp_started_min=2024-01-01T11:00:00%2B02:00") == [a1, a2]
    assert ids("", token=bob) == [a3]
    s, b, _ = api.get("/api/v2/task-group/activity/?status=ok")
    assert s == 422 and b["detail"] == [{"type": "enum", "loc": ["query", "status"],
                                         "msg": "Input should be 'pending', 'ongoing', 'failed' or 'OK'",
                                         "input": "ok", "ctx": {"expected": "'pending', 'ongoing', 'failed' or 'OK'"}}]
    assert api.get("/api/v2/task-group/activity/?action=x")[1]["detail"][0]["loc"] == ["query", "action"]
    assert api.get("/api/v2/task-group/activity/?timestamp_started_min=2024-01-01T00:00:00")[1]["detail"][0]["type"] \
        == "timezone_aware"
    assert api.get(f"/api/v2/task-group/activity/{a1}/")[1]["id"] == a1
    assert api.get(f"/api/v2/task-group/activity/{a3}/")[1] == \
        {"detail": [f"You are not the owner of TaskGroupActivityV2 {a3}"]}
    assert api.get("/api/v2/task-group/activity/999/")[1] == {"detail": "TaskGroupActivityV2 999 not found"}

    # admin: everybody's, newest first, paginated
    s, p, _ = api.get("/admin/v2/task-group/activity/")
    assert s == 200 and [a["id"] for a in p["items"]] == [a3, a2, a1] and p["total_count"] == 3

    def admin_ids(q):
        s, b, _ = api.get(f"/admin/v2/task-group/activity/{q}")
        assert s == 200, b
        return [a["id"] for a in b["items"]]
    assert admin_ids(f"?user_id={uid}") == [a3] and admin_ids("?user_id=0") == [a3, a2, a1]
    assert admin_ids("?pkg_name=O") == [a3, a2]
    assert admin_ids("?pkg_name=bob") == [a3] and admin_ids("?status=OK&action=collect") == [a1]
    assert admin_ids(f"?taskgroupv2_id={tgid}") == [a1] and admin_ids(f"?task_group_activity_id={a2}") == [a2]
    assert admin_ids("?timestamp_started_min=2024-02-01T00:00:00Z") == [a3, a2]
    s, p, _ = api.get("/admin/v2/task-group/activity/?page=2&page_size=2")
    assert (p["current_page"], p["page_size"], p["total_count"], [a["id"] for a in p["items"]]) == (2, 2, 3, [a1])
    assert api.get("/admin/v2/task-group/activity/", token=bob)[0] == 403


def test_admin_task_groups(api, db):
    uid, bob = new_user(api, "bob@example.org")
    g = new_group(api, "g", uid)
    a = create(api, name="alpha", version="1", query="?private=true")[1]
    b = create(api, name="beta", version="2", query=f"?user_group_id={g}", token=bob)[1]
    workflow_using(api, db, b["id"])
    s, p, _ = api.get("/admin/v2/task-group/")
    assert s == 200 and p["total_count"] == 2 and [x["id"] for x in p["items"]] == [a["taskgroupv2_id"],
                                                                                   b["taskgroupv2_id"]]
    item = p["items"][1]
    assert list(item) == TG_KEYS + ["user_id", "resource_id"]
    assert item["user_id"] == uid and item["resource_id"] == 1 and item["in_use"] is True
    assert list(item["task_list"][0]) == list(api.get(f"/api/v2/task/{a['id']}/")[1])

    def ids(q):
        s, b2, _ = api.get(f"/admin/v2/task-group/{q}")
        assert s == 200, b2
        return [x["id"] for x in b2["items"]]
    A, B = a["taskgroupv2_id"], b["taskgroupv2_id"]
    assert ids(f"?user_id={uid}") == [B] and ids(f"?user_group_id={g}") == [B]
    assert ids("?private=true") == [A] and ids("?private=false") == [B]
    assert ids("?in_use=true") == [B] and ids("?in_use=false") == [A]
    assert ids("?pkg_name=ALP") == [A] and ids("?origin=other&active=true&resource_id=1") == [A, B]
    assert ids("?origin=pypi") == [] and ids(f"?task_group_id={B}") == [B]
    assert ids("?timestamp_last_used_min=2000-01-01T00:00:00Z&timestamp_last_used_max=2100-01-01T00:00:00Z") == [A, B]
    assert ids("?timestamp_last_used_max=2000-01-01T00:00:00Z") == []
    assert api.get(f"/admin/v2/task-group/?user_group_id={g}&private=true")[1] == \
        {"detail": f"Cannot get task groups with both user_group_id={g} and private=True."}
    assert api.get("/admin/v2/task-group/?origin=git")[1]["detail"][0]["ctx"] == \
        {"expected": "'pypi', 'wheel-file', 'pixi' or 'other'"}
    s, p, _ = api.get("/admin/v2/task-group/?page_size=1")
    assert (p["page_size"], p["total_count"], len(p["items"])) == (1, 2, 1)
    # one group
    s, one, _ = api.get(f"/admin/v2/task-group/{B}/")
    assert s == 200 and one == item
    assert api.get("/admin/v2/task-group/999/")[1] == {"detail": "TaskGroup 999 not found"}
    # PATCH: the superuser must belong to the new group (QUIRK: not the owner)
    assert api.request("PATCH", f"/admin/v2/task-group/{B}/", body={"user_group_id": g})[1] == \
        {"detail": f"User 1 does not belong to UserGroup {g}"}
    s, one, _ = api.request("PATCH", f"/admin/v2/task-group/{B}/", body={"user_group_id": 1})
    assert s == 200 and one["user_group_id"] == 1 and list(one) == TG_KEYS + ["user_id", "resource_id"]
    assert api.request("PATCH", f"/admin/v2/task-group/{B}/", body={"user_group_id": None})[1]["user_group_id"] is None
    assert api.request("PATCH", "/admin/v2/task-group/999/", body={})[1] == {"detail": "TaskGroupV2 999 not found"}
    # make core / not core
    # twice: idempotent (headers not compared: their Date may differ by a second)
    assert api.post(f"/admin/v2/task-group/{A}/make-core/")[:2] == (200, None)
    assert api.post(f"/admin/v2/task-group/{A}/make-core/")[:2] == (200, None)
    assert api.get(f"/api/v2/task/{a['id']}/")[1]["is_core"] is True
    twin = create(api, name="alpha", version="1", query="?private=true", token=bob)[1]
    assert api.post(f"/admin/v2/task-group/{twin['taskgroupv2_id']}/make-core/")[1] == \
        {"detail": f"There already exists a core task with pkg_name='alpha', version='1' and name='alpha' "
                   f"(task ID: {a['id']})."}
    assert api.post(f"/admin/v2/task-group/{A}/make-not-core/")[0] == 200
    assert api.get(f"/api/v2/task/{a['id']}/")[1]["is_core"] is False
    assert api.post("/admin/v2/task-group/999/make-core/")[1] == {"detail": "TaskGroupV2 999 not found"}
    assert api.post("/admin/v2/task-group/999/make-not-core/")[1] == {"detail": "TaskGroupV2 999 not found"}
    assert api.get("/admin/v2/task-group/", token=bob)[0] == 403
