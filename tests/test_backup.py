"""Dump and restore (fractalctl dump / restore): round trips within and across engines, the format's
guards, consistency under concurrent writes, and the commands of docs/database.md."""
import ast
import gzip
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import (ADMIN_EMAIL, ADMIN_PWD, FRACTALCTL, JWT_SECRET, PG_PORT, PG_SOCKET, ROOT, Database, Server,
                      base_env, init_db, pg_bin, psql, run)

HEAD = "d4027db95431"
ENGINES = ["sqlite", "postgres"]


# ---- helpers ----

def new_db(engine, tmp_path, name):
    """A fresh database in its own folder (several per test)."""
    d = tmp_path / name
    d.mkdir()
    return Database(engine, d)


@pytest.fixture
def dbs():
    made = []
    yield made
    for d in made:
        d.drop()


def make(dbs, engine, tmp_path, name, schema=True):
    d = new_db(engine, tmp_path, name)
    dbs.append(d)
    if schema:
        r = run(["set-db"], env=d.env, cwd=d.tmp)
        assert r.returncode == 0, r.stderr
    return d


def dump(d, path, cwd=None):
    r = run(["dump", "--output", str(path)], env=d.env, cwd=cwd or d.tmp)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return r


def restore(d, path, ok=True):
    r = run(["restore", str(path)], env=d.env, cwd=d.tmp)
    if ok:
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""
    return r


