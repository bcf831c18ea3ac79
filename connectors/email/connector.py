"""Email over SMTP with smtplib.

``security``: ``starttls`` (port 587, upgrade with STARTTLS — required to be offered),
``ssl`` (port 465, implicit TLS) or ``none`` (only allowed to a loopback host, e.g. a local
relay). Messages are multipart/alternative (text + HTML); non-ASCII headers (subject,
display names) are RFC 2047-encoded by :mod:`email`'s SMTP policy. The Message-ID is derived
from the idempotency key, so a retried job produces the same Message-ID.

Error mapping: connection refused/reset, timeouts, SMTP 4xx replies → RetryableError;
authentication failure, SMTP 5xx replies (e.g. 550 unknown recipient) → PermanentError.
"""
from __future__ import annotations

import hashlib
import smtplib
import socket
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, getaddresses

from ..api import ActionResult, ConnectionResult, Connector, Manifest, PermanentError, RetryableError
from ..api.signing import icon
from ..api.templating import DATA_SCHEMA, input_texts
from ..api.textformat import HTML

LOOPBACK = {"127.0.0.1", "localhost", "::1"}

MANIFEST = {
    "name": "email",
    "version": "1.0.0",
    "labels": {"zh-CN": "邮件 (SMTP)", "en": "Email (SMTP)"},
    "description": {"zh-CN": "通过 SMTP 发送 HTML + 纯文本邮件。", "en": "Send HTML + text email over SMTP."},
    "icon": icon("@", "#ea580c"),
    "categories": ["notification"],
    "config_schema": {
        "type": "object", "required": ["host", "from_address"],
        "properties": {
            "host": {"type": "string", "minLength": 1},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535,
                     "description": "Default: 587 for starttls, 465 for ssl, 25 for none"},
            "security": {"enum": ["starttls", "ssl", "none"], "default": "starttls"},
            "from_address": {"type": "string", "format": "email"},
            "from_name": {"type": "string", "default": ""},
            "ca_cert_pem": {"type": "string", "default": "",
                            "description": "Extra CA certificate (PEM) to trust, for private relays"},
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 120, "default": 20},
        },
    },
    "credential_schema": {"type": "object", "properties": {
        "username": {"type": "string"},
        "password": {"type": "string", "format": "password", "writeOnly": True}}},
    "inbound": [],
    "actions": [{
        "name": "send_email",
        "labels": {"zh-CN": "发送邮件", "en": "Send email"},
        "description": "subject/text/html are sent as given. With input.data they are sandboxed Jinja2 "
                       "templates over data (values from data are HTML-escaped in html); rules leave data "
                       "out (a rule renders its message itself, once).",
        "input_schema": {
            "type": "object", "required": ["to", "subject"],
            "properties": {
                "to": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "cc": {"type": "array", "items": {"type": "string"}, "default": []},
                "reply_to": {"type": "string"},
                "subject": {"type": "string"},
                "text": {"type": "string"},
                "html": {"type": "string"},
                "data": DATA_SCHEMA,
            },
        },
        "output_schema": {"type": "object", "properties": {
            "message_id": {"type": "string"}, "refused": {"type": "object"}}},
    }],
    "connection_test": {"supported": True, "description": "Connects, negotiates TLS, logs in, quits."},
}


def _addr(s: str) -> Address:
    (name, email), = getaddresses([s]) or [("", s)]
    if "@" not in email:
        raise PermanentError(f"invalid email address {s!r}", code="invalid_input")
    local, domain = email.rsplit("@", 1)
    return Address(display_name=name, username=local, domain=domain)


def build_message(data: dict, cfg: dict, idempotency_key: str) -> EmailMessage:
    text_of = input_texts(data)  # templates only with input.data
    msg = EmailMessage()
    msg["Subject"] = text_of(data["subject"], "input/subject")
    msg["From"] = Address(display_name=cfg.get("from_name") or "", addr_spec=cfg["from_address"])
    msg["To"] = [_addr(a) for a in data["to"]]
    if data.get("cc"):
        msg["Cc"] = [_addr(a) for a in data["cc"]]
    if data.get("reply_to"):
        msg["Reply-To"] = _addr(data["reply_to"])
    msg["Date"] = formatdate(localtime=False)
    domain = cfg["from_address"].rsplit("@", 1)[-1]
    msg["Message-ID"] = f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@{domain}>"
    text = text_of(data["text"], "input/text") if data.get("text") else None
    html = text_of(data["html"], "input/html", HTML) if data.get("html") else None  # data values escaped
    if text is None and html is None:
        raise PermanentError("input needs text or html", code="invalid_input")
    msg.set_content(text if text is not None else "This message is HTML only.", charset="utf-8", cte="base64")
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    return msg


