"""A real SMTP server for the e-mail tests: Debian's python3-aiosmtpd.

Usage: python3 smtp_server.py PORT SPOOL USER PASSWORD [CERT KEY]
Every message accepted is written to SPOOL/<n>.json as {"mail_from",
"rcpt_tos", "content"}. AUTH (PLAIN, LOGIN) is required with USER/PASSWORD.
With CERT and KEY the server offers STARTTLS and requires it before AUTH;
without them AUTH is allowed on the plain connection.
"""
import json
import signal
import ssl
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

port, spool, user, password = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
spool.mkdir(parents=True, exist_ok=True)


class Spool:
    count = 0

    async def handle_DATA(self, server, session, envelope):
        Spool.count += 1
        (spool / f"{Spool.count}.json.tmp").write_text(json.dumps({
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "content": envelope.original_content.decode("utf-8", "replace"),
        }))
        (spool / f"{Spool.count}.json.tmp").rename(spool / f"{Spool.count}.json")
        return "250 Message accepted for delivery"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login.decode() == user and auth_data.password.decode() == password
    # handled=False lets aiosmtpd answer 535 itself; a handled failure leaves the client waiting
    return AuthResult(success=ok, handled=False)


kwargs = {"auth_required": True, "authenticator": authenticator}
if len(sys.argv) > 6:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[5], sys.argv[6])
    kwargs.update(tls_context=ctx, require_starttls=True, auth_require_tls=True)
else:
    kwargs.update(auth_require_tls=False)
controller = Controller(Spool(), hostname="127.0.0.1", port=port, **kwargs)
controller.start()
print(f"smtp listening on 127.0.0.1:{port}", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
stop.wait()
controller.stop()
