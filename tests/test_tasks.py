"""Tasks: creation (task groups of origin "other"), listing, reading, patching,
access rules, and the admin task routes (query, make core)."""
import pytest


@pytest.fixture
def api(server):
    server.http.token = server.http.login()
    return server.http


def new_user(api, email, guest=False, profile_id=1):
    u = api.post("/auth/register/", body={"email": email, "password": "abcd", "project_dirs": ["/data/u"]})[1]
    api.request("PATCH", f"/auth/users/{u['id']}/", body={"is_verified": True, "profile_id": profile_id, "is_guest": guest})
    return u["id"], api.login(email, "abcd")


def new_group(api, name, *user_ids):
    gid = api.post("/auth/group/", body={"name": name})[1]["id"]
    for uid in user_ids:
        assert api.post(f"/auth/group/{gid}/add-user/{uid}/")[0] == 200
    return gid


def other_resource(db):
    """A second resource with a profile (id 2 both)."""
    # a copy of the default one: valid, as validate_user_profile requires
    db.execute("INSERT INTO resource (type, name, timestamp_created, jobs_local_dir, jobs_runner_config, "
               "jobs_poll_interval, tasks_local_dir, tasks_python_config, tasks_pixi_config, prevent_new_submissions) "
               "SELECT type, 'other', '2024-01-01T00:00:00+00:00', '/tmp/j', jobs_runner_config, 5, '/tmp/t', "
               "tasks_python_config, tasks_pixi_config, prevent_new_submissions FROM resource WHERE id = 1;"
               "INSERT INTO profile (resource_id, resource_type, name) VALUES (2, 'local', 'other');")


def create(api, name="t", version="1.0", query="", token=None, **fields):
    body = {"name": name, "version": version, "command_non_parallel": "python run.py"}
    body.update(fields)
    body = {k: v for k, v in body.items() if v is not None}
    return api.post(f"/api/v2/task/{query}", body=body, token=token)


TASK_READ_KEYS = ["id", "name", "type", "version", "is_core", "command_non_parallel", "command_parallel",
                  "meta_parallel", "meta_non_parallel", "args_schema_non_parallel", "args_schema_parallel",
                  "args_schema_version", "docs_info", "docs_link", "input_types", "output_types", "taskgroupv2_id",
                  "category", "modality", "authors", "tags"]
SLIM_KEYS = ["id", "name", "version", "is_core", "category", "modality", "authors", "tags", "input_types",
             "docs_info", "docs_link"]


def test_create_get_list(api):
    schema = {"title": "Args", "type": "object", "properties": {"zeta": {"type": "integer", "default": 0.5},
                                                                "alpha": {"type": "string"}},
              "required": ["zeta"], "additionalProperties": False}
    status, t, _ = create(api, name=" my-task ", version=" 0.1.0 ", command_non_parallel=" python a.py ",
                          command_parallel="python b.py", args_schema_parallel=schema,
                          meta_parallel={"zz": 1, "aa": {"y": 1, "b": 2}}, args_schema_version="pydantic_v2",
                          docs_info="# Docs", docs_link="https://example.org/docs",
                          input_types={"long_type": True, "b": False, " a ": True}, output_types={"x": True},
                          category="Conversion", modality="HCS", authors="Someone", tags=["b", "a"])
    assert status == 201, t
    assert list(t) == TASK_READ_KEYS
    assert t["name"] == "my-task" and t["version"] == "0.1.0" and t["type"] == "compound"
    assert t["command_non_parallel"] == "python a.py" and t["is_core"] is False
    # json columns keep the request's key order, recursively
    assert t["args_schema_parallel"] == schema
    assert list(t["args_schema_parallel"]) == ["title", "type", "properties", "required", "additionalProperties"]
    assert list(t["args_schema_parallel"]["properties"]) == ["zeta", "alpha"]
    assert list(t["meta_parallel"]) == ["zz", "aa"] and list(t["meta_parallel"]["aa"]) == ["y", "b"]
    assert t["meta_non_parallel"] == {} and t["args_schema_non_parallel"] is None
    # jsonb columns: keys stripped, in PostgreSQL's jsonb order on both engines
    assert list(t["input_types"]) == ["a", "b", "long_type"]
    assert t["input_types"] == {"a": True, "b": False, "long_type": True}
    assert t["tags"] == ["b", "a"]
    tid = t["id"]
    assert api.get(f"/api/v2/task/{tid}/")[1] == t
    tasks = api.get("/api/v2/task/")[1]
    assert len(tasks) == 1 and list(tasks[0]) == SLIM_KEYS
    assert tasks[0] == {k: t[k] for k in SLIM_KEYS}
    # the task group: origin other, pkg_name = task name
    tg = api.get(f"/api/v2/task-group/{t['taskgroupv2_id']}/")[1]
    assert tg["origin"] == "other" and tg["pkg_name"] == "my-task" and tg["version"] == "0.1.0"
    assert tg["user_group_id"] == 1 and tg["active"] is True and tg["path"] is None
    assert tg["pinned_package_versions_pre"] == {} and tg["task_list"] == [t]