def read_dump(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def parse(lines):
    """{table: {"columns": [...], "next_id": n, "rows": [{col: value}]}} plus the header and the end."""
    header, end = json.loads(lines[0]), json.loads(lines[-1])
    tables, cur = {}, None
    for line in lines[1:-1]:
        v = json.loads(line)
        if isinstance(v, dict):
            cur = tables[v["table"]] = {"columns": v["columns"], "next_id": v.get("next_id"), "rows": []}
        else:
            cur["rows"].append(dict(zip(cur["columns"], v)))
    return header, tables, end


def body(lines):
    """What two dumps of the same data share: all but the header and the end marker's checksum."""
    end = json.loads(lines[-1])
    del end["sha256"]
    return lines[1:-1] + [json.dumps(end, sort_keys=True)]


def reseal(lines):
    """Recomputes the end marker's checksum after a deliberate edit, so that only the edit is wrong."""
    end = json.loads(lines[-1])
    end["sha256"] = hashlib.sha256("".join(l + "\n" for l in lines[:-1]).encode()).hexdigest()
    return lines[:-1] + [json.dumps(end)]


def write(path, lines):
    Path(path).write_text("".join(l + "\n" for l in lines), encoding="utf-8")


def data_rows(d):
    """Rows in every table but alembic_version: what "untouched" means for a fresh target."""
    out = {}
    for t in TABLES:
        if t != "alembic_version":
            out[t] = int(d.query(f'SELECT count(*) FROM "{t}"')[0][0])
    return out


def jsonb_columns(d):
    """(table, column) of PostgreSQL's jsonb columns: those whose text PostgreSQL normalises."""
    rows = d.query("SELECT table_name, column_name FROM information_schema.columns "
                   "WHERE table_schema = 'public' AND data_type = 'jsonb'")
    return {(t, c) for t, c in rows}


def compare(src, dst, loose=frozenset()):
    """Table by table, row by row, cell by cell; cells of `loose` columns are compared as parsed JSON."""
    _, a, end_a = parse(src)
    _, b, end_b = parse(dst)
    assert sorted(a) == sorted(b)
    for t in a:
        assert sorted(a[t]["columns"]) == sorted(b[t]["columns"]), t
        assert a[t]["next_id"] == b[t]["next_id"], t
        assert len(a[t]["rows"]) == len(b[t]["rows"]), t
        for ra, rb in zip(a[t]["rows"], b[t]["rows"]):
            for c in a[t]["columns"]:
                if (t, c) in loose and ra[c] is not None and rb[c] is not None:
                    assert json.loads(ra[c]) == json.loads(rb[c]), (t, c)
                else:
                    assert ra[c] == rb[c], (t, c, ra[c], rb[c])
    assert end_a["row_counts"] == end_b["row_counts"]


TABLES = [
    "accountingrecord", "accountingrecordslurm", "alembic_version", "datasetv2", "historyimagecache", "historyrun",
    "historyunit", "jobv2", "linkusergroup", "linkuserprojectv2", "oauthaccount", "profile", "projectv2", "resource",
    "taskgroupactivityv2", "taskgroupv2", "taskv2", "user_oauth", "usergroup", "workflowtaskv2", "workflowtemplate",
    "workflowv2",
]


# ---- test data: every table, every column type, awkward values ----

class Arr(list):
    """A varchar[]/integer[] value: a PostgreSQL array there, JSON text on SQLite."""


def literal(engine, v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Arr):
        if engine == "sqlite":
            # the text PostgreSQL's arrays come back as: compact JSON
            return literal(engine, json.dumps(list(v), separators=(",", ":"), ensure_ascii=False))
        if not v:
            return "'{}'"   # takes the column's array type
        kind = "integer" if all(isinstance(x, int) or x is None for x in v) else "varchar"
        return f"ARRAY[{', '.join(literal(engine, x) for x in v)}]::{kind}[]"
    return "'" + str(v).replace("'", "''") + "'"


def insert(engine, table, **cols):
    names = ", ".join(f'"{c.rstrip("_")}"' for c in cols)
    values = ", ".join(literal(engine, v) for v in cols.values())
    return f'INSERT INTO "{table}" ({names}) VALUES ({values});\n'


def jb(obj):
    """JSON text as PostgreSQL's jsonb prints it (keys by length, then bytes; ", " and ": "), so that it
    survives a trip through jsonb unchanged."""
    def norm(o):
        if isinstance(o, dict):
            return {k: norm(o[k]) for k in sorted(o, key=lambda k: (len(k.encode()), k.encode()))}
        if isinstance(o, list):
            return [norm(x) for x in o]
        return o
    return json.dumps(norm(obj), ensure_ascii=False)


TS = "2024-05-06T07:08:09.123456+00:00"
TS2 = "2025-12-31T23:59:59.000001+00:00"
TS0 = "2023-01-01T00:00:00.000000+00:00"
AWKWARD = "quote ' double \" back\\slash\nnew line\ttab ü ✓ 😀 {a,b} NULL"
# json (not jsonb) columns keep their text byte for byte on both engines: odd spacing on purpose
LOOSE_JSON = '{"z" :1,  "a":[ 1,2 ], "ü": "✓"}'
# a jsonb column written from text that is not jsonb's own spelling: PostgreSQL normalises it
LOOSE_JSONB = '[{"zarr_url":"/z/loose","types":{},"attributes":{"b":1,"a":"x"}}]'


def fill(d):
    """Direct inserts into every table (the API does not reach most of them yet), on top of init-db-data's
    resource 1, profile 1, admin 1, group 1 "All"."""
    e = d.engine
    sql = ""
    sql += insert(e, "resource", id=2, type="slurm_ssh", name="Cluster ü", timestamp_created=TS, host="login.example.org",
                  jobs_local_dir="/jobs", jobs_runner_config=jb({"default_slurm_config": {"partition": "main", "mem": 1}}),
                  jobs_slurm_python_worker="/usr/bin/python3", jobs_poll_interval=5, tasks_local_dir="/tasks",
                  tasks_python_config=jb({"versions": {"3.12": "/p"}, "default_version": "3.12"}),
                  tasks_pixi_config=jb({}), prevent_new_submissions=True)
    sql += insert(e, "profile", id=2, resource_id=2, resource_type="slurm_ssh", name="ssh profile", username="fractal",
                  ssh_key_path="/keys/id", jobs_remote_dir="/remote/jobs", tasks_remote_dir="/remote/tasks",
                  pixi_cache_dir="/pixi")
    sql += insert(e, "user_oauth", id=2, email="ü@example.org", hashed_password="$2b$12$" + "x" * 53, is_active=True,
                  is_superuser=False, is_verified=True, profile_id=2,
                  slurm_accounts=Arr(["acc1", "a,b", "{x}", 'q"uote', "back\\slash", "ü", " lead", "", "NULL"]),
                  project_dirs=Arr(["/data/ü", "/data/two"]), is_guest=True)
    sql += insert(e, "user_oauth", id=3, email="null@example.org", hashed_password="h", is_active=False,
                  is_superuser=False, is_verified=False, profile_id=None, slurm_accounts=None,
                  project_dirs=Arr([]), is_guest=False)
    sql += insert(e, "oauthaccount", id=1, user_id=2, oauth_name="github", access_token="tok'en", expires_at=1700000000,
                  refresh_token=None, account_id="42", account_email="gh@example.org")
    sql += insert(e, "usergroup", id=2, name="team ü", timestamp_created=TS)
    sql += insert(e, "linkusergroup", group_id=1, user_id=2, timestamp_created=TS2)
    sql += insert(e, "linkusergroup", group_id=2, user_id=2, timestamp_created=TS0)
    sql += insert(e, "linkusergroup", group_id=2, user_id=3, timestamp_created=TS)
    sql += insert(e, "projectv2", id=1, name=AWKWARD, timestamp_created=TS, resource_id=1, is_starred=True,
                  description=None)
    sql += insert(e, "projectv2", id=2, name="p2", timestamp_created=TS2, resource_id=2, is_starred=False,
                  description="")
    sql += insert(e, "linkuserprojectv2", project_id=1, user_id=1, is_owner=True, is_verified=True, permissions="rwx")
    sql += insert(e, "linkuserprojectv2", project_id=1, user_id=2, is_owner=False, is_verified=False, permissions="r")
    sql += insert(e, "linkuserprojectv2", project_id=2, user_id=2, is_owner=True, is_verified=True, permissions="rwx")
    images = [{"zarr_url": f"/z/{i}", "types": {"3D": i % 2 == 0}, "origin": None,
               "attributes": {"well": f"A{i:02d}", "n": i}} for i in range(50)]
    sql += insert(e, "datasetv2", id=1, name="ds", project_id=1, timestamp_created=TS, zarr_dir="/z",
                  images=jb(images), is_starred=False)
    sql += insert(e, "datasetv2", id=2, name="loose", project_id=1, timestamp_created=TS, zarr_dir="/z",
                  images=LOOSE_JSONB if e == "sqlite" else jb(json.loads(LOOSE_JSONB)), is_starred=True)
    sql += insert(e, "taskgroupv2", id=1, user_id=1, user_group_id=1, origin="pypi", pkg_name="fractal-tasks-core",
                  version="1.0.0", python_version="3.11", path="/tasks/ftc", venv_path="/tasks/ftc/venv",
                  archive_path=None, pip_extras="fractal-tasks", pinned_package_versions_post=jb({"numpy": "1.26"}),
                  active=True, timestamp_created=TS, env_info="pip freeze\nnumpy==1.26", timestamp_last_used=TS2,
                  pixi_version=None, pinned_package_versions_pre=None, resource_id=1)
    sql += insert(e, "taskgroupv2", id=2, user_id=2, user_group_id=None, origin="local", pkg_name="mine",
                  version="0.1", python_version=None, path=None, venv_path=None, archive_path="/a.whl",
                  pip_extras=None, pinned_package_versions_post=None, active=False, timestamp_created=TS,
                  env_info=None, timestamp_last_used=TS, pixi_version="0.40", pinned_package_versions_pre=jb({}),
                  resource_id=2)
    sql += insert(e, "taskgroupactivityv2", id=1, user_id=1, taskgroupv2_id=1, timestamp_started=TS, pkg_name="ftc",
                  version="1.0.0", status="OK", action="collect", log=AWKWARD, timestamp_ended=TS2,
                  fractal_server_version="2.24.2")
    sql += insert(e, "taskgroupactivityv2", id=2, user_id=2, taskgroupv2_id=None, timestamp_started=TS,
                  pkg_name="gone", version="1", status="failed", action="deactivate", log=None, timestamp_ended=None,
                  fractal_server_version="pre-2.19.0")
    sql += insert(e, "taskv2", id=1, name="create_zarr", type="compound", command_non_parallel="python a.py",
                  command_parallel="python b.py", meta_non_parallel=LOOSE_JSON, meta_parallel='{}', version="1.0.0",
                  args_schema_non_parallel='{"title": "A", "properties": {"x": {"type": "integer"}}}',
                  args_schema_parallel=None, args_schema_version="pydantic_v2", docs_info="# Docs\n`x`",
                  docs_link="https://example.org", input_types=jb({"is_3D": False}),
                  output_types=jb({"registered": True}), taskgroupv2_id=1, category="Conversion", modality="HCS",
                  authors="A. Author", tags=jb(["2D", "ü"]), is_core=True)
    sql += insert(e, "taskv2", id=2, name="other", type="non_parallel", command_non_parallel="x",
                  command_parallel=None, meta_non_parallel='{}', meta_parallel='{}', version="0.1",
                  args_schema_non_parallel=None, args_schema_parallel=None, args_schema_version=None,
                  docs_info=None, docs_link=None, input_types=None, output_types=None, taskgroupv2_id=2,
                  category=None, modality=None, authors=None, tags=jb([]), is_core=False)
    sql += insert(e, "workflowtemplate", id=1, user_id=1, name="tpl", version=3, fractal_server_version="2.24.2",
                  timestamp_created=TS, timestamp_last_used=TS2, user_group_id=2, description="d",
                  data='{"name": "wf",   "task_list": [ ]}')
    sql += insert(e, "workflowv2", id=1, name="wf", project_id=1, timestamp_created=TS, description=None,
                  template_id=1, is_starred=False)
    sql += insert(e, "workflowtaskv2", id=1, workflow_id=1, order_=0, meta_parallel='{"cpus_per_task": 1}',
                  meta_non_parallel=None, args_parallel=jb({"level": 0, "channel": {"label": "DAPI"}}),
                  args_non_parallel=None, task_type="compound", task_id=1, type_filters=jb({"is_3D": True}),
                  alias="first ü", description="the first")
    sql += insert(e, "workflowtaskv2", id=2, workflow_id=1, order_=None, meta_parallel=None, meta_non_parallel=None,
                  args_parallel=None, args_non_parallel=jb({}), task_type="non_parallel", task_id=2,
                  type_filters=jb({}), alias=None, description=None)
    sql += insert(e, "jobv2", id=1, project_id=1, workflow_id=1, dataset_id=1, user_email=ADMIN_EMAIL,
                  slurm_account="acc1", dataset_dump=jb({"id": 1, "name": "ds"}), workflow_dump=jb({"id": 1}),
                  project_dump=jb({"id": 1, "name": AWKWARD}), worker_init="module load x",
                  working_dir="/jobs/1", working_dir_user="/remote/1", first_task_index=0, last_task_index=1,
                  start_timestamp=TS, end_timestamp=TS2, status="done", log=AWKWARD,
                  attribute_filters=jb({"well": ["A01", "A02"]}), type_filters=jb({}), executor_error_log=None,
                  fractal_server_version="2.24.2")
    sql += insert(e, "jobv2", id=2, project_id=None, workflow_id=None, dataset_id=None, user_email="gone@example.org",
                  slurm_account=None, dataset_dump=jb({}), workflow_dump=jb({}), project_dump=jb({}),
                  worker_init=None, working_dir=None, working_dir_user=None, first_task_index=0, last_task_index=0,
                  start_timestamp=TS0, end_timestamp=None, status="submitted", log=None, attribute_filters=jb({}),
                  type_filters=jb({}), executor_error_log="Traceback ...", fractal_server_version="pre-2.19.0")
    sql += insert(e, "historyrun", id=1, dataset_id=1, workflowtask_id=1, workflowtask_dump=jb({"id": 1}),
                  task_group_dump=jb({"id": 1, "pkg_name": "ftc"}), timestamp_started=TS, status="done",
                  num_available_images=50, job_id=1, task_id=1)
    sql += insert(e, "historyrun", id=2, dataset_id=2, workflowtask_id=None, workflowtask_dump=jb({}),
                  task_group_dump=jb({}), timestamp_started=TS2, status="failed", num_available_images=0, job_id=2,
                  task_id=None)
    sql += insert(e, "historyunit", id=1, history_run_id=1, logfile="/jobs/1/log.txt", status="done",
                  zarr_urls=Arr(["/z/0", "/z/1", "/z/ü, with comma"]), has_warnings=False)
    sql += insert(e, "historyunit", id=2, history_run_id=2, logfile="__LOGFILE_PLACEHOLDER__", status="failed",
                  zarr_urls=None, has_warnings=True)
    # text primary keys whose order depends on the collation (B < a bytewise, a < B in most locales)
    for unit, url in enumerate(["/z/a", "/z/B", "/z/ä", "/z/0"]):
        sql += insert(e, "historyimagecache", zarr_url=url, dataset_id=1, workflowtask_id=1,
                      latest_history_unit_id=1 + unit % 2)
    sql += insert(e, "accountingrecord", id=1, user_id=1, timestamp_=TS, num_tasks=3, num_new_images=50)
    sql += insert(e, "accountingrecordslurm", id=1, user_id=1, timestamp_=TS, slurm_job_ids=Arr([101, 102, 103]),
                  fractal_job_id=1, resource_id=2)
    sql += insert(e, "accountingrecordslurm", id=2, user_id=2, timestamp_=TS2, slurm_job_ids=Arr([]),
                  fractal_job_id=None, resource_id=None)
    if e == "postgres":
        # explicit ids do not advance sequences: bring them where the application would have
        for t in TABLES:
            if t not in ("alembic_version", "linkusergroup", "linkuserprojectv2", "historyimagecache"):
                sql += (f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), max(id)) FROM {t} "
                        f"HAVING max(id) IS NOT NULL;\n")
    # a deleted row leaves the counter past the largest id: restore must keep it there
    sql += "INSERT INTO usergroup (name, timestamp_created) VALUES ('deleted', '2020-01-01T00:00:00+00:00');\n"
    sql += "DELETE FROM usergroup WHERE name = 'deleted';\n"
    d.execute(("BEGIN;\n" if e == "postgres" else "") + sql + ("COMMIT;\n" if e == "postgres" else ""))


