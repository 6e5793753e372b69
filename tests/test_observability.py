"""Observability: the access and slow-response lines, LOG_CONFIG_FILE,
/metrics and its guard, and serving on a UNIX socket (docs/operations.md).

The access lines wait up to 100 ms in a buffer (util/log.h), so the tests
poll for them."""
import http.client
import os
import re
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import FRACTALCTL, Server, base_env, free_port, init_db, run


def wait_for(read, pattern, timeout=3.0):
    """The first match of pattern in read() within timeout, else None."""
    deadline = time.time() + timeout
    while True:
        m = re.search(pattern, read(), re.M)
        if m or time.time() > deadline:
            return m
        time.sleep(0.05)


def admin_token(s):
    return s.http.login()


def metrics(http, token):
    status, text, headers = http.get("/metrics", token=token)
    assert status == 200, text
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(text)


def samples(text):
    """{(name, frozenset(labels)): value} of every sample, via the client's own parser."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for smp in fam.samples:
            out[(smp.name, frozenset(smp.labels.items()))] = smp.value
    return out


def value(m, name, **labels):
    return m.get((name, frozenset(labels.items())), 0)


def test_one_access_line_per_request(server):
    token = admin_token(server)
    server.http.get("/api/v2/project/?x=1&y=two", token=token)
    server.http.get("/api/nothing-here/")
    server.http.get("/api/alive/")
    line = r'^\S+ \S+ - uvicorn\.access - INFO - 127\.0\.0\.1:\d+ - "%s HTTP/1\.1" %s [\d.]+ms$'
    assert wait_for(server.output, line % (r"GET /api/v2/project/\?x=1&y=two", "200 OK")), server.output()
    assert wait_for(server.output, line % ("GET /api/nothing-here/", "404 Not Found")), server.output()
    assert wait_for(server.output, line % ("POST /auth/token/login/", "200 OK")), server.output()
    alive = re.findall(line % ("GET /api/alive/", "200 OK"), server.output(), re.M)
    assert len(alive) >= 2  # the fixture's readiness poll, and ours


def test_slow_request_line_and_its_exemptions(env, tmp_path):
    e = init_db(env, tmp_path)
    e["FRACTAL_LONG_REQUEST_TIME"] = "0"  # every request is slow
    s = Server(e, tmp_path)
    try:
        token = admin_token(s)
        s.http.get("/api/v2/project/1/?a=b", token=token)
        # upstream's _endpoint_has_background_task: no line for these
        s.http.post("/api/v2/task-group/1/deactivate/", token=token)
        s.http.post("/api/v2/task/collect/pip/", token=token)
        s.http.post("/api/v2/project/1/job/submit/?workflow_id=1&dataset_id=1", token=token, body={})
        # ... but "core" in a task-group path is not exempt
        s.http.post("/admin/v2/task-group/1/make-core/", token=token)
        iso = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}"
        slow = r"- slow-response - WARNING - %s, (\d{3}), (\d+\.\d\d), " + iso + ", " + iso + "$"
        m = wait_for(s.output, slow % re.escape("GET /api/v2/project/{project_id}/?a=b"))
        assert m and m.group(1) == "404", s.output()
        assert wait_for(s.output, slow % re.escape("POST /admin/v2/task-group/{task_group_id}/make-core/?")), s.output()
        assert wait_for(s.output, slow % re.escape("POST /auth/token/login/?")), s.output()
        out = s.output()
        for exempt in ("deactivate", "collect/pip", "job/submit"):
            assert not re.search(r"slow-response.*%s" % exempt, out), out
        # the requests themselves were answered and logged
        assert wait_for(s.output, r'"POST /api/v2/task/collect/pip/ HTTP/1.1" 422 Unprocessable')
    finally:
        assert s.stop() == 0, s.output()


LOG_CONFIG = """\
version: 1
disable_existing_loggers: false
formatters:
  short:
    format: "%(levelname)s|%(name)s|%(message)s"
  access:
    "()": uvicorn.logging.AccessFormatter
    fmt: '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'
handlers:
  app:
    class: logging.FileHandler
    filename: {app}
    formatter: short
  access:
    class: logging.FileHandler
    filename: {access}
    mode: w
    formatter: access
loggers:
  fractalctl:
    level: INFO
  uvicorn.access:
    level: INFO
    handlers: [access]
    propagate: false