def test_type_inference_and_cross_checks(api):
    assert create(api, name="np")[1]["type"] == "non_parallel"
    t = create(api, name="p", command_non_parallel=None, command_parallel="python p.py")[1]
    assert t["type"] == "parallel" and t["command_non_parallel"] is None
    assert create(api, name="c", command_parallel="x")[1]["type"] == "compound"
    assert create(api, name="cnp", type="converter_non_parallel")[1]["type"] == "converter_non_parallel"
    # explicit null type is inferred too
    assert create(api, name="n", type=None)[1]["type"] == "non_parallel"
    s, b, _ = create(api, name="x", command_non_parallel=None, command_parallel="y", meta_non_parallel={"a": 1})
    assert (s, b) == (422, {"detail": "Cannot set `TaskV2.args_schema_non_parallel` or "
                                      "`TaskV2.args_schema_non_parallel` if TaskV2 is parallel"})
    s, b, _ = create(api, name="x", args_schema_parallel={})
    assert (s, b) == (422, {"detail": "Cannot set `TaskV2.args_schema_parallel` or `TaskV2.args_schema_parallel` "
                                      "if TaskV2 is non_parallel"})
    # null schemas and metas pass the cross-check
    assert create(api, name="x", args_schema_parallel=None, meta_parallel=None)[0] == 201
    # QUIRK kept: compound/converter types are not checked against the commands present
    assert create(api, name="y", type="compound")[1]["command_parallel"] is None


def test_create_validation(api):
    s, b, _ = api.post("/api/v2/task/", body={"name": "x", "version": "1"})
    assert s == 422 and b["detail"] == [{
        "type": "value_error", "loc": ["body"],
        "msg": "Value error, Task must have at least one valid command (parallel and/or non_parallel)",
        "input": {"name": "x", "version": "1"}, "ctx": {"error": {}}}]
    s, b, _ = create(api, command_non_parallel="python a.py; rm -rf /")
    assert s == 422 and b["detail"][0]["loc"] == ["body"]
    assert b["detail"][0]["msg"] == (
        "Value error, Command must not contain any of this characters: '{'`', '#', '$', '&', '*', '(', ')', '\\\\', "
        "'|', '[', ']', '{', '}', ';', '<', '>', '?', '!'}'\nProvided command: 'python a.py; rm -rf /'.")
    s, b, _ = api.post("/api/v2/task/", body={"version": " ", "command_parallel": None, "docs_link": "ftp://x",
                                              "input_types": {"a": "maybe"}, "tags": ["a", " a"], "type": "serial",
                                              "meta_parallel": [], "extra": 1})
    assert s == 422
    assert [(e["type"], e["loc"]) for e in b["detail"]] == [
        ("missing", ["body", "name"]),
        ("string_type", ["body", "command_parallel"]),
        ("dict_type", ["body", "meta_parallel"]),
        ("string_too_short", ["body", "version"]),
        ("url_scheme", ["body", "docs_link"]),
        ("bool_parsing", ["body", "input_types", "a"]),
        ("value_error", ["body", "tags"]),
        ("enum", ["body", "type"]),
        ("extra_forbidden", ["body", "extra"]),
    ]
    assert b["detail"][7]["msg"] == ("Input should be 'compound', 'converter_compound', 'non_parallel', "
                                     "'converter_non_parallel' or 'parallel'")
    assert b["detail"][6]["msg"] == "Value error, List has repetitions"
    for link, err in (("foo", "relative URL without a base"), ("http://", "empty host"),
                      ("http://a:xx/", "invalid port number"), ("http://a b", "invalid international domain name")):
        s, b, _ = create(api, docs_link=link)
        assert s == 422 and b["detail"] == [{"type": "url_parsing", "loc": ["body", "docs_link"],
                                             "msg": f"Input should be a valid URL, {err}", "input": link,
                                             "ctx": {"error": err}}], link
    s, b, _ = create(api, input_types={" a": True, "a ": False})
    assert b["detail"][0]["msg"] == \
        "Value error, Dictionary contains multiple identical keys: '{' a': True, 'a ': False}'."
    s, b, _ = create(api, meta_non_parallel={" ": 1, "b": 2})
    assert b["detail"][0]["msg"] == "Value error, Empty string in ['', 'b']."
    # stripped keys move to the end, as upstream pops and re-inserts them
    t = create(api, meta_non_parallel={" z ": 1, "b": 2, "a": 3})[1]
    assert list(t["meta_non_parallel"]) == ["b", "a", "z"]
    assert api.post("/api/v2/task/", raw=b"{", headers={"Content-Type": "application/json"})[1]["detail"][0]["type"] == \
        "json_invalid"
    assert api.post("/api/v2/task/")[1]["detail"] == [{"type": "missing", "loc": ["body"], "msg": "Field required",
                                                       "input": None}]


