#!/usr/bin/env python3
"""What the access log costs a small request (docs/operations.md).

    bench/accesslog.sh      (builds, then runs this; writes the "## Access log"
                             section of bench/RESULTS.md)

One SQLite server at a time, `wrk -t2 -c16` on GET /api/alive/ and GET
/auth/current-user/ (a token check and a database read), in four runs each,
alternating (and alternating which comes first): the built-in logging with
stdout (the access lines) written to a file, and a LOG_CONFIG_FILE that sets
uvicorn.access to WARNING (no access line). Throughput on a shared 2-core
machine swings by half between runs, so the figure that counts is the
server's own CPU time per request (user + system, from /proc/PID/stat);
the medians are kept. BENCH_ACCESSLOG_WRITE=0
prints the section without writing RESULTS.md.
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import BIN, ROOT, WRK_SECONDS, Client, free_port, wrk  # noqa: E402

OFF = """version: 1
formatters: {d: {format: "%(asctime)s - %(name)s - %(levelname)s - %(message)s"}}
handlers: {err: {class: logging.StreamHandler, formatter: d}}
loggers: {uvicorn.access: {level: WARNING}}
root: {level: INFO, handlers: [err]}
"""
RUNS = int(os.environ.get("BENCH_ACCESSLOG_RUNS", "4"))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK
MARK = "\n## Access log\n"


def serve(work, env, log_on):
    port = free_port()
    e = dict(env)
    if not log_on:
        (work / "off.yaml").write_text(OFF)
        e["LOG_CONFIG_FILE"] = str(work / "off.yaml")
    out = open(work / ("access.log" if log_on else "stdout.log"), "a")
    proc = subprocess.Popen([BIN, "start", "--port", str(port)], env=e, cwd=work, stdout=out,
                            stderr=subprocess.DEVNULL)
    c = Client(f"http://127.0.0.1:{port}")
    t0 = time.time()
    while True:
        try:
            if c.call("GET", "/api/alive/")[0] == 200:
                return proc, c, port
        except OSError:
            time.sleep(0.02)
        if time.time() - t0 > 30:
            raise SystemExit("server did not start")


def main():
    work = Path(tempfile.mkdtemp(prefix="fractal-bench-accesslog-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRACTAL_", "DB_", "SQLITE_", "POSTGRES_"))}
    env.update({"DB_ENGINE": "sqlite", "SQLITE_PATH": str(work / "db.sqlite"), "JWT_SECRET_KEY": "bench",
                "JWT_EXPIRE_SECONDS": "3600"})
    for args in (["set-db"], ["init-db-data", "--resource", "default", "--profile", "default", "--admin-email",
                              "admin@example.org", "--admin-pwd", "1234", "--admin-project-dir", str(work)]):
        subprocess.run([BIN, *args], env=env, cwd=work, check=True, capture_output=True)
    rps_of, cpu_of = {}, {}
    for run_no in range(RUNS):
        for log_on in ((True, False) if run_no % 2 == 0 else (False, True)):
            proc, c, port = serve(work, env, log_on)
            token = c.login("admin@example.org", "1234")
            for label, path, tok in (("GET /api/alive/", "/api/alive/", None),
                                     ("GET /auth/current-user/", "/auth/current-user/", token)):
                c0 = cpu_seconds(proc.pid)
                rps, bad = wrk(f"http://127.0.0.1:{port}{path}", token=tok)
                cpu = cpu_seconds(proc.pid) - c0
                assert not bad and rps, (label, bad)
                key = (label, log_on)
                rps_of.setdefault(key, []).append(rps)
                cpu_of.setdefault(key, []).append(cpu / (rps * WRK_SECONDS) * 1e6)
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    lines = sum(1 for _ in open(work / "access.log"))
    shutil.rmtree(work, ignore_errors=True)
    out = [MARK.strip() + "\n",
           f"Run on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by `bench/accesslog.sh`: SQLite, "
           f"`wrk -t2 -c16 -d{WRK_SECONDS}s`, medians of {RUNS} alternating runs; access lines on (the built-in "
           "logging, stdout to a file) and off (a LOG_CONFIG_FILE with uvicorn.access at WARNING). "
           f"{lines:,} access lines were written in all.\n",
           "| endpoint | server CPU µs/request, log on | off | the access line costs | req/s on | req/s off |",
           "|---|---:|---:|---:|---:|---:|"]
    med = statistics.median
    for label in ("GET /api/alive/", "GET /auth/current-user/"):
        con, coff = med(cpu_of[(label, True)]), med(cpu_of[(label, False)])
        ron, roff = med(rps_of[(label, True)]), med(rps_of[(label, False)])
        out.append(f"| {label} | {con:.2f} | {coff:.2f} | {con - coff:+.2f} µs ({(con - coff) / coff * 100:+.1f} %) "
                   f"| {ron:,.0f} | {roff:,.0f} |")
    text = "\n".join(out) + "\n"
    print(text)
    if os.environ.get("BENCH_ACCESSLOG_WRITE", "1") != "0":
        path = ROOT / "bench" / "RESULTS.md"
        old = path.read_text()
        at = old.find(MARK)
        if at >= 0:
            nxt = old.find("\n## ", at + len(MARK))
            old = old[:at] + ("" if nxt < 0 else old[nxt:])
        path.write_text(old.rstrip("\n") + "\n" + MARK + text[len(MARK.strip()) + 1:])


if __name__ == "__main__":
    main()
