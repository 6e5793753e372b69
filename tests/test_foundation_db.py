"""Foundation: set-db and init-db-data on both engines, and their errors."""
import hashlib
import json
import os
import subprocess

import pytest

from conftest import (ADMIN_EMAIL, ADMIN_PWD, JWT_SECRET, PG_PORT, PG_SOCKET, Database, pg_bin, psql, run)

HEAD = "d4027db95431"
TABLES = {
    "accountingrecord", "accountingrecordslurm", "alembic_version", "datasetv2", "historyimagecache",
    "historyrun", "historyunit", "jobv2", "linkusergroup", "linkuserprojectv2", "oauthaccount", "profile",
    "projectv2", "resource", "taskgroupactivityv2", "taskgroupv2", "taskv2", "user_oauth", "usergroup",
    "workflowtaskv2", "workflowtemplate", "workflowv2",
}


def tables(db):
    if db.engine == "sqlite":
        rows = db.query("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
    else:
        rows = db.query("SELECT tablename FROM pg_tables WHERE schemaname='public'")
    return {r[0] for r in rows}


def test_set_db_creates_the_schema_at_head(db, tmp_path):
    r = run(["set-db"], env=db.env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"applied migration 0001_initial (revision {HEAD})" in r.stdout
    assert tables(db) == TABLES
    assert db.query("SELECT version_num FROM alembic_version") == [[HEAD]]


def test_set_db_twice_is_a_no_op(db, tmp_path):
    assert run(["set-db"], env=db.env, cwd=tmp_path).returncode == 0
    db.execute("INSERT INTO usergroup (name, timestamp_created) VALUES ('kept', '2020-01-01T00:00:00+00:00')")
    r = run(["set-db"], env=db.env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "already at the newest revision" in r.stdout
    assert "applied migration" not in r.stdout
    assert db.query("SELECT name FROM usergroup") == [["kept"]]
    assert db.query("SELECT version_num FROM alembic_version") == [[HEAD]]


def test_set_db_refuses_an_unknown_revision_and_changes_nothing(db, tmp_path):
    assert run(["set-db"], env=db.env, cwd=tmp_path).returncode == 0
    db.execute("UPDATE alembic_version SET version_num = 'abcdef123456'")
    before = tables(db)
    r = run(["set-db"], env=db.env, cwd=tmp_path)
    assert r.returncode == 1
    assert "abcdef123456" in r.stderr and "refusing" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert tables(db) == before
    assert db.query("SELECT version_num FROM alembic_version") == [["abcdef123456"]]
    # start refuses it too
    r = run(["start", "--port", "1"], env=dict(db.env, JWT_SECRET_KEY="s"), cwd=tmp_path, timeout=10)
    assert r.returncode == 1 and "abcdef123456" in r.stderr


def test_set_db_refuses_a_foreign_database(db, tmp_path):
    if db.engine == "sqlite":
        db.execute("CREATE TABLE other (x INTEGER)")
    else:
        db.execute("CREATE TABLE other (x integer)")
    r = run(["set-db"], env=db.env, cwd=tmp_path)
    assert r.returncode == 1
    assert "not a fractal-server database" in r.stderr
    assert tables(db) == {"other"}


def test_start_refuses_a_database_without_schema(db, tmp_path):
    if db.engine == "sqlite":
        db.execute("SELECT 1")  # creates the empty file
    r = run(["start", "--port", "1"], env=dict(db.env, JWT_SECRET_KEY="s"), cwd=tmp_path, timeout=10)
    assert r.returncode == 1
    assert "set-db" in r.stderr


def test_concurrent_set_db_apply_the_migration_once(db, tmp_path):
    from conftest import base_env, FRACTALCTL
    env = base_env()
    env.update(db.env)
    procs = [subprocess.Popen([FRACTALCTL, "set-db"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert sum("applied migration" in o for o, _ in outs) == 1
    assert db.query("SELECT version_num FROM alembic_version") == [[HEAD]]


# ---- SQLite file handling ----

def test_sqlite_set_db_creates_a_missing_file_relative_to_cwd(tmp_path):
    r = run(["set-db"], env={"SQLITE_PATH": "sub.sqlite"}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "sub.sqlite").is_file()
    assert str(tmp_path / "sub.sqlite") in r.stdout


def test_sqlite_missing_parent_folder(tmp_path):
    path = tmp_path / "missing" / "db.sqlite"
    r = run(["set-db"], env={"SQLITE_PATH": str(path)}, cwd=tmp_path)
    assert r.returncode == 1
    assert str(path) in r.stderr and "does not exist" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not path.parent.exists()


def test_sqlite_unwritable_folder(tmp_path):
    import shutil
    import tempfile
    base = tempfile.mkdtemp(prefix="fractal-ro-", dir="/tmp")
    try:
        os.chmod(base, 0o755)
        folder = os.path.join(base, "ro")
        os.mkdir(folder, 0o555)
        os.chmod(folder, 0o555)
        path = os.path.join(folder, "db.sqlite")
        # root writes anywhere: run as an unprivileged user then
        user = "nobody" if os.geteuid() == 0 else None
        r = run(["set-db"], env={"SQLITE_PATH": path}, cwd="/", as_user=user)
        assert r.returncode == 1, r.stdout + r.stderr
        assert path in r.stderr and "not writable" in r.stderr
        assert not os.path.exists(path)
    finally:
        os.chmod(os.path.join(base, "ro"), 0o755)
        shutil.rmtree(base)


def test_sqlite_file_that_is_not_a_database_is_left_untouched(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    for cmd in (["set-db"], ["init-db-data"], ["start", "--port", "1"]):
        r = run(cmd, env={"SQLITE_PATH": str(path), "JWT_SECRET_KEY": "s"}, cwd=tmp_path, timeout=10)
        assert r.returncode == 1, (cmd, r.stderr)
        assert str(path) in r.stderr and "not a database" in r.stderr, r.stderr
        # one error line; start may log its START line before it (as upstream's lifespan)
        lines = [x for x in r.stderr.strip().splitlines() if " - lifespan.startup - INFO - " not in x]
        assert len(lines) == 1, r.stderr
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_sqlite_is_in_wal_mode_with_foreign_keys(tmp_path):
    path = tmp_path / "db.sqlite"
    assert run(["set-db"], env={"SQLITE_PATH": str(path)}, cwd=tmp_path).returncode == 0
    import sqlite3
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    fks = con.execute("PRAGMA foreign_key_list(profile)").fetchall()
    assert any(f[2] == "resource" and f[6] == "RESTRICT" for f in fks)
    con.close()


def test_init_db_data_on_a_missing_sqlite_file_says_run_set_db(tmp_path):
    r = run(["init-db-data"], env={"SQLITE_PATH": "nope.sqlite", "JWT_SECRET_KEY": "s"}, cwd=tmp_path)
    assert r.returncode == 1
    assert "nope.sqlite" in r.stderr and "set-db" in r.stderr
    assert not (tmp_path / "nope.sqlite").exists()


# ---- PostgreSQL connection handling ----

def pg_env(**kw):
    e = {"DB_ENGINE": "postgres", "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": PG_PORT,
         "POSTGRES_USER": "fractal", "POSTGRES_PASSWORD": "fractal-test-pw", "POSTGRES_DB": "postgres"}
    e.update(kw)
    return e


@pytest.mark.parametrize("case", ["wrong_password", "missing_database", "unreachable", "unknown_host"])
def test_postgres_connection_errors_name_the_target(case, tmp_path):
    e = {
        "wrong_password": pg_env(POSTGRES_PASSWORD="not-the-password"),
        "missing_database": pg_env(POSTGRES_DB="no_such_db"),
        "unreachable": pg_env(POSTGRES_PORT="1"),
        "unknown_host": pg_env(POSTGRES_HOST="no-such-host.invalid"),
    }[case]
    r = run(["set-db"], env=e, cwd=tmp_path, timeout=30)
    assert r.returncode == 1
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert f"'{e['POSTGRES_DB']}'" in line
    assert f"{e['POSTGRES_HOST']}:{e['POSTGRES_PORT']}" in line
    assert "'fractal'" in line
    assert e["POSTGRES_PASSWORD"] not in line
    if case == "wrong_password":
        assert "password authentication failed" in line
    if case == "missing_database":
        assert "does not exist" in line


def test_postgres_accepts_the_psycopg_spelling_and_a_unix_socket(tmp_path):
    db = Database("postgres", tmp_path)
    try:
        e = dict(db.env, DB_ENGINE="postgres-psycopg", POSTGRES_HOST=PG_SOCKET)
        del e["POSTGRES_PASSWORD"]
        r = run(["set-db"], env=e, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert PG_SOCKET in r.stdout
        assert db.query("SELECT version_num FROM alembic_version") == [[HEAD]]
        # and the server runs through the socket too
        from conftest import Server, init_db
        e["JWT_SECRET_KEY"] = JWT_SECRET
        init_db(e, tmp_path)
        s = Server(e, tmp_path)
        try:
            token = s.http.login()
            status, body, _ = s.http.get("/api/settings/database/", token=token)
            assert status == 200 and body["POSTGRES_HOST"] == PG_SOCKET
        finally:
            assert s.stop() == 0
    finally:
        db.drop()


def test_postgres_user_defaults_to_the_system_user(tmp_path):
    import getpass
    me = getpass.getuser()
    name = f"fractal_default_user_{os.getpid()}"
    psql("postgres", f'CREATE DATABASE "{name}" OWNER "{me}"')
    try:
        e = {"DB_ENGINE": "postgres", "POSTGRES_HOST": PG_SOCKET, "POSTGRES_PORT": PG_PORT, "POSTGRES_DB": name}
        r = run(["set-db"], env=e, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        owner = psql(name, "SELECT tableowner FROM pg_tables WHERE tablename = 'user_oauth'")
        assert owner == [[me]]
    finally:
        psql("postgres", f'DROP DATABASE "{name}" WITH (FORCE)')


def normalised_schema(text):
    keep = []
    for line in text.splitlines():
        s = line.strip()
        if (not s or s.startswith("--") or s.startswith("SET ") or s.startswith("\\restrict")
                or s.startswith("\\unrestrict") or s.startswith("SELECT pg_catalog.set_config")):
            continue
        keep.append(line.rstrip())
    return keep


def test_postgres_schema_equals_upstream(tmp_path, spec_dir):
    if spec_dir is None:
        pytest.skip("../shared/spec is not beside this checkout")
    db = Database("postgres", tmp_path)
    try:
        assert run(["set-db"], env=db.env, cwd=tmp_path).returncode == 0
        dump = subprocess.run([pg_bin("pg_dump"), "-h", PG_SOCKET, "-p", PG_PORT, "-U", "postgres",
                               "--schema-only", "--no-owner", db.name], capture_output=True, text=True, check=True)
        ours = normalised_schema(dump.stdout)
        theirs = normalised_schema((spec_dir / "schema-postgres.sql").read_text())
        import difflib
        diff = "\n".join(difflib.unified_diff(theirs, ours, "upstream", "ours", lineterm=""))
        assert ours == theirs, diff
    finally:
        db.drop()


# ---- DB_ECHO ----

@pytest.mark.parametrize("value,on", [("true", True), ("True", True), ("1", True), ("false", False),
                                      ("yes", False), ("", False)])
def test_db_echo_logs_statements_with_duration(db, tmp_path, value, on):
    e = dict(db.env, DB_ECHO=value, JWT_SECRET_KEY=JWT_SECRET)
    r = run(["set-db"], env=e, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    echoed = [l for l in r.stderr.splitlines() if "db.echo" in l]
    if not on:
        assert echoed == []
        return
    assert any("SELECT version_num FROM alembic_version" in l or "alembic_version" in l for l in echoed)
    assert all(" ms" in l for l in echoed)
    r = run(["init-db-data", "--admin-email", ADMIN_EMAIL, "--admin-pwd", "SuperSecret1",
             "--admin-project-dir", "/tmp"], env=e, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    hashed = db.query("SELECT hashed_password FROM user_oauth")[0][0]
    assert hashed.startswith("$2b$12$")
    assert hashed not in r.stderr and "SuperSecret1" not in r.stderr
    insert = [l for l in r.stderr.splitlines() if "INSERT INTO user_oauth" in l]
    assert insert and "'***'" in insert[0] and ADMIN_EMAIL in insert[0]


# ---- init-db-data ----

def counts(db):
    return {t: db.query(f"SELECT count(*) FROM {t}")[0][0]
            for t in ("usergroup", "user_oauth", "linkusergroup", "resource", "profile")}


def test_init_db_data_creates_group_admin_resource_profile(db, tmp_path):
    e = dict(db.env, JWT_SECRET_KEY=JWT_SECRET, FRACTAL_DEFAULT_GROUP_NAME="All")
    assert run(["set-db"], env=e, cwd=tmp_path).returncode == 0
    args = ["init-db-data", "--resource", "default", "--profile", "default", "--admin-email", ADMIN_EMAIL,
            "--admin-pwd", ADMIN_PWD, "--admin-project-dir", "/data/admin/../admin//projects/"]
    r = run(args, env=e, cwd=tmp_path)
    assert r.returncode == 1 and "--admin-project-dir" in r.stderr and ".." in r.stderr
    assert counts(db) == {"usergroup": "0", "user_oauth": "0", "linkusergroup": "0", "resource": "0", "profile": "0"}
    args[-1] = "/data/admin//projects/"
    r = run(args, env=e, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert counts(db) == {"usergroup": "1", "user_oauth": "1", "linkusergroup": "1", "resource": "1", "profile": "1"}
    row = db.query("SELECT email, is_active, is_superuser, is_verified, is_guest, project_dirs, profile_id "
                   "FROM user_oauth")[0]
    truthy = ("1", "t")
    assert row[0] == ADMIN_EMAIL
    assert row[1] in truthy and row[2] in truthy and row[3] in truthy and row[4] not in truthy
    assert row[5] in ('["/data/admin/projects"]', "{/data/admin/projects}")
    assert row[6] == db.query("SELECT id FROM profile")[0][0]
    res = db.query("SELECT type, name, jobs_local_dir, tasks_local_dir, jobs_poll_interval, tasks_python_config "
                   "FROM resource")[0]
    assert res[:5] == ["local", "Local resource", str(tmp_path / "data-jobs"), str(tmp_path / "data-tasks"), "0"]
    py = json.loads(res[5])
    assert py["versions"][py["default_version"]].endswith("python3")
    assert db.query("SELECT resource_type, name FROM profile") == [["local", "Local profile"]]
    assert db.query("SELECT name FROM usergroup") == [["All"]]
    # twice: nothing new, and it says so
    r = run(args, env=e, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "already exists" in r.stdout
    assert counts(db) == {"usergroup": "1", "user_oauth": "1", "linkusergroup": "1", "resource": "1", "profile": "1"}


def test_init_db_data_without_default_group_creates_no_group(env, db, tmp_path):
    assert run(["set-db"], env=env, cwd=tmp_path).returncode == 0
    r = run(["init-db-data", "--admin-email", ADMIN_EMAIL, "--admin-pwd", ADMIN_PWD,
             "--admin-project-dir", "/tmp"], env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert counts(db)["usergroup"] == "0" and counts(db)["user_oauth"] == "1"


@pytest.mark.parametrize("args,message", [
    (["--admin-email", ADMIN_EMAIL], "either both or none"),
    (["--admin-email", ADMIN_EMAIL, "--admin-pwd", "1234"], "either both or none"),
    (["--resource", "default"], "both --resource and --profile"),
    (["--profile", "default"], "both --resource and --profile"),
    (["--admin-email", "not-an-email", "--admin-pwd", "1234", "--admin-project-dir", "/tmp"], "valid email"),
    (["--admin-email", ADMIN_EMAIL, "--admin-pwd", "123", "--admin-project-dir", "/tmp"], "too short"),
    (["--admin-email", ADMIN_EMAIL, "--admin-pwd", "x" * 73, "--admin-project-dir", "/tmp"], "too long"),
    (["--admin-email", ADMIN_EMAIL, "--admin-pwd", "1234", "--admin-project-dir", "relative/dir"], "absolute"),
])
def test_init_db_data_rejects_bad_options_and_writes_nothing(env, db, tmp_path, args, message):
    assert run(["set-db"], env=env, cwd=tmp_path).returncode == 0
    r = run(["init-db-data"] + args, env=dict(env, FRACTAL_DEFAULT_GROUP_NAME="All"), cwd=tmp_path)
    assert r.returncode == 1
    assert message in r.stdout + r.stderr
    assert counts(db) == {"usergroup": "0", "user_oauth": "0", "linkusergroup": "0", "resource": "0", "profile": "0"}


def test_init_db_data_reads_and_validates_resource_and_profile_files(env, db, tmp_path):
    assert run(["set-db"], env=env, cwd=tmp_path).returncode == 0
    res = {"type": "local", "name": "  My local  ", "jobs_local_dir": "/srv/jobs/", "tasks_local_dir": "/srv/tasks",
           "jobs_runner_config": {"parallel_tasks_per_job": 2}, "jobs_poll_interval": 0,
           "tasks_python_config": {"default_version": "3.11", "versions": {"3.11": "/usr/bin/python3"}},
           "tasks_pixi_config": {}}
    prof = {"resource_type": "local", "name": "My profile"}
    (tmp_path / "res.json").write_text(json.dumps(res))
    (tmp_path / "prof.json").write_text(json.dumps(prof))
    bad = dict(res, jobs_local_dir="relative")
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    (tmp_path / "broken.json").write_text("{not json")
    badprof = {"resource_type": "slurm_sudo", "name": "p"}
    (tmp_path / "badprof.json").write_text(json.dumps(badprof))
    for r_arg, p_arg, msg in (("bad.json", "prof.json", "jobs_local_dir"), ("broken.json", "prof.json", "broken.json"),
                              ("res.json", "badprof.json", "resource_type"), ("nope.json", "prof.json", "nope.json")):
        r = run(["init-db-data", "--resource", r_arg, "--profile", p_arg], env=env, cwd=tmp_path)
        assert r.returncode == 1, r.stdout
        assert msg in r.stdout + r.stderr
        assert counts(db)["resource"] == "0" and counts(db)["profile"] == "0"
    r = run(["init-db-data", "--resource", "res.json", "--profile", "prof.json"], env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert db.query("SELECT name, jobs_local_dir, jobs_runner_config FROM resource")[0][:2] == ["My local", "/srv/jobs"]
    assert json.loads(db.query("SELECT jobs_runner_config FROM resource")[0][0]) == {"parallel_tasks_per_job": 2}