def test_ownership_query_parameters(api, server, db):
    uid, bob = new_user(api, "bob@example.org")
    assert create(api, name="a", query="?private=true")[1]["taskgroupv2_id"]
    tg = api.get("/api/v2/task-group/", token=None)[1]
    assert [(p, [g["user_group_id"] for g in gs]) for p, gs in tg] == [("a", [None])]
    s, b, _ = create(api, name="b", query="?private=true&user_group_id=1")
    assert (s, b) == (422, {"detail": "Cannot set both user_group_id=1 and private=True"})
    assert create(api, name="b", query="?user_group_id=99") [1] == {"detail": "UserGroup 99 not found"}
    gid = new_group(api, "g", uid)
    admin_id = api.get("/auth/current-user/")[1]["id"]
    assert create(api, name="b", query=f"?user_group_id={gid}")[1] == \
        {"detail": f"User {admin_id} does not belong to UserGroup {gid}"}
    t = create(api, name="b", query=f"?user_group_id={gid}", token=bob)[1]
    assert api.get(f"/api/v2/task-group/{t['taskgroupv2_id']}/", token=bob)[1]["user_group_id"] == gid
    assert create(api, name="c", query="?private=maybe")[1]["detail"][0]["loc"] == ["query", "private"]
    assert create(api, name="c", query="?user_group_id=x")[1]["detail"][0]["loc"] == ["query", "user_group_id"]


def test_non_duplication(api, db):
    uid, bob = new_user(api, "bob@example.org")
    t = create(api, name="dup", version="1.0", query="?private=true")[1]
    s, b, _ = create(api, name="dup", version="1.0", query="?private=true")
    assert (s, b) == (422, {"detail": "User 'admin@example.org' already owns a task group with name='dup' and "
                                      "version='1.0'."})
    # another user, same default group: the group constraint
    create(api, name="shared", version="2")
    s, b, _ = create(api, name="shared", version="2", token=bob)
    assert (s, b) == (422, {"detail": "UserGroup All already owns a task group with pkg_name='shared' and "
                                      "version='2'."})
    assert create(api, name="shared", version="2", query="?private=true", token=bob)[0] == 201
    # the note naming an existing collection activity
    tgid = t["taskgroupv2_id"]
    db.execute("INSERT INTO taskgroupactivityv2 (user_id, taskgroupv2_id, timestamp_started, pkg_name, version, "
               f"status, action) VALUES (1, {tgid}, '2024-01-01T00:00:00+00:00', 'dup', '1.0', 'OK', 'collect')")
    aid = db.query("SELECT id FROM taskgroupactivityv2")[0][0]
    s, b, _ = create(api, name="dup", version="1.0", query="?private=true")
    assert b["detail"] == ("User 'admin@example.org' already owns a task group with name='dup' and version='1.0'.\n"
                           f"Note: There exists another task-group collection (activity ID={aid}) for this task group "
                           f"(ID={tgid}), with status 'OK'.")
    # a version with a quote is printed as Python's repr
    create(api, name="q", version="it's", query="?private=true")
    assert create(api, name="q", version="it's", query="?private=true")[1]["detail"].endswith(
        "name='q' and version=\"it's\".")


