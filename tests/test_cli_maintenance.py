"""The operator commands: recent, sync-core-tasks, update-db-data."""
import json
import subprocess

from conftest import FRACTALCTL, base_env, init_db, run

NOW = "2026-01-01T00:00:00+00:00"


def seed_jobs_and_activities(db):
    """A user, two jobs (one running, one ended long ago) and two activities."""
    db.execute(
        "INSERT INTO jobv2 (user_email, dataset_dump, workflow_dump, project_dump, first_task_index, "
        "last_task_index, start_timestamp, status, attribute_filters, type_filters, fractal_server_version) VALUES "
        "('run@x.org', '{}', '{}', '{}', 0, 0, '2026-01-01T10:00:00+00:00', 'submitted', '{}', '{}', '2.24.2'),"
        "('old@x.org', '{}', '{}', '{}', 0, 0, '2020-01-01T10:00:00+00:00', 'done', '{}', '{}', '2.24.2');"
        "UPDATE jobv2 SET end_timestamp = '2020-01-01T11:00:00+00:00' WHERE user_email = 'old@x.org';"
        "INSERT INTO taskgroupactivityv2 (user_id, timestamp_started, pkg_name, version, status, action, "
        "fractal_server_version) VALUES (1, '2026-01-01T09:00:00+00:00', 'pkg-a', '1.0', 'ongoing', 'collect', "
        "'2.24.2'), (1, '2020-01-01T09:00:00+00:00', 'pkg-b', '2.0', 'OK', 'delete', '2.24.2');"
        "UPDATE taskgroupactivityv2 SET timestamp_ended = '2020-01-01T09:30:00+00:00' WHERE pkg_name = 'pkg-b';")


