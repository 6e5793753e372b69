"""Black-box test harness: runs the real fractalctl binary on both engines.

Environment (set by scripts/test.sh):
  FRACTALCTL        the binary under test (default: build/fractalctl)
  PGTEST_SOCKET     the throwaway PostgreSQL cluster's UNIX-socket folder
  PGTEST_PORT       its port
  SLURM_CONF, SLURMTEST_DIR, SLURMTEST_USER, SLURMTEST_PARTITION
                    the throwaway SLURM cluster (tests/slurm_cluster.sh): its
                    config, folder, unprivileged user and partition
Every test that takes the `engine` fixture runs once on SQLite and once on
PostgreSQL, each with a fresh database.
"""
import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import openapi_check

ROOT = Path(__file__).resolve().parent.parent
FRACTALCTL = os.environ.get("FRACTALCTL", str(ROOT / "build" / "fractalctl"))
PG_SOCKET = os.environ.get("PGTEST_SOCKET")
PG_PORT = os.environ.get("PGTEST_PORT", "5432")
PG_USER = "fractal"
PG_PASSWORD = "fractal-test-pw"
JWT_SECRET = "test-jwt-secret-not-for-production"
ADMIN_EMAIL = "admin@example.org"
ADMIN_PWD = "1234"

_db_counter = itertools.count()


def pg_bin(name):
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(found[-1]) if found else name