def populated(dbs, engine, tmp_path, name="src"):
    d = make(dbs, engine, tmp_path, name, schema=False)
    init_db(dict(d.env, JWT_SECRET_KEY=JWT_SECRET), d.tmp)
    fill(d)
    return d


# ---- round trips ----

@pytest.mark.parametrize("src_engine,dst_engine,suffix", [
    ("sqlite", "sqlite", ".json"),
    ("sqlite", "postgres", ".json.gz"),
    ("postgres", "sqlite", ".json.gz"),
    ("postgres", "postgres", ".json"),
])
def test_round_trip(dbs, tmp_path, src_engine, dst_engine, suffix):
    src = populated(dbs, src_engine, tmp_path)
    first = tmp_path / ("first" + suffix)
    r = dump(src, first)
    assert re.match(r"dumped 22 tables, \d+ rows of ", r.stdout)
    assert os.stat(first).st_mode & 0o777 == 0o600      # password hashes inside
    if suffix.endswith(".gz"):
        assert first.read_bytes()[:2] == b"\x1f\x8b"
    lines = read_dump(first)
    header, tables, end = parse(lines)
    assert header["format"] == "fractal-server-dump" and header["format_version"] == 1
    assert header["schema_revision"] == HEAD and header["source_engine"] == src_engine
    assert sorted(tables) == TABLES
    assert all(tables[t]["rows"] for t in TABLES), [t for t in TABLES if not tables[t]["rows"]]
    # booleans are JSON booleans whatever the engine spells them as
    assert tables["resource"]["rows"][1]["prevent_new_submissions"] is True
    assert tables["user_oauth"]["rows"][2]["is_guest"] is False
    assert tables["usergroup"]["next_id"] == 4

    dst = make(dbs, dst_engine, tmp_path, "dst")
    r = restore(dst, first)
    assert f"restored 22 tables, {end['rows']} rows from " in r.stdout
    second = tmp_path / "second.json"
    dump(dst, second)
    again = read_dump(second)
    loose = jsonb_columns(dst) if (src_engine, dst_engine) == ("sqlite", "postgres") else frozenset()
    compare(lines, again, loose)
    if not loose:
        assert body(again) == body(lines)       # byte for byte
    else:
        # jsonb rewrote the JSON text it was given; once normalised, the dump is a fixed point
        assert json.loads(parse(again)[1]["datasetv2"]["rows"][1]["images"]) == json.loads(LOOSE_JSONB)
        back = make(dbs, src_engine, tmp_path, "back")
        restore(back, second)
        third = tmp_path / "third.json"
        dump(back, third)
        assert body(read_dump(third)) == body(again)

    # ids continue after the source's counters, including past deleted rows
    dst.execute("INSERT INTO usergroup (name, timestamp_created) VALUES ('new', '2026-01-01T00:00:00+00:00')")
    assert dst.query("SELECT id FROM usergroup WHERE name = 'new'") == [["4"]]
    dst.execute("INSERT INTO projectv2 (name, timestamp_created, resource_id) VALUES ('new', "
                "'2026-01-01T00:00:00+00:00', 1)")
    assert dst.query("SELECT id FROM projectv2 WHERE name = 'new'") == [["3"]]

    # the restored database serves: the admin logs in with the password hash that travelled
    s = Server(dict(dst.env, JWT_SECRET_KEY=JWT_SECRET), dst.tmp)
    try:
        token = s.http.login(ADMIN_EMAIL, ADMIN_PWD)
        status, users, _ = s.http.get("/auth/users/", token=token)
        assert status == 200
        assert sorted(u["email"] for u in users) == sorted(["ü@example.org", "null@example.org", ADMIN_EMAIL])
    finally:
        assert s.stop() == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_gz_output_is_the_plain_dump_compressed(dbs, tmp_path, engine):
    src = populated(dbs, engine, tmp_path)
    dump(src, tmp_path / "plain.json")
    dump(src, tmp_path / "packed.json.gz")
    packed = (tmp_path / "packed.json.gz").read_bytes()
    assert packed[:2] == b"\x1f\x8b"
    assert len(packed) < os.path.getsize(tmp_path / "plain.json") / 2
    assert body(read_dump(tmp_path / "packed.json.gz")) == body(read_dump(tmp_path / "plain.json"))
    # a name without .gz is plain text, even with a gzip'd-looking name elsewhere
    assert (tmp_path / "plain.json").read_bytes()[:1] == b"{"