def test_access_rules(api, db):
    uid, bob = new_user(api, "bob@example.org")
    _, carol = new_user(api, "carol@example.org")
    _, guest = new_user(api, "guest@example.org", guest=True)
    gid = new_group(api, "g", uid)
    mine = create(api, name="private", query="?private=true")[1]
    shared = create(api, name="shared")[1]           # default group "All": everybody
    group = create(api, name="grp", query=f"?user_group_id={gid}", token=bob)[1]
    assert [t["name"] for t in api.get("/api/v2/task/", token=bob)[1]] == ["shared", "grp"]
    assert [t["name"] for t in api.get("/api/v2/task/", token=carol)[1]] == ["shared"]
    assert [t["name"] for t in api.get("/api/v2/task/")[1]] == ["private", "shared"]
    assert api.get(f"/api/v2/task/{mine['id']}/", token=bob)[1] == \
        {"detail": f"Current user has no read access to TaskGroupV2 {mine['taskgroupv2_id']}."}
    assert api.get(f"/api/v2/task/{group['id']}/", token=carol)[0] == 403
    assert api.get(f"/api/v2/task/{shared['id']}/", token=guest)[0] == 200
    assert api.get("/api/v2/task/9999/")[1] == {"detail": "TaskV2 9999 not found"}
    # full access: only the owner
    s, b, _ = api.request("PATCH", f"/api/v2/task/{shared['id']}/", body={"category": "x"}, token=bob)
    assert (s, b) == (403, {"detail": [f"Current user has no full access to TaskGroupV2 {shared['taskgroupv2_id']}."]})
    assert api.request("PATCH", f"/api/v2/task/{shared['id']}/", body={"category": "x"}, token=guest)[1] == \
        {"detail": "This feature is not available for guest users."}
    # a member whose profile is on another resource loses access
    other_resource(db)
    api.request("PATCH", f"/auth/users/{uid}/", body={"profile_id": 2})
    assert api.get(f"/api/v2/task/{shared['id']}/", token=bob)[1] == \
        {"detail": f"Current user has no read access to TaskGroupV2 {shared['taskgroupv2_id']}."}
    # the owner, moved to another resource, keeps the group but not the task
    assert api.get(f"/api/v2/task/{group['id']}/", token=bob)[1] == \
        {"detail": f"User {uid} has no access to TaskGroup's Resource."}
    assert api.get(f"/api/v2/task-group/{group['taskgroupv2_id']}/", token=bob)[0] == 200
    assert api.get("/api/v2/task/", token=bob)[1] == []
    # tasks created there live on the other resource
    t = create(api, name="far", token=bob)[1]
    assert [x["name"] for x in api.get("/api/v2/task/", token=bob)[1]] == ["far"]
    assert db.query(f"SELECT resource_id FROM taskgroupv2 WHERE id = {t['taskgroupv2_id']}") == [["2"]]
    assert api.get(f"/api/v2/task/{t['id']}/")[0] == 403


