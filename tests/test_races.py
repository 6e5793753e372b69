"""Check-then-insert races (issue 19, finding 4): N identical requests at once.

Each case fires N requests that all pass the same uniqueness check at the same
moment (threads released by a barrier), a few rounds in a row, and asserts that
exactly one succeeds, that every other one gets upstream's answer for that check
(never a 500), and that the database holds exactly one row.
"""
import threading

import pytest

from conftest import Http

N = 12
ROUNDS = 4


def burst(api, make_request, n=N):
    """Runs make_request(i) in n threads started together; returns [(status, body)]."""
    barrier = threading.Barrier(n)
    out = [None] * n

    def one(i):
        http = Http(api.base)
        http.token = api.token
        method, path, body = make_request(i)
        barrier.wait()
        status, b, _ = http.request(method, path, body=body)
        out[i] = (status, b)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(o is not None for o in out), out
    return out


def one_winner(results, ok, loser_status, loser_detail):
    statuses = sorted(s for s, _ in results)
    assert 500 not in statuses, results
    winners = [b for s, b in results if s == ok]
    assert len(winners) == 1, results
    losers = [(s, b) for s, b in results if s != ok]
    assert all(s == loser_status and b == {"detail": loser_detail} for s, b in losers), losers
    return winners[0]


def count(db, sql):
    return int(db.query(sql)[0][0])


@pytest.fixture
def api(server):
    server.http.token = server.http.login()
    return server.http


def test_project_create(api, db):
    for r in range(ROUNDS):
        name = f"proj-{r}"
        res = burst(api, lambda i: ("POST", "/api/v2/project/", {"name": name}))
        one_winner(res, 201, 422, f"Project name ({name}) already in use")
        assert count(db, f"SELECT count(*) FROM projectv2 WHERE name = '{name}'") == 1


def test_project_rename(api, db):
    for r in range(ROUNDS):
        ids = [api.post("/api/v2/project/", body={"name": f"r{r}-{i}"})[1]["id"] for i in range(N)]
        name = f"renamed-{r}"
        res = burst(api, lambda i: ("PATCH", f"/api/v2/project/{ids[i]}/", {"name": name}))
        one_winner(res, 200, 422, f"Project name ({name}) already in use")
        assert count(db, f"SELECT count(*) FROM projectv2 WHERE name = '{name}'") == 1


def test_workflow_create(api, db):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    for r in range(ROUNDS):
        name = f"wf-{r}"
        res = burst(api, lambda i: ("POST", f"/api/v2/project/{pid}/workflow/", {"name": name}))
        one_winner(res, 201, 422, f"Workflow with name='{name}' and project_id={pid} already exists.")
        assert count(db, f"SELECT count(*) FROM workflowv2 WHERE name = '{name}'") == 1


def test_workflow_rename(api, db):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    for r in range(ROUNDS):
        ids = [api.post(f"/api/v2/project/{pid}/workflow/", body={"name": f"w{r}-{i}"})[1]["id"] for i in range(N)]
        name = f"renamed-{r}"
        res = burst(api, lambda i: ("PATCH", f"/api/v2/project/{pid}/workflow/{ids[i]}/", {"name": name}))
        one_winner(res, 200, 422, f"Workflow with name='{name}' and project_id={pid} already exists.")
        assert count(db, f"SELECT count(*) FROM workflowv2 WHERE name = '{name}'") == 1


def test_workflow_import(api, db):
    pid = api.post("/api/v2/project/", body={"name": "p"})[1]["id"]
    for r in range(ROUNDS):
        name = f"imp-{r}"
        res = burst(api, lambda i: ("POST", f"/api/v2/project/{pid}/workflow/import/",
                                    {"name": name, "task_list": []}))
        one_winner(res, 201, 422, f"Workflow with name='{name}' and project_id={pid} already exists.")
        assert count(db, f"SELECT count(*) FROM workflowv2 WHERE name = '{name}'") == 1


