"""OAuth/OpenID Connect login (/auth/{client}/authorize/ and callback/) and the
e-mails to the admins, against a real OpenID provider (panva's oidc-provider,
tests/oidc/) and a real SMTP server (aiosmtpd, tests/smtp_server.py)."""
import base64
import email
import email.policy
import hashlib
import hmac
import http.cookiejar
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import ADMIN_EMAIL, JWT_SECRET, ROOT, Server, free_port, init_db, run

OIDC_DIR = ROOT / "tests" / "oidc"
CLIENT_ID = "fractal-test-client"
CLIENT_SECRET = "fractal-test-client-secret"
REDIRECT = "http://127.0.0.1:5173/auth/login/oauth2/"  # fractal-web's page; the test stops at it
NAME = "myidp"
SENDER = "fractal-notices@example.org"
RECIPIENTS = "admin1@example.org,admin2@example.org"
SMTP_USER_PASSWORD = "smtp-secret"
HELP_URL = "https://help.example.org/onboarding/"


class Provider:
    def __init__(self, tmp):
        if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
            pytest.fail("tests/oidc/node_modules is missing: run the tests through scripts/test.sh (npm ci)")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(Path(tmp) / "oidc.log", "w+")
        self.proc = subprocess.Popen(["node", str(OIDC_DIR / "provider.js"), str(self.port), CLIENT_ID,
                                      CLIENT_SECRET, REDIRECT], cwd=OIDC_DIR, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                with urllib.request.urlopen(self.discovery, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("oidc provider did not answer: " + self.output())

    @property
    def discovery(self):
        return self.base + "/.well-known/openid-configuration"

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    p = Provider(tmp_path_factory.mktemp("oidc"))
    yield p
    p.stop()


class Smtp:
    """aiosmtpd on a free port; messages() reads the spool."""

    def __init__(self, tmp, starttls):
        self.port = free_port()
        self.spool = Path(tmp) / f"spool-{self.port}"
        args = [sys.executable, str(ROOT / "tests" / "smtp_server.py"), str(self.port), str(self.spool), SENDER,
                SMTP_USER_PASSWORD]
        if starttls:
            cert, key = Path(tmp) / "smtp.crt", Path(tmp) / "smtp.key"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                            "-days", "1", "-keyout", str(key), "-out", str(cert)], check=True,
                           capture_output=True)
            args += [str(cert), str(key)]
        self.log = open(Path(tmp) / f"smtp-{self.port}.log", "w+")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            assert self.proc.poll() is None, self.output()
            if "listening" in self.output():
                return
            time.sleep(0.05)
        raise AssertionError("smtp server did not start: " + self.output())

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def messages(self, wait_for=0):
        deadline = time.time() + 10
        while True:
            found = sorted(self.spool.glob("*.json")) if self.spool.is_dir() else []
            if len(found) >= wait_for or time.time() > deadline:
                return [json.loads(f.read_text()) for f in found]
            time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def smtp(tmp_path):
    s = Smtp(tmp_path, starttls=False)
    yield s
    s.stop()


@pytest.fixture
def smtp_tls(tmp_path):
    s = Smtp(tmp_path, starttls=True)
    yield s
    s.stop()


def email_env(smtp, starttls, password=SMTP_USER_PASSWORD):
    return {
        "FRACTAL_EMAIL_SENDER": SENDER,
        "FRACTAL_EMAIL_PASSWORD": password,
        "FRACTAL_EMAIL_SMTP_SERVER": "127.0.0.1",
        "FRACTAL_EMAIL_SMTP_PORT": str(smtp.port),
        "FRACTAL_EMAIL_INSTANCE_NAME": "test-instance",
        "FRACTAL_EMAIL_RECIPIENTS": RECIPIENTS,
        "FRACTAL_EMAIL_USE_STARTTLS": "true" if starttls else "false",
        "FRACTAL_EMAIL_USE_LOGIN": "true",
    }