def test_patch(api, db):
    t = create(api, name="c", command_parallel="python p.py")[1]
    s, b, _ = api.request("PATCH", f"/api/v2/task/{t['id']}/",
                          body={"command_parallel": " python q.py ", "input_types": {"zz": True, "a": False},
                                "category": None, "tags": ["x"], "authors": "Me"})
    assert s == 200, b
    assert b["command_parallel"] == "python q.py" and list(b["input_types"]) == ["a", "zz"]
    assert b["category"] is None and b["tags"] == ["x"] and b["authors"] == "Me"
    assert b["command_non_parallel"] == "python run.py"
    # no command validation on PATCH (as upstream)
    assert api.request("PATCH", f"/api/v2/task/{t['id']}/", body={"command_non_parallel": "a;b"})[0] == 200
    np = create(api, name="np")[1]
    assert api.request("PATCH", f"/api/v2/task/{np['id']}/", body={"command_parallel": "x"})[1] == \
        {"detail": "Cannot set an unset `command_parallel`."}
    p = create(api, name="p", command_non_parallel=None, command_parallel="y")[1]
    assert api.request("PATCH", f"/api/v2/task/{p['id']}/", body={"command_non_parallel": "x"})[1] == \
        {"detail": "Cannot set an unset `command_non_parallel`."}
    # groups that are not "other" keep commands and types
    db.execute(f"UPDATE taskgroupv2 SET origin = 'pypi' WHERE id = {t['taskgroupv2_id']}")
    for field, value in (("command_parallel", "x"), ("input_types", {})):
        assert api.request("PATCH", f"/api/v2/task/{t['id']}/", body={field: value})[1] == \
            {"detail": f"Cannot update '{field}' when task_group.origin='pypi'."}
    assert api.request("PATCH", f"/api/v2/task/{t['id']}/", body={"modality": "m"})[1]["modality"] == "m"
    s, b, _ = api.request("PATCH", f"/api/v2/task/{t['id']}/", body={"name": "x", "input_types": None})
    assert s == 422 and [e["type"] for e in b["detail"]] == ["dict_type", "extra_forbidden"]
    assert api.request("PATCH", "/api/v2/task/999/", body={})[1] == {"detail": "TaskV2 999 not found"}


def test_delete_is_not_allowed(api):
    t = create(api)[1]
    assert api.request("DELETE", f"/api/v2/task/{t['id']}/")[:2] == \
        (405, {"detail": "Cannot delete single tasks, please operate directly on task groups."})
    assert api.get(f"/api/v2/task/{t['id']}/")[0] == 200


def workflow_using(api, db, task_id, name="wf"):
    pid = api.post("/api/v2/project/", body={"name": f"proj-{name}"})[1]["id"]
    db.execute(f"INSERT INTO workflowv2 (name, project_id, timestamp_created) VALUES ('{name}', {pid}, "
               "'2024-01-01T00:00:00+00:00')")
    wid = int(db.query(f"SELECT id FROM workflowv2 WHERE name = '{name}'")[0][0])
    db.execute(f"INSERT INTO workflowtaskv2 (workflow_id, \"order\", task_type, task_id) VALUES ({wid}, 0, "
               f"'non_parallel', {task_id})")
    return pid, wid


def test_admin_task_query(api, db):
    uid, bob = new_user(api, "bob@example.org")
    gid = new_group(api, "team", uid)
    a = create(api, name="Alpha", version="1", category="Conversion", modality="HCS", authors="Ann Smith",
               query="?private=true")[1]
    b = create(api, name="beta", version="2", type="parallel", command_non_parallel=None, command_parallel="x",
               query=f"?user_group_id={gid}", token=bob)[1]
    pid, wid = workflow_using(api, db, b["id"])
    s, page, _ = api.get("/admin/v2/task/")
    assert s == 200 and page["current_page"] == 1 and page["page_size"] == 2 and page["total_count"] == 2
    assert list(page) == ["current_page", "page_size", "total_count", "items"]
    first, second = page["items"]
    assert first == {"task": {"id": a["id"], "name": "Alpha", "type": "non_parallel", "is_core": False,
                              "taskgroupv2_id": a["taskgroupv2_id"], "command_non_parallel": "python run.py",
                              "command_parallel": None, "version": "1", "pkg_name": "Alpha", "active": True,
                              "owner": "admin@example.org", "user_group": None},
                     "relationships": []}
    assert second["task"]["user_group"] == "team" and second["task"]["owner"] == "bob@example.org"
    assert second["relationships"] == [{"workflow_id": wid, "workflow_name": "wf", "project_id": pid,
                                        "project_name": "proj-wf",
                                        "project_users": [{"id": 1, "email": "admin@example.org"}]}]

    def ids(q):
        s, p, _ = api.get(f"/admin/v2/task/{q}")
        assert s == 200, p
        return [i["task"]["id"] for i in p["items"]]
    assert ids("?name=ALP") == [a["id"]]
    assert ids("?category=conversion&modality=hcs") == [a["id"]]
    assert ids("?author=smith") == [a["id"]]
    assert ids("?task_type=parallel") == [b["id"]]
    assert ids(f"?owner_id={uid}") == [b["id"]]
    assert ids("?private=true") == [a["id"]] and ids("?private=false") == [b["id"]]
    assert ids("?resource_id=1&active=true") == [a["id"], b["id"]] and ids("?active=false") == []
    assert ids("?core=false&version=2") == [b["id"]] and ids(f"?id={a['id']}") == [a["id"]]
    assert ids("?task_group=et") == [b["id"]]
    s, p, _ = api.get("/admin/v2/task/?page=2&page_size=1")
    assert (p["current_page"], p["page_size"], p["total_count"], [i["task"]["id"] for i in p["items"]]) == \
        (2, 1, 2, [b["id"]])
    assert api.get("/admin/v2/task/?page=2")[0] == 422
    s, b2, _ = api.get("/admin/v2/task/?task_type=x")
    assert s == 422 and b2["detail"][0]["type"] == "enum" and b2["detail"][0]["loc"] == ["query", "task_type"]
    assert api.get("/admin/v2/task/", token=bob)[0] == 403


