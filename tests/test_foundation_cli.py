"""Foundation: the command line, settings and their errors."""
import os

from conftest import FRACTALCTL, run


def test_version_prints_upstream_version():
    r = run(["version"])
    assert r.returncode == 0
    assert r.stdout.strip() == "fractal-server 2.24.2"
    assert run(["--version"]).stdout == r.stdout


def test_help_lists_commands():
    r = run(["--help"])
    assert r.returncode == 0
    for cmd in ("start", "set-db", "init-db-data", "version"):
        assert cmd in r.stdout


def test_command_help_lists_options():
    r = run(["init-db-data", "--help"])
    assert r.returncode == 0
    for opt in ("--resource", "--profile", "--admin-email", "--admin-pwd", "--admin-project-dir"):
        assert opt in r.stdout
    r = run(["start", "-h"])
    assert r.returncode == 0 and "--port" in r.stdout and "--host" in r.stdout


def test_no_command_is_a_usage_error():
    r = run([])
    assert r.returncode == 2
    assert "usage: fractalctl" in r.stderr


def test_unknown_command_is_a_usage_error():
    r = run(["frobnicate"])
    assert r.returncode == 2
    assert "invalid choice: 'frobnicate'" in r.stderr


def test_unknown_option_is_a_usage_error(tmp_path):
    r = run(["set-db", "--bogus"], cwd=tmp_path)
    assert r.returncode == 2
    assert "unrecognized arguments: --bogus" in r.stderr
    r = run(["start", "--port"], cwd=tmp_path)
    assert r.returncode == 2
    assert "expected one argument" in r.stderr
    r = run(["start", "--port", "eighty"], cwd=tmp_path)
    assert r.returncode == 2
    assert "invalid int value" in r.stderr


def test_invalid_db_engine_lists_valid_ones(tmp_path):
    r = run(["set-db"], env={"DB_ENGINE": "mysql", "SQLITE_PATH": "x.db"}, cwd=tmp_path)
    assert r.returncode == 1
    assert "DB_ENGINE" in r.stderr
    for v in ("'sqlite'", "'postgres'", "'postgres-psycopg'"):
        assert v in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.db").exists()


def test_sqlite_path_is_required(tmp_path):
    r = run(["set-db"], env={}, cwd=tmp_path)
    assert r.returncode == 1
    assert "SQLITE_PATH" in r.stderr
    r = run(["set-db"], env={"SQLITE_PATH": "   "}, cwd=tmp_path)
    assert r.returncode == 1 and "SQLITE_PATH" in r.stderr


def test_postgres_db_is_required(tmp_path):
    r = run(["set-db"], env={"DB_ENGINE": "postgres"}, cwd=tmp_path)
    assert r.returncode == 1
    assert "POSTGRES_DB" in r.stderr


def test_postgres_port_must_be_a_non_negative_integer(tmp_path):
    r = run(["set-db"], env={"DB_ENGINE": "postgres", "POSTGRES_DB": "x", "POSTGRES_PORT": "-1"}, cwd=tmp_path)
    assert r.returncode == 1 and "POSTGRES_PORT" in r.stderr
    r = run(["set-db"], env={"DB_ENGINE": "postgres", "POSTGRES_DB": "x", "POSTGRES_PORT": "abc"}, cwd=tmp_path)
    assert r.returncode == 1 and "POSTGRES_PORT" in r.stderr and "integer" in r.stderr


