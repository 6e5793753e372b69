"""Crash safety (issue 19): a server killed with SIGKILL in the middle of
concurrent writes and of a running job loses no acknowledged write, leaves
the database intact, and the next start leaves nothing running and no job
'submitted'. See docs/security.md, "How the hardening is proven"."""
import os
import signal
import threading
import time
from pathlib import Path

from conftest import Http, Server, init_db, psql
from test_jobs import job_row, live_processes, running_sleepy_job

WRITERS = 4
RESTART_LINE = ("Job marked as failed at server start-up: it was still 'submitted' when the previous server "
                "process stopped, so its execution was interrupted.")


class Writer(threading.Thread):
    """Creates projects, renames them and adds images to a dataset of its own, one request at a time, until the
    server goes away; keeps what each acknowledged write left and the one request in flight when it did."""

    def __init__(self, n, base, token, tmp_path):
        super().__init__(daemon=True)
        self.n, self.api = n, Http(base)
        self.api.token = token
        self.tmp = tmp_path
        self.names = {}      # project id -> its name as last acknowledged
        self.images = []     # acknowledged zarr_urls, in order
        self.pending = None  # (kind, key, value) of the request the kill cut, if any
        self.acks = 0
        self.error = None
        self.dataset = None  # (project id, dataset id, zarr_dir) once created

    def call(self, kind, key, value, method, path, body):
        self.pending = (kind, key, value)
        status, b, _ = self.api.request(method, path, body=body)
        self.pending = None
        self.acks += 1
        return status, b

    def run(self):
        try:
            s, p = self.call("create", None, f"w{self.n}", "POST", "/api/v2/project/", {"name": f"w{self.n}"})
            assert s == 201, p
            self.names[p["id"]] = p["name"]
            s, ds = self.call("setup", None, None, "POST", f"/api/v2/project/{p['id']}/dataset/",
                              {"name": "ds", "project_dir": str(self.tmp), "zarr_subfolder": f"w{self.n}"})
            assert s == 201, ds
            self.dataset = (p["id"], ds["id"], ds["zarr_dir"])
            i = 0
            while True:
                i += 1
                name = f"w{self.n}-{i}"
                s, p = self.call("create", None, name, "POST", "/api/v2/project/", {"name": name})
                assert s == 201, p
                self.names[p["id"]] = name
                new = f"{name}-renamed"
                s, b = self.call("rename", p["id"], new, "PATCH", f"/api/v2/project/{p['id']}/", {"name": new})
                assert s == 200, b
                self.names[p["id"]] = new
                url = f"{self.dataset[2]}/img{i}"
                s, b = self.call("image", None, url, "POST",
                                 f"/api/v2/project/{self.dataset[0]}/dataset/{self.dataset[1]}/images/",
                                 {"zarr_url": url})
                assert s == 201, b
                self.images.append(url)
        except OSError:
            pass  # the server was killed: the request in flight stays in self.pending
        except Exception as e:  # an answer that was not the expected one
            self.error = e
            self.pending = None


def integrity(db):
    """The engine's own consistency checks: SQLite's integrity_check; on PostgreSQL amcheck's checks of every
    table's heap and every btree index of the database."""
    if db.engine == "sqlite":
        assert db.query("PRAGMA integrity_check") == [["ok"]]
        assert db.query("PRAGMA foreign_key_check") == []
        return
    psql(db.name, "CREATE EXTENSION IF NOT EXISTS amcheck")
    rels = psql(db.name, "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                         "WHERE n.nspname = 'public' AND c.relkind = 'r'")
    assert rels
    for (oid,) in rels:
        assert psql(db.name, f"SELECT * FROM verify_heapam({oid})") == [], oid
    idx = psql(db.name, "SELECT c.oid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                        "JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE a.amname = 'btree' AND n.nspname = 'public'")
    assert idx
    for (oid,) in idx:
        psql(db.name, f"SELECT bt_index_check({oid}, true)")  # raises (psql fails) on corruption


def test_kill_9_during_writes_and_a_job(env, db, tmp_path):
    e = init_db(env, tmp_path)
    s = Server(e, tmp_path)
    writers = []
    try:
        api = s.http
        api.token = api.login()
        # a job whose task sleeps 60 s, on the local runner
        pid, job, working_dir, task_pids = running_sleepy_job(api, db, tmp_path)
        assert list(Path(working_dir).glob(".fractal-pgid-*"))
        # the write loop, then SIGKILL in the middle of it
        writers = [Writer(n, api.base, api.token, tmp_path) for n in range(WRITERS)]
        for w in writers:
            w.start()
        deadline = time.time() + 20
        while sum(w.acks for w in writers) < 60 and time.time() < deadline:
            time.sleep(0.02)
        s.stop(signal.SIGKILL)
        for w in writers:
            w.join(timeout=35)
            assert not w.is_alive()
            assert w.error is None, w.error
        assert sum(w.acks for w in writers) >= 8 * WRITERS  # enough to have writes in flight at the kill
        assert live_processes("generic_task.py", working_dir) == task_pids  # orphaned by the kill

        s = Server(e, tmp_path)
        api = s.http
        api.token = api.login()
        # nothing left running, no job left 'submitted'
        assert live_processes("generic_task.py", working_dir) == []
        assert not list(Path(working_dir).glob(".fractal-pgid-*"))
        assert db.query("SELECT count(*) FROM jobv2 WHERE status = 'submitted'") == [["0"]]
        status, log = job_row(db, job["id"])
        assert status == "failed" and log.splitlines()[-1] == RESTART_LINE, log
        assert api.get(f"/api/v2/project/{pid}/job/{job['id']}/")[1]["status"] == "failed"

        integrity(db)
        # every acknowledged write is there (the one request in flight per writer may or may not be)
        stored = dict(db.query("SELECT id, name FROM projectv2"))
        for w in writers:
            for project_id, name in w.names.items():
                ok = {name}
                if w.pending and w.pending[0] == "rename" and w.pending[1] == project_id:
                    ok.add(w.pending[2])
                assert stored.get(str(project_id)) in ok, (project_id, name, w.pending)
            if not w.dataset:
                continue
            listed = api.post(f"/api/v2/project/{w.dataset[0]}/dataset/{w.dataset[1]}/images/query/",
                              body={})[1]["items"]
            urls = [i["zarr_url"] for i in listed]
            if w.pending and w.pending[0] == "image" and urls and urls[-1] == w.pending[2]:
                urls.pop()
            assert urls == w.images
        # nothing acknowledged as new is missing, and nothing unacknowledged appeared besides the in-flight ones
        created = {n for w in writers for n in w.names.values()}
        pending = {w.pending[2] for w in writers if w.pending and w.pending[0] in ("create", "rename")}
        extra = set(stored.values()) - created - {"p"} - pending
        assert extra == set(), extra
        # the API reads the same rows, and the server still writes
        assert sorted(p["name"] for p in api.get("/api/v2/project/")[1]) == sorted(stored.values())
        assert api.post("/api/v2/project/", body={"name": "after"})[0] == 201
    finally:
        for p in live_processes("generic_task.py", str(tmp_path)):
            os.kill(p, signal.SIGKILL)
        assert s.stop() == 0, s.output()