def test_admin_make_core(api, db):
    uid, bob = new_user(api, "bob@example.org")
    a = create(api, name="a", version="1", query="?private=true")[1]
    b = create(api, name="b", version="1", query="?private=true")[1]
    # bob's "a" 1: same name, package and version on the same resource
    a2 = create(api, name="a", version="1", query="?private=true", token=bob)[1]
    assert api.post("/admin/v2/task/make-core/", body=[a["id"], 999, 998])[1] == \
        {"detail": "Not all tasks were found (Missing IDs: [998, 999])."}
    s, body, _ = api.post("/admin/v2/task/make-core/", body=[a["id"], b["id"]])
    assert (s, body) == (200, None)
    assert api.get(f"/api/v2/task/{a['id']}/")[1]["is_core"] is True
    assert api.post("/admin/v2/task/make-core/", body=[a2["id"]])[1] == \
        {"detail": f"There already exists a core task with pkg_name='a', version='1' and name='a' "
                   f"(task ID: {a['id']})."}
    assert api.post("/admin/v2/task/make-not-core/", body=[a["id"]])[0] == 200
    assert api.post("/admin/v2/task/make-core/", body=[a["id"], a2["id"]])[1] == \
        {"detail": "This request would generate conflicting core tasks (with the same task name and task-group "
                   "properties). Hint: include fewer tasks in the request body and retry."}
    assert api.post("/admin/v2/task/make-core/", body=[a2["id"]])[0] == 200
    assert [t["is_core"] for t in (api.get(f"/api/v2/task/{i}/")[1] for i in (a["id"], b["id"]))] == [False, True]
    # body validation: a non-empty list of unique non-negative ints
    for body, err in (([], "too_short"), ([1, 1], "value_error"), ([-1], "greater_than_equal"),
                      ({"a": 1}, "list_type"), (["x"], "int_parsing")):
        s, r, _ = api.post("/admin/v2/task/make-core/", body=body)
        assert s == 422 and r["detail"][0]["type"] == err, (body, r)
    assert api.post("/admin/v2/task/make-not-core/", body=[12345])[1] == \
        {"detail": "Not all tasks were found (Missing IDs: [12345])."}
    assert api.post("/admin/v2/task/make-core/", body=[b["id"]], token=bob)[0] == 403


def test_json_columns_keep_text_like_upstream(api, db):
    """meta/args schemas are json (not jsonb): stored as written, floats as Python's json.dumps prints them."""
    schema = {"b": {"default": 0.1, "max": 1e16, "min": 1e-07, "n": 3, "x": None, "t": True}, "a": "é"}
    t = create(api, name="f", args_schema_non_parallel=schema)[1]
    assert t["args_schema_non_parallel"] == schema and list(t["args_schema_non_parallel"]) == ["b", "a"]
    text = db.query(f"SELECT args_schema_non_parallel FROM taskv2 WHERE id = {t['id']}")[0][0]
    assert text == '{"b":{"default":0.1,"max":1e+16,"min":1e-07,"n":3,"x":null,"t":true},"a":"é"}'