root:
  level: WARNING
  handlers: [app]
"""


def test_log_config_file_levels_files_and_formats(env, tmp_path):
    app, access = tmp_path / "app.log", tmp_path / "access.log"
    conf = tmp_path / "logging.yaml"
    conf.write_text(LOG_CONFIG.format(app=app, access=access))
    e = init_db(env, tmp_path)
    e.update({"LOG_CONFIG_FILE": str(conf), "FRACTAL_LONG_REQUEST_TIME": "0",
              "FRACTAL_LOGGING_LEVEL": "10"})  # a no-op under a configuration file, as upstream's
    s = Server(e, tmp_path)
    try:
        token = admin_token(s)
        s.http.get("/api/v2/project/?q=1", token=token)
        read = lambda p: p.read_text() if p.exists() else ""  # noqa: E731
        assert wait_for(lambda: read(access), r'^INFO:     127\.0\.0\.1:\d+ - "GET /api/v2/project/\?q=1 HTTP/1\.1" '
                                              r'200 OK$'), read(access)
        # fractalctl at INFO (its own level), slow-response at WARNING (the root's)
        assert wait_for(lambda: read(app), r"^INFO\|fractalctl\|Start fractal-server 2\.24\.2 on "), read(app)
        assert wait_for(lambda: read(app), r"^WARNING\|slow-response\|GET /api/v2/project/\?q=1, 200, "), read(app)
    finally:
        assert s.stop() == 0, s.output()
    text = app.read_text()
    assert "lifespan.startup" not in text  # its INFO START line is below the root's WARNING
    assert "DEBUG" not in text and "Fractal Settings" not in text
    assert "uvicorn.access" not in text and "HTTP/1.1" not in text  # propagate: false
    assert "Shutdown complete" in text
    # the built-in stream handlers are gone
    out = s.output()
    assert "Start fractal-server" not in out and "uvicorn.access" not in out and "HTTP/1.1" not in out, out


def test_settings_logged_at_debug_with_secrets_masked(env, tmp_path):
    e = init_db(env, tmp_path)
    e["FRACTAL_LOGGING_LEVEL"] = "10"
    s = Server(e, tmp_path)
    assert s.stop() == 0
    out = s.output()
    assert "- lifespan.startup - INFO - START (fractal-server 2.24.2)" in out
    assert "- lifespan.startup - DEBUG - Fractal Settings:" in out
    assert "- lifespan.startup - DEBUG -   JWT_SECRET_KEY: *****" in out
    assert "- lifespan.startup - DEBUG -   FRACTAL_LOGGING_LEVEL: 10" in out
    assert e["JWT_SECRET_KEY"] not in out
    if "POSTGRES_PASSWORD" in e:
        assert "POSTGRES_PASSWORD: *****" in out and e["POSTGRES_PASSWORD"] not in out


BAD_CONFIGS = [
    ("version: 1\nhandlers: {h: {class: logging.handlers.TimedRotatingFileHandler, filename: /tmp/x.log}}\n",
     "the handler class 'logging.handlers.TimedRotatingFileHandler' is not supported"),
    ('version: 1\nformatters: {f: {format: "%(asctime)s %(color)s"}}\n', "the field %(color) is not supported"),
    ("version: 1\nfilters: {only: {name: x}}\n", "filters are not supported"),
    ("version: 1\nroot: {level: LOUD}\n", "Unknown level: 'LOUD'"),
    ("version: 1\nloggers: {a: {handlers: [nowhere]}}\n", "the handler 'nowhere' is not defined"),
    ("handlers: {}\n", "doesn't specify a version"),
    ("version: 1\nhandlers: [\n", "not valid YAML or JSON"),
    ('{"version": 1, "handlers": {"s": {"class": "logging.StreamHandler", "stream": "ext://sys.stdin"}}}',
     "stream 'ext://sys.stdin' is not supported"),
]


@pytest.mark.parametrize("text,why", BAD_CONFIGS)
def test_a_bad_log_config_stops_the_start(env, tmp_path, text, why):
    conf = tmp_path / "logging.yaml"
    conf.write_text(text)
    r = run(["start", "--port", str(free_port())], env={**env, "LOG_CONFIG_FILE": str(conf)}, cwd=tmp_path,
            timeout=20)
    assert r.returncode == 1, r
    assert f"fractalctl start: error: LOG_CONFIG_FILE={conf}: " in r.stderr and why in r.stderr, r.stderr


def test_metrics_are_off_by_default(server):
    assert server.http.get("/metrics", token=admin_token(server))[:2] == (404, {"detail": "Not Found"})
    assert server.http.get("/metrics")[:2] == (404, {"detail": "Not Found"})


def test_metrics_guard_and_counters(env, tmp_path, db):
    e = init_db(env, tmp_path)
    e["FRACTAL_ENABLE_METRICS"] = "true"
    s = Server(e, tmp_path)
    try:
        http = s.http
        admin = admin_token(s)
        assert http.get("/metrics")[:2] == (401, {"detail": "Unauthorized"})
        status, u, _ = http.post("/auth/register/", token=admin, body={"email": "plain@example.org", "password": "abcd",
                                                                     "project_dirs": ["/d"]})
        assert status == 201
        plain = http.login("plain@example.org", "abcd")
        assert http.get("/metrics", token=plain)[:2] == (403, {"detail": "Forbidden"})

        before = metrics(http, admin)
        for _ in range(3):
            assert http.get("/api/alive/")[0] == 200
        http.get("/api/v2/project/9999/", token=admin)
        pid = http.post("/api/v2/project/", body={"name": "p"}, token=admin)[1]["id"]
        ds = http.post(f"/api/v2/project/{pid}/dataset/", body={"name": "d"}, token=admin)[1]
        base = f"/api/v2/project/{pid}/dataset/{ds['id']}/images"
        for i in range(5):
            assert http.post(f"{base}/", body={"zarr_url": f"{ds['zarr_dir']}/img{i}"}, token=admin)[0] == 201
        assert http.post(f"{base}/query/", body={}, token=admin)[0] == 200
        after = metrics(http, admin)

        alive = {"method": "GET", "route": "/api/alive/", "status": "200"}
        assert value(after, "fractal_http_requests_total", **alive) - value(before, "fractal_http_requests_total",
                                                                             **alive) == 3
        missing = {"method": "GET", "route": "/api/v2/project/{project_id}/", "status": "404"}
        assert value(after, "fractal_http_requests_total", **missing) == 1
        added = {"method": "POST", "route": "/api/v2/project/{project_id}/dataset/{dataset_id}/images/", "status": "201"}
        assert value(after, "fractal_http_requests_total", **added) == 5
        assert value(after, "fractal_http_request_duration_seconds_count", **added) == 5
        assert value(after, "fractal_http_request_duration_seconds_bucket", le="+Inf", **added) == 5
        assert value(after, "fractal_http_request_duration_seconds_sum", **added) > 0
        # the scrape before this one was counted, under its own route
        assert value(after, "fractal_http_requests_total", method="GET", route="/metrics", status="200") >= 1
        assert value(after, "fractal_http_requests_total", method="GET", route="/metrics", status="401") == 1
        for st in ("submitted", "done", "failed"):
            assert (("fractal_jobs", frozenset({("status", st)})) in after)
        for st in ("pending", "ongoing", "OK", "failed"):
            assert (("fractal_task_group_activities", frozenset({("status", st)})) in after)
        assert value(after, "fractal_db_connections", engine=db.engine) >= 1
        assert value(after, "fractal_image_cache_entries") == 1
        assert value(after, "fractal_image_cache_bytes") > 5 * len(ds["zarr_dir"])
        assert value(after, "process_resident_memory_bytes") > 1 << 20
    finally:
        assert s.stop() == 0, s.output()


def test_metrics_on_their_own_address(env, tmp_path):
    e = init_db(env, tmp_path)
    mport = free_port()
    e.update({"FRACTAL_ENABLE_METRICS": "true", "FRACTAL_METRICS_ADDRESS": f"127.0.0.1:{mport}"})
    s = Server(e, tmp_path)
    try:
        admin = admin_token(s)
        # not served on the main listener, to anyone
        assert s.http.get("/metrics", token=admin)[:2] == (404, {"detail": "Not Found"})
        assert s.http.get("/metrics")[:2] == (404, {"detail": "Not Found"})
        s.http.get("/api/alive/")
        conn = http.client.HTTPConnection("127.0.0.1", mport, timeout=10)
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        assert r.status == 200 and r.getheader("Content-Type").startswith("text/plain; version=0.0.4")
        m = samples(r.read().decode())
        assert value(m, "fractal_http_requests_total", method="GET", route="/api/alive/", status="200") >= 2
        assert value(m, "fractal_http_requests_total", method="GET", route="/metrics", status="404") == 2
        conn.request("GET", "/api/alive/")
        r = conn.getresponse()
        assert r.status == 404 and r.read()
    finally:
        assert s.stop() == 0, s.output()


@pytest.mark.parametrize("settings,why", [
    ({"FRACTAL_METRICS_ADDRESS": "127.0.0.1:9"}, "FRACTAL_METRICS_ADDRESS is set but FRACTAL_ENABLE_METRICS"),
    ({"FRACTAL_ENABLE_METRICS": "yes"}, "FRACTAL_ENABLE_METRICS: Input should be 'true' or 'false'"),
    ({"FRACTAL_ENABLE_METRICS": "true", "FRACTAL_METRICS_ADDRESS": "9100"}, "FRACTAL_METRICS_ADDRESS: Input should"),
    ({"FRACTAL_UNIX_SOCKET_MODE": "rw"}, "FRACTAL_UNIX_SOCKET_MODE: Input should be an octal file mode"),
])
def test_bad_observability_settings_stop_the_start(env, tmp_path, settings, why):
    e = init_db(env, tmp_path)
    r = run(["start", "--port", str(free_port())], env={**e, **settings}, cwd=tmp_path, timeout=20)
    assert r.returncode == 1 and why in r.stderr, r


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


def uds_get(path, url):
    conn = UnixHTTPConnection(str(path))
    conn.request("GET", url)
    r = conn.getresponse()
    out = r.status, r.read().decode()
    conn.close()
    return out


def start_uds(env, cwd, args):
    log = open(Path(cwd) / "uds-server.log", "w+")
    full = base_env()
    full.update(env)
    return subprocess.Popen([FRACTALCTL, "start", *args], env=full, cwd=cwd, stdout=log,
                            stderr=subprocess.STDOUT), log


def test_unix_socket(env, tmp_path):
    e = init_db(env, tmp_path)
    sock = tmp_path / "fractal.sock"
    # a socket file left by a server that died: removed at start
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))
    stale.close()
    proc, log = start_uds(e, tmp_path, ["--uds", str(sock)])
    try:
        deadline = time.time() + 20
        while time.time() < deadline and proc.poll() is None:
            try:
                if uds_get(sock, "/api/alive/")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        status, body = uds_get(sock, "/api/alive/")
        assert status == 200 and '"alive":true' in body
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
        assert uds_get(sock, "/api/v2/project/")[0] == 401
        # a second server on the same socket is refused, the first keeps it
        r = run(["start", "--uds", str(sock)], env=e, cwd=tmp_path, timeout=20)
        assert r.returncode == 1 and "another server is listening on the UNIX socket" in r.stderr, r
        assert uds_get(sock, "/api/alive/")[0] == 200
        read = lambda: (log.flush(), log.seek(0), log.read())[2]  # noqa: E731
        # uvicorn's access line names no client on a UNIX socket
        assert wait_for(read, r'- uvicorn\.access - INFO -  - "GET /api/v2/project/ HTTP/1\.1" 401 Unauthorized'), read()
        assert "Removed the stale UNIX socket" in read()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    out = read()
    assert "Sanitizer" not in out and "runtime error" not in out, out
    assert not sock.exists()  # removed at stop


def test_unix_socket_from_the_settings_and_its_mode(env, tmp_path):
    e = init_db(env, tmp_path)
    sock = tmp_path / "s.sock"
    plain_file = tmp_path / "not-a-socket"
    plain_file.write_text("keep me")
    r = run(["start", "--uds", str(plain_file)], env=e, cwd=tmp_path, timeout=20)
    assert r.returncode == 1 and "exists and is not a socket: not removed" in r.stderr, r
    assert plain_file.read_text() == "keep me"
    proc, log = start_uds({**e, "FRACTAL_UNIX_SOCKET": str(sock), "FRACTAL_UNIX_SOCKET_MODE": "0600"}, tmp_path, [])
    try:
        deadline = time.time() + 20
        while not sock.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        assert uds_get(sock, "/api/alive/")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