def test_recent_lists_what_runs_and_what_ended_lately(db, env, tmp_path):
    e = init_db(env, tmp_path)
    r = run(["recent"], env=e, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "## Summary\nNo fractal-server job or task-group activity during the last 20 minutes.\n\n"
    seed_jobs_and_activities(db)
    r = run(["recent", "--minutes", "5"], env=e, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (
        "## Summary\nThere are ongoing fractal-server jobs and/or task-group activities.\n\n"
        "## Recent jobs\nID=1 by run@x.org, current status: submitted, start/end time: 2026-01-01 10:00:00/-.\n\n"
        "## Recent task-group activities\nID=1 by admin@example.org, collect, pkg-a 1.0, current status: ongoing, "
        "start/end time: 2026-01-01 09:00:00/-.\n\n")
    # a look-back long enough to reach 2020 also shows the ended ones, running first
    r = run(["recent", "--minutes", str(60 * 24 * 366 * 10)], env=e, cwd=tmp_path)
    assert "ID=2 by old@x.org, current status: done, start/end time: 2020-01-01 10:00:00/2020-01-01 11:00:00." \
        in r.stdout
    assert r.stdout.index("ID=1 by run@x.org") < r.stdout.index("ID=2 by old@x.org")
    assert r.stdout.index("pkg-a 1.0") < r.stdout.index("pkg-b 2.0")
    r = run(["recent", "--minutes", "abc"], env=e, cwd=tmp_path)
    assert r.returncode == 2 and "invalid int value: 'abc'" in r.stderr


def seed_tasks(db):
    """Two task groups of group 1 on resource 1 (pkg 1.0 and 2.0) and one private one."""
    db.execute(
        "INSERT INTO taskgroupv2 (user_id, user_group_id, resource_id, origin, pkg_name, version, active, "
        "pinned_package_versions_pre, pinned_package_versions_post, timestamp_created, timestamp_last_used) VALUES "
        f"(1, 1, 1, 'other', 'pkg', '1.0', true, '{{}}', '{{}}', '{NOW}', '{NOW}'),"
        f"(1, 1, 1, 'other', 'pkg', '2.0', true, '{{}}', '{{}}', '{NOW}', '{NOW}'),"
        f"(1, NULL, 1, 'other', 'pkg', '3.0', true, '{{}}', '{{}}', '{NOW}', '{NOW}');"
        "INSERT INTO taskv2 (name, type, command_non_parallel, meta_non_parallel, meta_parallel, version, "
        "input_types, output_types, taskgroupv2_id, tags, is_core) VALUES "
        "('a', 'non_parallel', 'x', '{}', '{}', '1.0', '{}', '{}', 1, '[]', false),"
        "('b', 'non_parallel', 'x', '{}', '{}', '1.0', '{}', '{}', 1, '[]', false),"
        "('a', 'non_parallel', 'x', '{}', '{}', '2.0', '{}', '{}', 2, '[]', true),"
        "('a', 'non_parallel', 'x', '{}', '{}', '3.0', '{}', '{}', 3, '[]', false);")


def core(db):
    return [r[0] for r in db.query("SELECT id FROM taskv2 WHERE is_core ORDER BY id")]


def test_sync_core_tasks_sets_exactly_base_plus_add_minus_remove(db, env, tmp_path):
    e = init_db(env, tmp_path)
    seed_tasks(db)
    files = {}
    for name, data in {"rg": [{"resource_id": 1, "user_group_id": 1}],
                       "base": [["pkg", "1.0", "a"], ["pkg", "1.0", "b"]],
                       "add": [["pkg", "3.0", "a"]],
                       "remove": [["pkg", "1.0", "b"]]}.items():
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(data))
    r = run(["sync-core-tasks", "--resources-and-groups", str(files["rg"]), "--base", str(files["base"]),
             "--add", str(files["add"]), "--remove", str(files["remove"])], env=e, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Initial count of core tasks: 1\nFinal count of core tasks: 1\n"
    # 1.0/a is core; 2.0/a lost it (not listed); 3.0/a is private (not in group 1); 1.0/b was removed
    assert core(db) == ["1"]


def test_sync_core_tasks_refuses_bad_input_without_touching_data(db, env, tmp_path):
    e = init_db(env, tmp_path)
    seed_tasks(db)
    rg = tmp_path / "rg.json"
    rg.write_text(json.dumps([{"resource_id": 1, "user_group_id": 999}]))
    r = run(["sync-core-tasks", "--resources-and-groups", str(rg)], env=e, cwd=tmp_path)
    assert r.returncode == 1
    assert "exit without updating the database" in r.stderr and "UserGroup 999" in r.stderr
    assert core(db) == ["3"]  # the transaction was rolled back
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([["pkg", "", "a"]]))
    rg.write_text(json.dumps([{"resource_id": 1, "user_group_id": 1}]))
    r = run(["sync-core-tasks", "--resources-and-groups", str(rg), "--base", str(bad)], env=e, cwd=tmp_path)
    assert r.returncode == 1 and "three non-empty strings" in r.stderr
    bad.write_text("{not json")
    r = run(["sync-core-tasks", "--resources-and-groups", str(bad)], env=e, cwd=tmp_path)
    assert r.returncode == 1 and "--resources-and-groups" in r.stderr
    assert core(db) == ["3"]
    r = run(["sync-core-tasks"], env=e, cwd=tmp_path)
    assert r.returncode == 2 and "required: --resources-and-groups" in r.stderr


def test_update_db_data_asks_then_reports_no_migration_for_this_version(db, env, tmp_path):
    e = init_db(env, tmp_path)
    full = base_env()
    full.update(e)
    r = subprocess.run([FRACTALCTL, "update-db-data"], env=full, cwd=tmp_path, input="yes\n",
                       capture_output=True, text=True)
    assert r.returncode == 1 and "there isn't one in the current directory" in r.stderr
    (tmp_path / ".fractal_server.env").write_text("")
    r = subprocess.run([FRACTALCTL, "update-db-data"], env=full, cwd=tmp_path, input="yes\nno\n",
                       capture_output=True, text=True)
    assert r.returncode == 1 and "Answer was 'no'; exit." in r.stderr
    r = subprocess.run([FRACTALCTL, "update-db-data"], env=full, cwd=tmp_path, input="yes\n" * 5,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "The detected target version is '2.24.2'" in r.stdout
    assert "Update-db module for version 2.24.2 not found; exit." in r.stdout