def _smtp_error(exc: smtplib.SMTPResponseException | smtplib.SMTPException, where: str):
    code = getattr(exc, "smtp_code", None)
    text = getattr(exc, "smtp_error", b"")
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return PermanentError(f"{where}: authentication failed ({code} {text})", code="smtp_auth")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [c for c, _ in exc.recipients.values()]
        cls = RetryableError if all(400 <= c < 500 for c in codes) else PermanentError
        return cls(f"{where}: recipients refused: {exc.recipients}", code="smtp_recipients")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return RetryableError(f"{where}: server disconnected: {exc}", code="smtp_disconnected")
    if code is not None and 400 <= code < 500:
        return RetryableError(f"{where}: SMTP {code} {text}", code=f"smtp_{code}")
    if code is not None:
        return PermanentError(f"{where}: SMTP {code} {text}", code=f"smtp_{code}")
    return PermanentError(f"{where}: {exc}", code="smtp")


class EmailConnector(Connector):
    manifest = Manifest.from_dict(MANIFEST)

    def text_formats(self, action, input):
        return {"html": HTML}  # the HTML part; subject and text part are plain text

    def _connect(self, cfg: dict, creds: dict) -> smtplib.SMTP:
        host, sec = cfg["host"], cfg["security"]
        port = cfg.get("port") or {"starttls": 587, "ssl": 465, "none": 25}[sec]
        if sec == "none" and host not in LOOPBACK:
            raise PermanentError("security 'none' is only allowed to a loopback host", code="config_invalid")
        ctx = ssl.create_default_context()
        if cfg.get("ca_cert_pem"):
            ctx.load_verify_locations(cadata=cfg["ca_cert_pem"])
        where = f"smtp://{host}:{port}"
        t = cfg["timeout_seconds"]
        try:
            if sec == "ssl":
                smtp = smtplib.SMTP_SSL(host, port, timeout=t, context=ctx)
            else:
                smtp = smtplib.SMTP(host, port, timeout=t)
            try:
                smtp.ehlo()
                if sec == "starttls":
                    if not smtp.has_extn("starttls"):
                        raise PermanentError(f"{where} does not offer STARTTLS", code="smtp_no_tls")
                    smtp.starttls(context=ctx)
                    smtp.ehlo()
                if creds.get("username"):
                    smtp.login(creds["username"], creds.get("password", ""))
            except BaseException:
                smtp.close()
                raise
            return smtp
        except (socket.timeout, TimeoutError):
            raise RetryableError(f"{where}: timed out after {t}s", code="timeout") from None
        except ssl.SSLCertVerificationError as exc:
            raise PermanentError(f"{where}: TLS certificate rejected: {exc}", code="tls") from None
        except smtplib.SMTPException as exc:
            raise _smtp_error(exc, where) from None
        except OSError as exc:
            raise RetryableError(f"{where}: {type(exc).__name__}: {exc}", code="network") from None

    def test_connection(self, config, credentials):
        try:
            cfg, creds = self.validate_config(config, credentials)
            smtp = self._connect(cfg, creds)
            smtp.quit()
            return ConnectionResult(True, f"connected to {cfg['host']}")
        except Exception as exc:  # noqa: BLE001
            return ConnectionResult(False, str(exc))

    def execute(self, action, input, config, credentials, *, idempotency_key):
        self.manifest.action(action)
        cfg, creds = self.validate_config(config, credentials)
        data = self.validate_input(action, input)
        msg = build_message(data, cfg, idempotency_key)
        smtp = self._connect(cfg, creds)
        where = f"smtp://{cfg['host']}"
        try:
            refused = smtp.send_message(msg)
        except (socket.timeout, TimeoutError):
            raise RetryableError(f"{where}: timed out while sending", code="timeout") from None
        except smtplib.SMTPException as exc:
            raise _smtp_error(exc, where) from None
        except OSError as exc:
            raise RetryableError(f"{where}: {exc}", code="network") from None
        finally:
            try:
                smtp.quit()
            except Exception:  # noqa: BLE001
                smtp.close()
        return ActionResult({"message_id": msg["Message-ID"],
                             "refused": {k: [c, m.decode("utf-8", "replace") if isinstance(m, bytes) else m]
                                         for k, (c, m) in refused.items()}})