def oauth_env(provider, **extra):
    e = {
        "OAUTH_CLIENT_NAME": "MyIdP",  # lower-cased by the settings
        "OAUTH_CLIENT_ID": CLIENT_ID,
        "OAUTH_CLIENT_SECRET": CLIENT_SECRET,
        "OAUTH_OIDC_CONFIG_ENDPOINT": provider.discovery,
        "OAUTH_REDIRECT_URL": REDIRECT,
        "FRACTAL_HELP_URL": HELP_URL,
    }
    e.update(extra)
    return e


@pytest.fixture
def start(env, tmp_path):
    """start(extra settings) -> a running Server; all are stopped at teardown."""
    servers = []
    base = init_db(env, tmp_path)

    def _start(extra):
        e = dict(base)
        e.update(extra)
        s = Server(e, tmp_path)
        servers.append(s)
        return s

    yield _start
    for s in servers:
        assert s.stop() == 0, s.output()


# ---- driving the provider's login form like a browser ----

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def provider_login(authorization_url, login):
    """Logs in at the provider (a fresh cookie jar) and returns the query the
    provider sends back to the redirect URL, as a dict."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    url, data = authorization_url, None
    for _ in range(20):
        req = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode() if data else None)
        try:
            with opener.open(req, timeout=10) as r:
                status, body, headers = r.status, r.read().decode(), r.headers
        except urllib.error.HTTPError as e:
            status, body, headers = e.code, e.read().decode(), e.headers
        if status in (302, 303):
            loc = urllib.parse.urljoin(url, headers["Location"])
            if loc.startswith(REDIRECT):
                return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
            url, data = loc, None
            continue
        assert status == 200, (status, body)
        action = re.search(r'<form[^>]*action="([^"]+)"', body).group(1)
        prompt = re.search(r'name="prompt" value="([^"]+)"', body).group(1)
        url = urllib.parse.urljoin(url, action)
        data = {"prompt": "login", "login": login, "password": "any"} if prompt == "login" else {"prompt": prompt}
    raise AssertionError("the provider's login did not end at the redirect URL")


def hdr(headers, name):
    return {k.lower(): v for k, v in headers.items()}.get(name)


def authorize(server):
    """GET authorize/ -> (authorization_url, csrf cookie value, Set-Cookie)"""
    status, body, headers = server.http.get(f"/auth/{NAME}/authorize/")
    assert status == 200, body
    set_cookie = hdr(headers, "set-cookie")
    csrf = re.match(r"fastapiusersoauthcsrf=([^;]+);", set_cookie).group(1)
    return body["authorization_url"], csrf, set_cookie


def callback(server, query, csrf, cookie_header=None):
    """fractal-web's /auth/login/oauth2/ page: the provider's query string,
    the CSRF cookie forwarded by hand (it is Secure: no jar sends it over http)."""
    qs = urllib.parse.urlencode(query)
    hdr = cookie_header if cookie_header is not None else f"fastapiusersoauthcsrf={csrf}"
    return server.http.get(f"/auth/{NAME}/callback/?{qs}", headers={"Cookie": hdr})


def login_flow(server, login, **kw):
    url, csrf, _ = authorize(server)
    return callback(server, provider_login(url, login), csrf, **kw)


def admin_create_user(server, email_addr, **patch):
    tok = server.http.login()
    status, body, _ = server.http.post("/auth/register/", body={"email": email_addr, "password": "pw-1234",
                                                                     "project_dirs": ["/tmp"]},
                                       token=tok)
    assert status == 201, body
    if patch:
        status, body, _ = server.http.request("PATCH", f"/auth/users/{body['id']}/", body=patch, token=tok)
        assert status == 200, body
    return body["id"]


def cookie_token(headers):
    m = re.match(r"fastapiusersauth=([^;]+); HttpOnly; Path=/; SameSite=none; Secure$", hdr(headers, "set-cookie") or "")
    assert m, headers
    return m.group(1)


def parse_mail(m):
    assert "\r\n" in m["content"]  # SMTP's line ends on the wire
    return email.message_from_string(m["content"].replace("\r\n", "\n"), policy=email.policy.default)


def jwt_payload(tok):
    part = tok.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def forge_state(claims):
    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    sig = hmac.new(JWT_SECRET.encode(), head.encode(), hashlib.sha256).digest()
    return head + "." + b64(sig)


# ---- tests ----

def test_oauth_routes_are_absent_unless_configured(engine, start, provider):
    s = start({})
    for path in (f"/auth/{NAME}/authorize/", f"/auth/{NAME}/callback/"):
        assert s.http.get(path)[:2] == (404, {"detail": "Not Found"})
    s2 = start(oauth_env(provider))
    assert s2.http.get(f"/auth/{NAME}/authorize/")[0] == 200
    assert s2.http.get("/auth/github/authorize/")[:2] == (404, {"detail": "Not Found"})
    assert s2.http.get("/auth/other/callback/?code=x")[:2] == (404, {"detail": "Not Found"})


def test_authorize_answers_the_provider_url_with_state_and_csrf_cookie(engine, start, provider):
    s = start(oauth_env(provider))
    url, csrf, set_cookie = authorize(s)
    assert set_cookie == f"fastapiusersoauthcsrf={csrf}; HttpOnly; Max-Age=3600; Path=/; SameSite=lax; Secure"
    assert len(csrf) == 43
    parts = urllib.parse.urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == provider.base + "/auth"
    q = dict(urllib.parse.parse_qsl(parts.query))
    assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID
    assert q["redirect_uri"] == REDIRECT and q["scope"] == "openid email"
    claims = jwt_payload(q["state"])
    assert claims["csrftoken"] == csrf and claims["aud"] == "fastapi-users:oauth-state"
    assert abs(claims["exp"] - time.time() - 3600) < 60


def test_github_and_google_clients_authorize_at_their_provider(engine, start):
    # no OAUTH_REDIRECT_URL: the redirect is the callback route's own URL
    for name, endpoint, scope in (
            ("GitHub", "https://github.com/login/oauth/authorize", "user user:email"),
            ("google", "https://accounts.google.com/o/oauth2/v2/auth",
             "https://www.googleapis.com/auth/userinfo.profile https://www.googleapis.com/auth/userinfo.email")):
        s = start({"OAUTH_CLIENT_NAME": name, "OAUTH_CLIENT_ID": "cid", "OAUTH_CLIENT_SECRET": "csecret"})
        status, body, _ = s.http.get(f"/auth/{name.lower()}/authorize/")
        assert status == 200, body
        url = urllib.parse.urlsplit(body["authorization_url"])
        assert f"{url.scheme}://{url.netloc}{url.path}" == endpoint
        q = dict(urllib.parse.parse_qsl(url.query))
        assert q["scope"] == scope and q["client_id"] == "cid"
        assert q["redirect_uri"] == f"http://127.0.0.1:{s.port}/auth/{name.lower()}/callback/"
        assert s.stop() == 0


def test_known_user_logs_in_and_the_cookie_works(engine, start, provider, db):
    s = start(oauth_env(provider))
    uid = admin_create_user(s, "known@example.org", is_verified=True)
    url, csrf, _ = authorize(s)
    query = provider_login(url, "known@example.org")
    assert query["iss"] == provider.base  # the provider's extra parameter (RFC 9207), accepted
    status, body, headers = callback(s, query, csrf)
    assert status == 204, body
    tok = cookie_token(headers)
    assert jwt_payload(tok)["sub"] == str(uid)
    assert abs(jwt_payload(tok)["exp"] - time.time() - 86400) < 60
    st, me, _ = s.http.get("/auth/current-user/", headers={"Cookie": f"fastapiusersauth={tok}"})
    assert st == 200 and me["email"] == "known@example.org"
    # an invalid bearer header falls back to the cookie, as fastapi-users does
    st, me, _ = s.http.get("/auth/current-user/", token="not-a-jwt", headers={"Cookie": f"fastapiusersauth={tok}"})
    assert st == 200 and me["id"] == uid
    rows = db.query("SELECT user_id, oauth_name, account_id, account_email, access_token, expires_at FROM oauthaccount")
    assert len(rows) == 1
    assert rows[0][:4] == [str(uid), "openid", "known@example.org", "known@example.org"]
    assert rows[0][4] and int(rows[0][5]) > time.time()
    # a second login finds the account and refreshes it: still one row
    assert login_flow(s, "known@example.org")[0] == 204
    rows2 = db.query("SELECT user_id, access_token FROM oauthaccount")
    assert len(rows2) == 1 and rows2[0][1] != rows[0][4]


def test_user_is_linked_by_email_case_insensitively(engine, start, provider, db):
    s = start(oauth_env(provider, OAUTH_EMAIL_CLAIM="mail"))
    uid = admin_create_user(s, "Linked.User@Example.org")
    status, body, headers = login_flow(s, "mail=linked.user@example.org")
    assert status == 204, body
    assert jwt_payload(cookie_token(headers))["sub"] == str(uid)
    assert db.query("SELECT user_id, account_email FROM oauthaccount") == [[str(uid), "linked.user@example.org"]]


def test_unknown_user_gets_the_registration_text_and_admins_one_mail(engine, start, provider, smtp):
    s = start({**oauth_env(provider), **email_env(smtp, starttls=False)})
    status, body, headers = login_flow(s, "newcomer@example.org")
    text = ("Thank you for registering for the Fractal service. Administrators have been informed to configure "
            f"your account and will get back to you.\nYou can find more information about the onboarding process "
            f"at {HELP_URL}.")
    assert (status, body) == (400, {"detail": text})
    assert "set-cookie" not in {k.lower() for k in headers}
    msgs = smtp.messages(wait_for=1)
    time.sleep(0.3)
    assert len(smtp.messages()) == 1
    m = msgs[0]
    assert m["mail_from"] == SENDER and m["rcpt_tos"] == RECIPIENTS.split(",")
    parsed = parse_mail(m)
    assert parsed["Subject"] == "[Fractal, test-instance] New OAuth self-registration"
    assert parsed["From"] == f'"{SENDER}" <{SENDER}>'
    assert [a.addr_spec for a in parsed["To"].addresses] == RECIPIENTS.split(",")
    assert parsed.get_content() == (
        "User 'newcomer@example.org' tried to self-register through OAuth.\n"
        "Please create the Fractal account manually.\n"
        f"Here is the error message displayed to the user:\n{text}\n")
    assert "Self-registration attempt by newcomer@example.org." in s.output()


def test_unknown_user_mail_over_starttls(engine, start, provider, smtp_tls):
    e = {**oauth_env(provider), **email_env(smtp_tls, starttls=True), "FRACTAL_EMAIL_INSTANCE_NAME": "Zürich"}
    del e["FRACTAL_HELP_URL"]
    s = start(e)
    status, body, _ = login_flow(s, "jürgen.tls@example.org")
    assert status == 400 and "onboarding" not in body["detail"]
    msgs = smtp_tls.messages(wait_for=1)
    assert len(msgs) == 1
    parsed = parse_mail(msgs[0])
    assert parsed["Subject"] == "[Fractal, Zürich] New OAuth self-registration"
    assert parsed.get_content().startswith("User 'jürgen.tls@example.org' tried to self-register through OAuth.\n")


def test_wrong_smtp_password_is_logged_and_the_request_unaffected(engine, start, provider, smtp):
    s = start({**oauth_env(provider), **email_env(smtp, starttls=False, password="wrong")})
    status, body, _ = login_flow(s, "another.newcomer@example.org")
    assert status == 400 and body["detail"].startswith("Thank you for registering")
    assert smtp.messages() == []
    assert "Could not send self-registration email, original error:" in s.output()


def test_no_email_claim_and_inactive_user(engine, start, provider):
    s = start(oauth_env(provider))
    assert login_flow(s, "no-email-at-all")[:2] == (400, {"detail": "OAUTH_NOT_AVAILABLE_EMAIL"})
    admin_create_user(s, "inactive@example.org", is_active=False)
    assert login_flow(s, "inactive@example.org")[:2] == (400, {"detail": "LOGIN_BAD_CREDENTIALS"})
    # no e-mail settings: the refusal still answers, the missing mail is logged
    status, body, _ = login_flow(s, "stranger@example.org")
    assert status == 400 and body["detail"].startswith("Thank you for registering")
    assert "Cannot send email with subject='New OAuth self-registration'" in s.output()


def test_state_and_csrf_checks(engine, start, provider):
    s = start(oauth_env(provider))
    admin_create_user(s, "checked@example.org")

    def fresh():
        url, csrf, _ = authorize(s)
        return provider_login(url, "checked@example.org"), csrf

    q, csrf = fresh()
    tampered = dict(q, state=q["state"][:-3] + ("AAA" if not q["state"].endswith("AAA") else "BBB"))
    assert callback(s, tampered, csrf)[:2] == (400, {"detail": "ACCESS_TOKEN_DECODE_ERROR"})
    q, csrf = fresh()
    expired = dict(q, state=forge_state({"csrftoken": csrf, "aud": "fastapi-users:oauth-state",
                                         "exp": int(time.time()) - 10}))
    assert callback(s, expired, csrf)[:2] == (400, {"detail": "ACCESS_TOKEN_ALREADY_EXPIRED"})
    q, csrf = fresh()
    assert callback(s, q, ("y" if csrf[0] == "x" else "x") + csrf[1:])[:2] == (400, {"detail": "OAUTH_INVALID_STATE"})
    q, csrf = fresh()
    assert callback(s, q, csrf, cookie_header="")[:2] == (400, {"detail": "OAUTH_INVALID_STATE"})
    # no code, or the provider's error
    assert s.http.get(f"/auth/{NAME}/callback/")[:2] == (400, {"detail": None})
    assert s.http.get(f"/auth/{NAME}/callback/?error=access_denied")[:2] == (400, {"detail": "access_denied"})
    # fractal-web's forwarded header, with its stray bare token
    q, csrf = fresh()
    status, _, _ = callback(s, q, csrf, cookie_header=f"cookie; fastapiusersoauthcsrf={csrf}")
    assert status == 204


def test_provider_down_at_start_stops_start(engine, env, tmp_path):
    e = init_db(env, tmp_path)
    dead = f"http://127.0.0.1:{free_port()}/.well-known/openid-configuration"
    e.update({"OAUTH_CLIENT_NAME": "myidp", "OAUTH_CLIENT_ID": CLIENT_ID, "OAUTH_CLIENT_SECRET": CLIENT_SECRET,
              "OAUTH_OIDC_CONFIG_ENDPOINT": dead})
    r = run(["start", "--port", str(free_port())], env=e, cwd=tmp_path, timeout=60)
    assert r.returncode == 1
    assert "Cannot initialize OpenID client" in r.stderr and f"OAUTH_OIDC_CONFIG_ENDPOINT='{dead}'" in r.stderr


def test_failed_sync_core_tasks_mails_the_admins(engine, env, tmp_path, smtp):
    e = init_db(env, tmp_path)
    e.update(email_env(smtp, starttls=False))
    rg = tmp_path / "rg.json"
    rg.write_text(json.dumps([{"resource_id": 999, "user_group_id": 1}]))
    r = run(["sync-core-tasks", "--resources-and-groups", str(rg)], env=e, cwd=tmp_path)
    assert r.returncode == 1
    msg = ("An exception took place, exit without updating the database. Original error: "
           "No row was found for Resource 999")
    assert msg in r.stderr
    msgs = smtp.messages(wait_for=1)
    assert len(msgs) == 1
    parsed = parse_mail(msgs[0])
    assert parsed["Subject"] == "[Fractal, test-instance] Failed core-tasks synchronization"
    assert parsed.get_content() == msg + "\n"