def psql(dbname, sql, user="postgres"):
    """Runs SQL as the cluster superuser (over the socket); returns rows."""
    out = subprocess.run(
        [pg_bin("psql"), "-h", PG_SOCKET, "-p", PG_PORT, "-U", user, "-d", dbname,
         "-qAtX", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True, text=True, check=True)
    return [line.split("\t") for line in out.stdout.splitlines()]


class Database:
    """A fresh database of one engine, and the settings that reach it."""

    def __init__(self, engine, tmp_path):
        self.engine = engine
        self.tmp = tmp_path
        if engine == "sqlite":
            self.path = tmp_path / "fractal.sqlite"
            self.env = {"DB_ENGINE": "sqlite", "SQLITE_PATH": str(self.path)}
        else:
            if not PG_SOCKET:
                pytest.fail("PGTEST_SOCKET is not set: run the tests through scripts/test.sh")
            self.name = f"fractal_test_{os.getpid()}_{next(_db_counter)}"
            psql("postgres", f'CREATE DATABASE "{self.name}" OWNER {PG_USER}')
            self.env = {
                "DB_ENGINE": "postgres",
                "POSTGRES_HOST": "127.0.0.1",
                "POSTGRES_PORT": PG_PORT,
                "POSTGRES_USER": PG_USER,
                "POSTGRES_PASSWORD": PG_PASSWORD,
                "POSTGRES_DB": self.name,
            }

    def query(self, sql):
        """Rows of a query, as lists of strings (None for NULL)."""
        if self.engine == "sqlite":
            con = sqlite3.connect(self.path)
            try:
                rows = con.execute(sql).fetchall()
            finally:
                con.close()
            return [[None if v is None else str(v) for v in r] for r in rows]
        rows = psql(self.name, sql)
        return [[None if v == "" else v for v in r] for r in rows]

    def execute(self, sql):
        if self.engine == "sqlite":
            con = sqlite3.connect(self.path)
            try:
                con.executescript(sql)
                con.commit()
            finally:
                con.close()
        else:
            psql(self.name, sql)

    def drop(self):
        if self.engine == "postgres":
            psql("postgres", f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def base_env():
    """The process environment without any setting that could leak in."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith(("FRACTAL_", "POSTGRES_", "DB_", "SQLITE_", "JWT_", "OAUTH_", "COOKIE_"))
                   or k == "LOG_CONFIG_FILE")}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


def run(args, env=None, cwd=None, timeout=60, as_user=None):
    """Runs fractalctl with args; returns the CompletedProcess (text)."""
    full = base_env()
    full.update(env or {})
    cmd = [FRACTALCTL] + list(args)
    if as_user:
        cmd = ["runuser", "-u", as_user, "--"] + cmd
    return subprocess.run(cmd, env=full, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    """A minimal JSON client for the server under test."""

    def __init__(self, base):
        self.base = base
        self.token = None

    def request(self, method, path, body=None, form=None, token=None, headers=None, raw=None):
        url = self.base + path
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif raw is not None:
            data = raw
        tok = token if token is not None else self.token
        if tok:
            hdrs["Authorization"] = f"Bearer {tok}"
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=30) as r:
                status, text, rh = r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            status, text, rh = e.code, e.read().decode(), dict(e.headers)
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text
        openapi_check.check(FRACTALCTL, method, path, body, status, parsed, text, rh)
        return status, parsed, rh

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def login(self, email=ADMIN_EMAIL, password=ADMIN_PWD):
        status, body, _ = self.post("/auth/token/login/", form={"username": email, "password": password})
        assert status == 200, body
        return body["access_token"]


class Server:
    """fractalctl start on a free port, stopped with SIGTERM at teardown."""

    def __init__(self, env, cwd):
        self.env = env
        self.cwd = cwd
        self.port = free_port()
        self.log = open(Path(cwd) / f"server-{self.port}.log", "w+")
        full = base_env()
        full.update(env)
        self.proc = subprocess.Popen([FRACTALCTL, "start", "--port", str(self.port)], env=full, cwd=cwd,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.http = Http(f"http://127.0.0.1:{self.port}")
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}: {self.output()}")
            try:
                if self.http.get("/api/alive/")[0] == 200:
                    return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("server did not answer within 20 s: " + self.output())

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self, sig=signal.SIGTERM):
        """Stops the server; returns its exit code and asserts no sanitizer report."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("server did not stop within 30 s of the signal")
        out = self.output()
        assert "Sanitizer" not in out and "runtime error" not in out, out
        return self.proc.returncode


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request):
    return request.param


@pytest.fixture
def db(engine, tmp_path):
    d = Database(engine, tmp_path)
    yield d
    d.drop()


@pytest.fixture
def env(db):
    """Settings for a fresh database, with a JWT secret."""
    e = dict(db.env)
    e["JWT_SECRET_KEY"] = JWT_SECRET
    return e


def init_db(env, cwd, default_group=True):
    e = dict(env)
    if default_group:
        e["FRACTAL_DEFAULT_GROUP_NAME"] = "All"
    r = run(["set-db"], env=e, cwd=cwd)
    assert r.returncode == 0, r.stderr
    r = run(["init-db-data", "--resource", "default", "--profile", "default", "--admin-email", ADMIN_EMAIL,
             "--admin-pwd", ADMIN_PWD, "--admin-project-dir", str(cwd)], env=e, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return e


@pytest.fixture
def server(env, tmp_path):
    """A running server on a fresh, initialised database (with an admin)."""
    e = init_db(env, tmp_path)
    s = Server(e, tmp_path)
    yield s
    assert s.stop() == 0, s.output()


class Slurm:
    """The single-node SLURM cluster of tests/slurm_cluster.sh, and its unprivileged user."""

    def __init__(self):
        self.dir = Path(os.environ["SLURMTEST_DIR"])
        self.conf = os.environ["SLURM_CONF"]
        self.user = os.environ["SLURMTEST_USER"]
        self.partition = os.environ["SLURMTEST_PARTITION"]

    def run(self, *args, timeout=60):
        """Runs a command as the user, as the SLURM executor does (sudo keeps SLURM_CONF)."""
        return subprocess.run(["sudo", "--set-home", "--non-interactive", "-u", self.user, *args],
                              capture_output=True, text=True, timeout=timeout)

    def workdir(self, name):
        """A fresh folder the user owns, inside the cluster's folder (removed with it)."""
        d = self.dir / "work" / name
        d.mkdir(parents=True)
        shutil.chown(d, self.user, self.user)
        return d

    def state(self, job_id):
        """The job's state in the accounting database (sacct, as the user); '' before it is recorded."""
        r = self.run("sacct", "-n", "-X", "-P", "-o", "State", "-j", str(job_id))
        assert r.returncode == 0, r.stderr
        return r.stdout.split("\n")[0].strip()

    def restart_ctld(self):
        r = subprocess.run(["bash", str(ROOT / "tests" / "slurm_cluster.sh"), "restart-ctld", str(self.dir)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr


@pytest.fixture(scope="session")
def slurm():
    if not os.environ.get("SLURMTEST_DIR"):
        pytest.fail("SLURMTEST_DIR is not set: run the tests through scripts/test.sh")
    return Slurm()


@pytest.fixture(scope="session")
def spec_dir():
    # beside the checkout, or where FRACTAL_SPEC_DIR says (a git worktree)
    d = Path(os.environ.get("FRACTAL_SPEC_DIR") or ROOT.parent / "shared" / "spec")
    return d if d.is_dir() else None


def pytest_terminal_summary(terminalreporter):
    if openapi_check.ENABLED and openapi_check.stats["checked"]:
        terminalreporter.write_line("OpenAPI: %(checked)d answers and %(requests)d accepted request bodies checked "
                                    "against /openapi.json in %(seconds).2f s" % openapi_check.stats)
