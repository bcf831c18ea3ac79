"""Email over SMTP against aiosmtpd on 127.0.0.1: plain relay and STARTTLS with login."""
import datetime
import email
import email.policy
import ipaddress
import socket
import ssl

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from zhongshu.connectors.api import PermanentError, RetryableError
from zhongshu.connectors.email import EmailConnector


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce@"):
            return "550 5.1.1 no such user"
        if address.startswith("later@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 Message accepted"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_plain():
    box = Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=free_port())
    ctl.start()
    yield ctl, box
    ctl.stop()


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    d = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return d / "cert.pem", d / "key.pem"


@pytest.fixture
def smtp_starttls(tls_cert):
    cert, key = tls_cert
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        as_text = lambda v: v.decode() if isinstance(v, bytes) else v  # noqa: E731
        ok = as_text(auth_data.login) == "ops@zs.example" and as_text(auth_data.password) == "app-password"
        return AuthResult(success=ok, handled=False)

    box = Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=free_port(), tls_context=ctx, require_starttls=True,
                     authenticator=authenticator, auth_require_tls=True)
    ctl.start()
    yield ctl, box, cert.read_text()
    ctl.stop()


def send(cfg, creds=None, **input):
    base = {"to": ["运营主管 <lead@zs.example>"], "subject": "订单 {{ no }} 超时",
            "text": "订单 {{ no }} 已 30 分钟未处理", "html": "<p>订单 <b>{{ no }}</b> 已 30 分钟未处理</p>",
            "data": {"no": "SO-42"}}
    base.update(input)
    return EmailConnector().execute("send_email", base, cfg, creds or {}, idempotency_key="job-7")


def test_plain_smtp_on_loopback_delivers_html_and_text_with_chinese_headers(smtp_plain):
    ctl, box = smtp_plain
    cfg = {"host": "127.0.0.1", "port": ctl.port, "security": "none", "from_address": "noreply@zs.example",
           "from_name": "中枢订单"}
    out = send(cfg)
    (env,) = box.messages
    assert env.mail_from == "noreply@zs.example" and env.rcpt_tos == ["lead@zs.example"]
    raw = env.content.decode("ascii")  # everything on the wire is ASCII (RFC 2047 / base64)
    assert "=?utf-8?" in raw.lower()
    msg = email.message_from_bytes(env.content, policy=email.policy.default)
    assert msg["Subject"] == "订单 SO-42 超时"
    assert msg["From"].addresses[0].display_name == "中枢订单"
    assert msg.get_content_type() == "multipart/alternative"
    assert msg.get_body(("plain",)).get_content().strip() == "订单 SO-42 已 30 分钟未处理"
    assert "<b>SO-42</b>" in msg.get_body(("html",)).get_content()
    assert msg["Message-ID"] == out.output["message_id"]
    assert send(cfg).output["message_id"] == out.output["message_id"]  # same job → same Message-ID


def test_starttls_with_login(smtp_starttls):
    ctl, box, ca = smtp_starttls
    cfg = {"host": "127.0.0.1", "port": ctl.port, "security": "starttls", "from_address": "ops@zs.example",
           "ca_cert_pem": ca, "timeout_seconds": 5}
    send(cfg, {"username": "ops@zs.example", "password": "app-password"})
    assert len(box.messages) == 1
    with pytest.raises(PermanentError, match="authentication failed"):
        send(cfg, {"username": "ops@zs.example", "password": "wrong"})
    with pytest.raises(PermanentError, match="certificate"):  # our CA not trusted → refuse
        send(dict(cfg, ca_cert_pem=""), {"username": "ops@zs.example", "password": "app-password"})


def test_recipient_errors_5xx_permanent_4xx_retryable(smtp_plain):
    ctl, box = smtp_plain
    cfg = {"host": "127.0.0.1", "port": ctl.port, "security": "none", "from_address": "noreply@zs.example"}
    with pytest.raises(PermanentError, match="refused"):
        send(cfg, to=["bounce@zs.example"])
    with pytest.raises(RetryableError):
        send(cfg, to=["later@zs.example"])
    assert box.messages == []


def test_unreachable_server_is_retryable_and_plain_smtp_to_remote_hosts_is_refused():
    with pytest.raises(RetryableError):
        send({"host": "127.0.0.1", "port": free_port(), "security": "none", "from_address": "a@zs.example",
              "timeout_seconds": 2})
    with pytest.raises(PermanentError, match="loopback"):
        send({"host": "smtp.example.com", "security": "none", "from_address": "a@zs.example"})
    ok = EmailConnector().test_connection({"host": "127.0.0.1", "port": free_port(), "security": "none",
                                           "from_address": "a@zs.example", "timeout_seconds": 2}, {})
    assert not ok.ok