@pytest.mark.parametrize("engine", ENGINES)
def test_dump_replaces_the_output_and_leaves_no_temporary_file(dbs, tmp_path, engine):
    src = make(dbs, engine, tmp_path, "src")
    out = tmp_path / "out" / "d.json"
    out.parent.mkdir()
    out.write_text("old")
    dump(src, out)
    assert read_dump(out)[0].startswith('{"format":"fractal-server-dump"')
    assert sorted(p.name for p in out.parent.iterdir()) == ["d.json"]


@pytest.mark.parametrize("engine", ENGINES)
def test_an_empty_database_round_trips(dbs, tmp_path, engine):
    src = make(dbs, engine, tmp_path, "src")
    dump(src, tmp_path / "d.json")
    _, tables, end = parse(read_dump(tmp_path / "d.json"))
    assert end["rows"] == 1 and tables["alembic_version"]["rows"] == [{"version_num": HEAD}]
    dst = make(dbs, engine, tmp_path, "dst")
    restore(dst, tmp_path / "d.json")
    assert data_rows(dst) == {t: 0 for t in TABLES if t != "alembic_version"}


# ---- consistency while the server writes ----

class PairWriter(threading.Thread):
    """Inserts a project and its owner link in one transaction, over and over, until stopped."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d = d
        self.stop = threading.Event()
        self.done = 0
        self.error = None

    def pair(self, i):
        return (f"INSERT INTO projectv2 (name, timestamp_created, resource_id) VALUES ('w{i}', '{TS}', 1); "
                "INSERT INTO linkuserprojectv2 (project_id, user_id, is_owner, is_verified, permissions) "
                "VALUES ({last}, 1, TRUE, TRUE, 'rwx');")

    def run(self):
        try:
            if self.d.engine == "sqlite":
                con = sqlite3.connect(self.d.path, timeout=30, isolation_level=None)
                con.execute("PRAGMA foreign_keys = ON")
                i = 0
                while not self.stop.is_set():
                    con.execute("BEGIN IMMEDIATE")
                    a, b = self.pair(i).split("; ", 1)
                    con.execute(a)
                    con.execute(b.format(last="last_insert_rowid()"))
                    con.execute("COMMIT")
                    i += 1
                    self.done = i
                con.close()
            else:
                p = subprocess.Popen([pg_bin("psql"), "-h", PG_SOCKET, "-p", PG_PORT, "-U", "postgres", "-d",
                                      self.d.name, "-qAtX", "-v", "ON_ERROR_STOP=1"],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
                i = 0
                while not self.stop.is_set():
                    p.stdin.write("BEGIN; " + self.pair(i).format(last="currval('projectv2_id_seq')") + " COMMIT;\n")
                    p.stdin.flush()
                    i += 1
                    self.done = i
                    time.sleep(0.002)
                p.stdin.close()
                assert p.wait(timeout=60) == 0, p.stderr.read()
        except Exception as exc:   # reported by the test
            self.error = exc


@pytest.mark.parametrize("engine", ENGINES)
def test_dump_is_consistent_while_the_server_and_others_write(dbs, tmp_path, engine):
    src = make(dbs, engine, tmp_path, "src", schema=False)
    env = init_db(dict(src.env, JWT_SECRET_KEY=JWT_SECRET), src.tmp)
    # enough rows that a dump takes a while: tables are read one after the other
    series = "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < 3000) "
    src.execute(series + "INSERT INTO projectv2 (id, name, timestamp_created, resource_id) "
                f"SELECT x, 'pre' || x, '{TS}', 1 FROM g;\n" +
                series + "INSERT INTO linkuserprojectv2 (project_id, user_id, is_owner, is_verified, permissions) "
                "SELECT x, 1, TRUE, TRUE, 'rwx' FROM g;\n")
    if engine == "postgres":
        src.execute("SELECT setval('projectv2_id_seq', 3000)")
    server = Server(env, src.tmp)
    writer = PairWriter(src)
    registered, failures = [], []

    def register_users():
        try:
            token = server.http.login()
            i = 0
            while not writer.stop.is_set():
                status, user, _ = server.http.post("/auth/register/", token=token, body={
                    "email": f"u{i}@example.org", "password": "abcd", "project_dirs": ["/data"]})
                assert status == 201, user
                registered.append(user["id"])
                i += 1
        except Exception as exc:   # reported by the test
            failures.append(exc)

    reg = threading.Thread(target=register_users, daemon=True)
    try:
        writer.start()
        reg.start()
        seen = []
        for k in range(6):
            out = tmp_path / f"live{k}.json.gz"
            dump(src, out)
            _, t, end = parse(read_dump(out))
            projects = {r["id"] for r in t["projectv2"]["rows"]}
            owned = {r["project_id"] for r in t["linkuserprojectv2"]["rows"] if r["is_owner"]}
            assert projects == owned, f"dump {k}: a project without its link, or the reverse"
            users = {r["id"] for r in t["user_oauth"]["rows"]}
            in_all = {r["user_id"] for r in t["linkusergroup"]["rows"] if r["group_id"] == 1}
            assert users == in_all, f"dump {k}: a user without its default-group link, or the reverse"
            assert sum(len(x["rows"]) for x in t.values()) == end["rows"]
            seen.append((len(projects), len(users)))
            time.sleep(0.05)
    finally:
        writer.stop.set()
        writer.join(timeout=60)
        reg.join(timeout=60)
        assert server.stop() == 0
    assert writer.error is None, writer.error
    assert not failures, failures
    # the writers were busy while we dumped
    assert seen[-1][0] > seen[0][0] and writer.done > 0 and registered
    # and the last live dump loads
    dst = make(dbs, engine, tmp_path, "dst")
    restore(dst, tmp_path / "live5.json.gz")
    assert int(dst.query("SELECT count(*) FROM projectv2")[0][0]) == seen[-1][0]


# ---- refusals: one line, exit 1, the target untouched ----

@pytest.fixture(scope="module")
def good_dump(tmp_path_factory):
    """A populated SQLite database's dump, made once for the refusal tests."""
    tmp = tmp_path_factory.mktemp("good")
    made = []
    src = populated(made, "sqlite", tmp)
    dump(src, tmp / "good.json")
    return read_dump(tmp / "good.json")