def test_settings_file_is_read_and_environment_wins(tmp_path):
    (tmp_path / ".fractal_server.env").write_text(
        "# comment\nexport SQLITE_PATH='from-file.db'\nDB_ECHO=false  # inline comment\n")
    r = run(["set-db"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "from-file.db").exists()
    r = run(["set-db"], env={"SQLITE_PATH": "from-env.db"}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "from-env.db").exists()


def test_start_validates_every_setting_before_serving(tmp_path):
    base = {"SQLITE_PATH": "db.sqlite", "JWT_SECRET_KEY": "s"}
    assert run(["set-db"], env=base, cwd=tmp_path).returncode == 0
    cases = [
        ({"JWT_EXPIRE_SECONDS": "abc"}, "JWT_EXPIRE_SECONDS"),
        ({"FRACTAL_RUNNER_BACKEND": "kubernetes"}, "FRACTAL_RUNNER_BACKEND"),
        ({"FRACTAL_DEFAULT_GROUP_NAME": "Everybody"}, "FRACTAL_DEFAULT_GROUP_NAME"),
        ({"FRACTAL_HELP_URL": "ftp://example.org"}, "FRACTAL_HELP_URL"),
        ({"FRACTAL_GRACEFUL_SHUTDOWN_TIME": "soon"}, "FRACTAL_GRACEFUL_SHUTDOWN_TIME"),
        ({"FRACTAL_DISABLE_BASIC_AUTH": "yes"}, "FRACTAL_DISABLE_BASIC_AUTH"),
        ({"FRACTAL_EMAIL_SENDER": "a@b.org"}, "FRACTAL_EMAIL"),
        ({"FRACTAL_EMAIL_SENDER": "not-an-email"}, "FRACTAL_EMAIL_SENDER"),
        ({"OAUTH_CLIENT_NAME": "keycloak"}, "OAUTH_OIDC_CONFIG_ENDPOINT"),
    ]
    for extra, name in cases:
        e = dict(base, **extra)
        r = run(["start", "--port", "1"], env=e, cwd=tmp_path, timeout=10)
        assert r.returncode == 1, (extra, r.stderr)
        assert name in r.stderr, (extra, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    e = dict(base)
    del e["JWT_SECRET_KEY"]
    r = run(["start"], env=e, cwd=tmp_path, timeout=10)
    assert r.returncode == 1 and "JWT_SECRET_KEY" in r.stderr and "Field required" in r.stderr


def test_email_settings_need_a_password_when_login_is_on(tmp_path):
    e = {"SQLITE_PATH": "db.sqlite", "JWT_SECRET_KEY": "s", "FRACTAL_EMAIL_SENDER": "a@b.org",
         "FRACTAL_EMAIL_SMTP_SERVER": "smtp.b.org", "FRACTAL_EMAIL_SMTP_PORT": "587",
         "FRACTAL_EMAIL_INSTANCE_NAME": "test", "FRACTAL_EMAIL_RECIPIENTS": "x@b.org,y@b.org"}
    assert run(["set-db"], env=e, cwd=tmp_path).returncode == 0
    r = run(["start", "--port", "1"], env=e, cwd=tmp_path, timeout=10)
    assert r.returncode == 1 and "FRACTAL_EMAIL_PASSWORD" in r.stderr


def test_secrets_are_never_printed_in_errors(tmp_path):
    e = {"DB_ENGINE": "postgres", "POSTGRES_DB": "x", "POSTGRES_PORT": "1", "POSTGRES_HOST": "127.0.0.1",
         "POSTGRES_PASSWORD": "TopSecretValue42"}
    r = run(["set-db"], env=e, cwd=tmp_path)
    assert r.returncode == 1
    assert "TopSecretValue42" not in r.stderr + r.stdout


def test_postgres_engine_in_a_build_without_libpq_says_so(tmp_path):
    nopg = os.environ.get("FRACTALCTL_NOPG")
    if not nopg:
        # scripts/test.sh always provides this build; running pytest by hand may not
        import pytest
        pytest.skip("FRACTALCTL_NOPG not set (scripts/test.sh builds it)")
    import subprocess
    from conftest import base_env
    env = base_env()
    env.update({"DB_ENGINE": "postgres", "POSTGRES_DB": "x"})
    r = subprocess.run([nopg, "set-db"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 1
    assert "built without PostgreSQL support" in r.stderr
    assert FRACTALCTL != nopg