def test_task_create(api, db):
    for r in range(ROUNDS):
        name = f"task-{r}"
        res = burst(api, lambda i: ("POST", "/api/v2/task/",
                                    {"name": name, "version": "1.0", "command_non_parallel": "echo"}))
        one_winner(res, 201, 422, f"User 'admin@example.org' already owns a task group with name='{name}' "
                                  "and version='1.0'.")
        assert count(db, f"SELECT count(*) FROM taskgroupv2 WHERE pkg_name = '{name}'") == 1
        assert count(db, f"SELECT count(*) FROM taskv2 WHERE name = '{name}'") == 1


def test_template_import(api, db):
    data = {"name": "wf", "task_list": [{"task": {"pkg_name": "pkg", "name": "t"}}]}
    for r in range(ROUNDS):
        name = f"tpl-{r}"
        res = burst(api, lambda i: ("POST", "/api/v2/workflow-template/import/",
                                    {"name": name, "version": 1, "data": data}))
        one_winner(res, 201, 422, f"The current user already own a workflow template with name='{name}' "
                                  "and version=1.")
        assert count(db, f"SELECT count(*) FROM workflowtemplate WHERE name = '{name}'") == 1


def test_group_create(api, db):
    for r in range(ROUNDS):
        name = f"group-{r}"
        res = burst(api, lambda i: ("POST", "/auth/group/", {"name": name}))
        one_winner(res, 201, 422, "A group with the same name already exists")
        assert count(db, f"SELECT count(*) FROM usergroup WHERE name = '{name}'") == 1


def test_user_register(api, db, tmp_path):
    for r in range(ROUNDS):
        email = f"user{r}@example.org"
        # the same address, spelt in different cases: the check is case-insensitive, the unique index is not
        res = burst(api, lambda i: ("POST", "/auth/register/",
                                    {"email": email.upper() if i % 2 else email, "password": "abcd",
                                     "project_dirs": [str(tmp_path)]}))
        one_winner(res, 201, 400, "REGISTER_USER_ALREADY_EXISTS")
        assert count(db, f"SELECT count(*) FROM user_oauth WHERE lower(email) = '{email}'") == 1


def test_guest_invite(api, db, tmp_path):
    api.post("/auth/register/", body={"email": "guest@example.org", "password": "abcd",
                                      "project_dirs": [str(tmp_path)]})
    for r in range(ROUNDS):
        pid = api.post("/api/v2/project/", body={"name": f"shared-{r}"})[1]["id"]
        res = burst(api, lambda i: ("POST", f"/api/v2/project/{pid}/guest/?email=guest@example.org",
                                    {"permissions": "r"}))
        statuses = sorted(s for s, _ in res)
        assert statuses == [201] + [422] * (N - 1), res
        assert all(b == {"detail": "User is already associated to project."} for s, b in res if s == 422), res
        assert count(db, f"SELECT count(*) FROM linkuserprojectv2 WHERE project_id = {pid}") == 2


def test_task_group_deactivate_reactivate(api, db):
    # origin "other": the flag flips at once, with an activity born OK; two requests must not both flip it
    for r in range(ROUNDS):
        name = f"lc-{r}"
        assert api.post("/api/v2/task/", body={"name": name, "version": "1", "command_non_parallel": "echo"})[0] == 201
        tgid = db.query(f"SELECT id FROM taskgroupv2 WHERE pkg_name = '{name}'")[0][0]
        res = burst(api, lambda i: ("POST", f"/api/v2/task-group/{tgid}/deactivate/", None))
        one_winner(res, 202, 422, "Cannot deactivate a task group with task_group.active=False.")
        res = burst(api, lambda i: ("POST", f"/api/v2/task-group/{tgid}/reactivate/", None))
        one_winner(res, 202, 422, "Cannot reactivate a task group with task_group.active=True.")
        assert db.query(f"SELECT action FROM taskgroupactivityv2 WHERE taskgroupv2_id = {tgid} ORDER BY id") == \
            [["deactivate"], ["reactivate"]]