def refused(dst, path, *needles):
    before = data_rows(dst)
    r = restore(dst, path, ok=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fractalctl restore: error: "), r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr
    assert "Sanitizer" not in r.stderr
    assert data_rows(dst) == before
    assert dst.query("SELECT version_num FROM alembic_version") == [[HEAD]]
    return r.stderr


@pytest.fixture
def target(dbs, engine, tmp_path):
    return make(dbs, engine, tmp_path, "dst")


def test_good_dump_restores(target, tmp_path, good_dump):
    write(tmp_path / "ok.json", good_dump)
    restore(target, tmp_path / "ok.json")
    assert int(target.query("SELECT count(*) FROM taskv2")[0][0]) == 2


def test_refuses_another_schema_revision(target, tmp_path, good_dump):
    lines = list(good_dump)
    lines[0] = lines[0].replace(HEAD, "0123456789ab")
    lines = [l.replace(f'["{HEAD}"]', '["0123456789ab"]') for l in lines]
    write(tmp_path / "old.json", reseal(lines))
    refused(target, tmp_path / "old.json", "schema revision '0123456789ab'", HEAD)


def test_refuses_another_format_version(target, tmp_path, good_dump):
    lines = list(good_dump)
    lines[0] = lines[0].replace('"format_version":1', '"format_version":2')
    write(tmp_path / "v2.json", reseal(lines))
    refused(target, tmp_path / "v2.json", "format version 2", "reads version 1")


def test_refuses_what_is_not_a_dump(target, tmp_path):
    (tmp_path / "x.json").write_text('{"hello": "world"}\n')
    refused(target, tmp_path / "x.json", "not a fractal-server dump")
    (tmp_path / "empty.json").write_text("")
    refused(target, tmp_path / "empty.json", "is empty")
    (tmp_path / "bin.gz").write_bytes(os.urandom(300))
    refused(target, tmp_path / "bin.gz")


def test_refuses_a_missing_file(target, tmp_path):
    refused(target, tmp_path / "nope.json.gz", "nope.json.gz", "No such file or directory")


def test_refuses_truncated_dumps(target, tmp_path, good_dump):
    write(tmp_path / "noend.json", good_dump[:-1])
    refused(target, tmp_path / "noend.json", "truncated", "end marker")
    text = "".join(l + "\n" for l in good_dump)
    cut = text.index('"table":"jobv2"') + 40
    (tmp_path / "midline.json").write_text(text[:cut])
    refused(target, tmp_path / "midline.json", "truncated")
    (tmp_path / "half").write_text(text[: len(text) // 2].rsplit("\n", 1)[0] + "\n")
    refused(target, tmp_path / "half", "truncated")
    packed = gzip.compress(text.encode())
    (tmp_path / "cut.json.gz").write_bytes(packed[: len(packed) * 2 // 3])
    refused(target, tmp_path / "cut.json.gz", "truncated")


def test_refuses_corrupted_dumps(target, tmp_path, good_dump):
    text = "".join(l + "\n" for l in good_dump)
    # one changed byte in a value: well-formed, but not what was written
    i = text.index("create_zarr")
    (tmp_path / "flip.json").write_text(text[:i] + "C" + text[i + 1:])
    refused(target, tmp_path / "flip.json", "corrupted", "checksum")
    # broken JSON
    i = text.index('"table":"taskv2"')
    (tmp_path / "broken.json").write_text(text[:i] + text[i + 1:])
    refused(target, tmp_path / "broken.json", "corrupted", "not valid JSON")
    # a row of the wrong length
    lines = list(good_dump)
    k = next(n for n, l in enumerate(lines) if l.startswith('{"table":"usergroup"')) + 1
    lines[k] = lines[k][:-1] + ',"extra"]'
    write(tmp_path / "arity.json", reseal(lines))
    refused(target, tmp_path / "arity.json", "corrupted", f"line {k + 1}")
    # something after the end marker
    (tmp_path / "trailing.json").write_text(text + "[1]\n")
    refused(target, tmp_path / "trailing.json", "corrupted", "after its end marker")
    # a damaged gzip stream (its CRC catches what inflate does not)
    packed = bytearray(gzip.compress(text.encode()))
    packed[len(packed) // 2] ^= 0xFF
    (tmp_path / "flip.json.gz").write_bytes(bytes(packed))
    err = refused(target, tmp_path / "flip.json.gz")
    assert "corrupted" in err or "truncated" in err


def test_refuses_a_dump_without_a_table_of_the_schema(target, tmp_path, good_dump):
    lines = list(good_dump)
    k = next(n for n, l in enumerate(lines) if l.startswith('{"table":"accountingrecord"'))
    rows = json.loads(lines[-1])["row_counts"]["accountingrecord"]
    del lines[k: k + 1 + rows]
    end = json.loads(lines[-1])
    del end["row_counts"]["accountingrecord"]
    end["tables"] -= 1
    end["rows"] -= rows
    lines[-1] = json.dumps(end)
    write(tmp_path / "less.json", reseal(lines))
    refused(target, tmp_path / "less.json", "no table accountingrecord")


def test_refuses_a_non_empty_target(target, tmp_path, good_dump):
    write(tmp_path / "ok.json", good_dump)
    init_db(dict(target.env, JWT_SECRET_KEY=JWT_SECRET), target.tmp)
    refused(target, tmp_path / "ok.json", "not empty", "set-db")


def test_a_failing_row_rolls_everything_back(target, tmp_path, good_dump):
    lines = list(good_dump)
    k = next(n for n, l in enumerate(lines) if l.startswith('{"table":"linkusergroup"')) + 1
    row = json.loads(lines[k])
    row[1] = 999   # no such user: the foreign key fails after many tables are already in
    lines[k] = json.dumps(row, ensure_ascii=False)
    write(tmp_path / "fk.json", reseal(lines))
    refused(target, tmp_path / "fk.json", "row 1 of table linkusergroup")
    if target.engine == "postgres":
        # the sequences were not moved either (they are set last)
        assert target.query("SELECT last_value, is_called FROM usergroup_id_seq") == [["1", "f"]]
    else:
        assert target.query("SELECT count(*) FROM sqlite_sequence WHERE seq > 0") == [["0"]]


def test_a_failing_row_inside_a_batch_is_named(target, tmp_path, good_dump):
    """Rows are inserted in batches; the error still names the one row at fault."""
    lines = list(good_dump)
    k = next(n for n, l in enumerate(lines) if l.startswith('{"table":"taskv2"'))
    cols = json.loads(lines[k])["columns"]
    assert lines[k + 2].startswith("[")   # at least two rows: one batch
    row = json.loads(lines[k + 2])
    row[cols.index("taskgroupv2_id")] = 999
    lines[k + 2] = json.dumps(row, ensure_ascii=False)
    write(tmp_path / "fk2.json", reseal(lines))
    refused(target, tmp_path / "fk2.json", "row 2 of table taskv2", f"(line {k + 3})")


def test_refuses_a_target_without_schema(dbs, engine, tmp_path, good_dump):
    d = make(dbs, engine, tmp_path, "bare", schema=False)
    write(tmp_path / "ok.json", good_dump)
    r = restore(d, tmp_path / "ok.json", ok=False)
    assert r.returncode == 1 and "set-db" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_usage_errors(tmp_path):
    r = run(["dump"], env={"SQLITE_PATH": "x.sqlite"}, cwd=tmp_path)
    assert r.returncode == 2 and "the following arguments are required: --output" in r.stderr
    r = run(["restore"], env={"SQLITE_PATH": "x.sqlite"}, cwd=tmp_path)
    assert r.returncode == 2 and "the following arguments are required: FILE" in r.stderr
    r = run(["restore", "a", "b"], env={"SQLITE_PATH": "x.sqlite"}, cwd=tmp_path)
    assert r.returncode == 2 and "unrecognized arguments: b" in r.stderr
    r = run(["restore", "--help"])
    assert r.returncode == 0 and "FILE" in r.stdout and "positional arguments" in r.stdout
    r = run(["dump", "-h"])
    assert r.returncode == 0 and "--output FILE" in r.stdout
    assert not (tmp_path / "x.sqlite").exists()


def test_dump_errors(dbs, engine, tmp_path):
    d = make(dbs, engine, tmp_path, "d")
    r = run(["dump", "--output", str(tmp_path / "missing" / "d.json")], env=d.env, cwd=d.tmp)
    assert r.returncode == 1 and "cannot write" in r.stderr and "No such file or directory" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    bare = make(dbs, engine, tmp_path, "bare", schema=False)
    if engine == "sqlite":
        bare.execute("CREATE TABLE other (x INTEGER)")
    else:
        bare.execute("CREATE TABLE other (x integer)")
    r = run(["dump", "--output", str(tmp_path / "d.json")], env=bare.env, cwd=bare.tmp)
    assert r.returncode == 1 and "not a fractal-server database" in r.stderr
    assert not (tmp_path / "d.json").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("d.json")] == []


def test_dump_refuses_to_overwrite_the_sqlite_database(dbs, tmp_path):
    d = make(dbs, "sqlite", tmp_path, "d")
    before = d.path.read_bytes()
    wal = Path(str(d.path) + "-wal")
    wal.touch()   # the WAL comes and goes with connections: make sure it is there
    for target in (d.path, wal):
        r = run(["dump", "--output", str(target)], env=d.env, cwd=d.tmp)
        assert r.returncode == 1 and "is the database itself" in r.stderr, r.stderr
    assert d.path.read_bytes() == before
    assert d.query("SELECT version_num FROM alembic_version") == [[HEAD]]


def test_dump_refuses_text_that_is_not_utf8(dbs, tmp_path):
    d = make(dbs, "sqlite", tmp_path, "d")
    con = sqlite3.connect(d.path)
    con.execute("INSERT INTO usergroup (id, name, timestamp_created) VALUES (7, CAST(X'61FF62' AS TEXT), 'x')")
    con.commit()
    con.close()
    r = run(["dump", "--output", str(tmp_path / "bad.json")], env=d.env, cwd=d.tmp)
    assert r.returncode == 1
    assert "table usergroup, column name holds text that is not valid UTF-8 (row id=7)" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("bad.json")]


# ---- docs/database.md: every command in it runs here ----

DOC = ROOT / "docs" / "database.md"


def doc_blocks(lang):
    return re.findall(r"```" + lang + r"\n(.*?)```", DOC.read_text(), re.S)


def doc_commands():
    """Every command line of the guide's sh blocks (comments and continuation joined)."""
    out = []
    for block in doc_blocks("sh"):
        for line in re.sub(r"\s*\\\n\s*", " ", block).splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def doc_env(index, sock_host=True):
    """The guide's settings blocks, pointed at the test cluster."""
    text = doc_blocks("ini")[index]
    text = text.replace("/var/run/postgresql", PG_SOCKET or "").replace("5432", PG_PORT)
    if "POSTGRES" in text and "POSTGRES_PORT" not in text:
        text += f"POSTGRES_PORT={PG_PORT}\n"
    return text


def doc_run(cmd, cwd, env=None, role="fractal_server"):
    """Runs one command of the guide as written, but for where things are: fractalctl is the binary under test;
    PostgreSQL's tools reach the test cluster (as its superuser for `sudo -u postgres`, else as the guide's
    role, as peer authentication would)."""
    line = cmd
    user = role
    if line.startswith("sudo -u postgres "):
        line = line[len("sudo -u postgres "):]
        user = "postgres"
    tool = line.split()[0]
    if tool in ("psql", "pg_dump", "pg_restore", "createdb", "createuser", "dropdb"):
        line = f"{pg_bin(tool)} -h {PG_SOCKET} -p {PG_PORT} -U {user} " + line[len(tool) + 1:]
    line = re.sub(r"(^|\s|&&\s)fractalctl\b", lambda m: m.group(1) + FRACTALCTL, line)
    full = base_env()
    full.update(env or {})
    r = subprocess.run(["bash", "-c", line], cwd=cwd, env=full, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r


# commands of the guide run otherwise than through doc_run (a server is a Server here)
EXERCISED_OTHERWISE = {"fractalctl start"}


def test_every_docs_command_is_exercised():
    tree = ast.parse(Path(__file__).read_text())
    ran = {n.args[0].value for n in ast.walk(tree) if isinstance(n, ast.Call)
           and getattr(n.func, "id", None) == "doc_run" and n.args and isinstance(n.args[0], ast.Constant)}
    missing = [c for c in doc_commands() if c not in ran and c not in EXERCISED_OTHERWISE]
    assert not missing, missing
    unused = [c for c in ran if c not in doc_commands()]
    assert not unused, unused


def test_docs_sqlite(tmp_path):
    (tmp_path / ".fractal_server.env").write_text(doc_env(0) + f"JWT_SECRET_KEY={JWT_SECRET}\n")
    doc_run("mkdir -p db", tmp_path)
    r = doc_run("fractalctl set-db", tmp_path)
    assert str(tmp_path / "db" / "fractal.sqlite") in r.stdout
    r = doc_run("DB_ECHO=true fractalctl set-db", tmp_path)
    assert "db.echo" in r.stderr + r.stdout and "SELECT" in r.stderr + r.stdout
    doc_run("fractalctl init-db-data --resource default --profile default "
            "--admin-email admin@example.org --admin-pwd 'change-me' --admin-project-dir /data/admin", tmp_path)
    doc_run("mkdir -p backups", tmp_path)
    doc_run('fractalctl dump --output "backups/fractal-$(date +%F).json.gz"', tmp_path)
    assert len(list((tmp_path / "backups").glob("fractal-*.json.gz"))) == 1
    doc_run("fractalctl dump --output fractal-backup.json", tmp_path)
    # checking a backup: restore it into a scratch SQLite database
    doc_run("DB_ENGINE=sqlite SQLITE_PATH=/tmp/fractal-check.sqlite fractalctl set-db", tmp_path)
    try:
        r = doc_run("DB_ENGINE=sqlite SQLITE_PATH=/tmp/fractal-check.sqlite fractalctl restore fractal-backup.json",
                    tmp_path)
        assert "restored 22 tables" in r.stdout
    finally:
        doc_run("rm -f /tmp/fractal-check.sqlite*", tmp_path)
    assert not list(Path("/tmp").glob("fractal-check.sqlite*"))


@pytest.fixture
def doc_cluster():
    """The guide's PostgreSQL role and databases, removed afterwards."""
    if not PG_SOCKET:
        pytest.fail("PGTEST_SOCKET is not set: run the tests through scripts/test.sh")

    def clean():
        for name in ("fractal", "fractal_copy"):
            psql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        psql("postgres", "DROP ROLE IF EXISTS fractal_server")

    clean()
    yield
    clean()


def test_docs_postgres_setup_backup_and_pg_dump(tmp_path, doc_cluster):
    doc_run("sudo -u postgres createuser --no-superuser --no-createdb --no-createrole fractal_server", tmp_path)
    doc_run("sudo -u postgres psql -c \"ALTER ROLE fractal_server PASSWORD 'change-me'\"", tmp_path)
    doc_run("sudo -u postgres createdb --owner=fractal_server fractal", tmp_path)
    # over the UNIX socket
    (tmp_path / ".fractal_server.env").write_text(doc_env(1) + f"JWT_SECRET_KEY={JWT_SECRET}\n")
    r = doc_run("fractalctl set-db", tmp_path)
    assert "applied migration" in r.stdout
    doc_run("fractalctl init-db-data --resource default --profile default "
            "--admin-email admin@example.org --admin-pwd 'change-me' --admin-project-dir /data/admin", tmp_path)
    # over TCP, with the password
    (tmp_path / ".fractal_server.env").write_text(doc_env(2) + f"JWT_SECRET_KEY={JWT_SECRET}\n")
    assert "127.0.0.1" in doc_env(2) or "localhost" in doc_env(2)
    r = doc_run("fractalctl set-db", tmp_path)
    assert "already at the newest revision" in r.stdout
    doc_run("fractalctl dump --output fractal-backup.json", tmp_path)
    # PostgreSQL's own tools
    doc_run("pg_dump --format=custom --file=fractal.pgdump fractal", tmp_path)
    doc_run("sudo -u postgres createdb --owner=fractal_server fractal_copy", tmp_path)
    doc_run("pg_restore --no-owner --dbname=fractal_copy fractal.pgdump", tmp_path)
    assert psql("fractal_copy", "SELECT email FROM user_oauth") == [["admin@example.org"]]
    assert psql("fractal_copy", "SELECT version_num FROM alembic_version") == [[HEAD]]
    # fractalctl's own dump restores into the other engine
    (tmp_path / ".fractal_server.env").write_text(doc_env(0) + f"JWT_SECRET_KEY={JWT_SECRET}\n")
    doc_run("mkdir -p db", tmp_path)
    doc_run("fractalctl set-db", tmp_path)
    r = doc_run("fractalctl restore fractal-backup.json", tmp_path)
    assert "into SQLite database" in r.stdout
    assert sqlite3.connect(tmp_path / "db" / "fractal.sqlite").execute(
        "SELECT email FROM user_oauth").fetchall() == [("admin@example.org",)]


def test_docs_moving_from_sqlite_to_postgres(tmp_path, doc_cluster):
    # before: a server on SQLite with data
    (tmp_path / ".fractal_server.env").write_text(doc_env(0) + f"JWT_SECRET_KEY={JWT_SECRET}\n"
                                                  "FRACTAL_DEFAULT_GROUP_NAME=All\n")
    (tmp_path / "db").mkdir()
    env = init_db({}, tmp_path)
    s = Server(env, tmp_path)
    token = s.http.login()
    assert s.http.post("/auth/register/", token=token, body={
        "email": "moved@example.org", "password": "abcd", "project_dirs": ["/data"]})[0] == 201
    assert s.stop() == 0                                            # 1. stop the server
    doc_run("fractalctl dump --output fractal-move.json.gz", tmp_path)  # 2. dump
    doc_run("sudo -u postgres createuser --no-superuser --no-createdb --no-createrole fractal_server", tmp_path)
    doc_run("sudo -u postgres createdb --owner=fractal_server fractal", tmp_path)
    settings = doc_env(1)
    (tmp_path / ".fractal_server.env").write_text(settings + f"JWT_SECRET_KEY={JWT_SECRET}\n"
                                                  "FRACTAL_DEFAULT_GROUP_NAME=All\n")
    doc_run("fractalctl set-db", tmp_path)                           # 3. schema
    r = doc_run("fractalctl restore fractal-move.json.gz", tmp_path)  # 4. data
    assert "into PostgreSQL database 'fractal'" in r.stdout
    s = Server({}, tmp_path)                                        # 5. start on PostgreSQL
    try:
        s.http.login("moved@example.org", "abcd")
    finally:
        assert s.stop() == 0
    # and back, the same way
    assert run(["dump", "--output", "fractal-move-back.json"], cwd=tmp_path).returncode == 0
    (tmp_path / ".fractal_server.env").write_text(doc_env(0).replace("db/fractal.sqlite", "db/back.sqlite")
                                                  + f"JWT_SECRET_KEY={JWT_SECRET}\n")
    assert run(["set-db"], cwd=tmp_path).returncode == 0
    r = run(["restore", "fractal-move-back.json"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sqlite3.connect(tmp_path / "db" / "back.sqlite").execute(
        "SELECT count(*) FROM user_oauth").fetchone() == (2,)
