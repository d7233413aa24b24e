"""Telling users about their jobs: e-mails on submission, completion and feedback.

:class:`Notifier` holds MMODA's rules (dispatcher-protocol.md §14); the job store queues every
mail in its outbox in the same commit as the change the mail tells about, and
:meth:`Notifier.deliver_due` sends due mails and marks each sent only once the SMTP server has
accepted it. So neither a crash nor an SMTP outage loses a mail, and each goes out once (a
sender killed mid-delivery is resolved by the ``ended`` mark committed just before the SMTP
end-of-data, see :mod:`.store`; every try of a mail carries the same ``Message-ID``):

* submitted: at most one per job run, and none if one went out for the same job id less
  than ``email_interval`` seconds ago;
* done: at most one per job run, only if the job took longer than ``completion_threshold``
  seconds (short jobs answer while the user is still looking); failed: always;
* feedback: one per feedback entry an operator attaches.

Only jobs with an e-mail address (logged-in users) get mails. :class:`EmailNotifier` sends
them over SMTP, multipart text + HTML, with the request's parameters, a link to the products
and the ``oda_api`` code that repeats the request. Tokens never appear in mails or logs: the
code snippet discovers the user's token instead of embedding it.
"""

from __future__ import annotations

import functools
import html
import json
import re
import smtplib
import threading
import time
from email import policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlencode

from traitlets import Any as AnyTrait
from traitlets import Bool, Float, Integer, List, Unicode, observe
from traitlets.config import LoggingConfigurable

from ..models import Job, JobStatus

__all__ = ["Notifier", "EmailNotifier", "api_code", "request_url"]

#: no header folding below the RFC 5322 limit: subjects stay on one line, as MMODA's do
_POLICY = policy.SMTP.clone(max_line_length=998)

#: parameter keys never shown in a link or code snippet
_SECRET_KEYS = {"token", "session_id", "job_id"}


#: per mailer thread: ``ending(ending=True)`` of the outbox mail being delivered (see :class:`_SMTP`)
_DELIVERY = threading.local()


class _SMTP(smtplib.SMTP):
    """``smtplib.SMTP`` that reports the moment before the end-of-data mark to the outbox.

    Until the final ``.`` the server discards the mail if the connection drops, so a sender
    that dies before :func:`ending` is called may send it again; after it, the mail is the
    server's, and is never sent twice."""

    def data(self, msg: bytes | str) -> tuple[int, bytes]:
        ending = getattr(_DELIVERY, "ending", None)
        if ending is None:
            return super().data(msg)
        self.putcmd("data")
        code, repl = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, repl)
        if isinstance(msg, str):
            msg = re.sub(r"(?:\r\n|\n|\r(?!\n))", "\r\n", msg).encode("ascii")
        body = re.sub(rb"(?m)^\.", b"..", msg)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        self.send(body)
        ending()
        self.send(b".\r\n")
        code, repl = self.getreply()
        if code != 250:
            ending(ending=False)  # refused: the mail stays the outbox's
        return code, repl


class Notifier(LoggingConfigurable):
    """Rules of when to notify; subclasses implement ``send_*``. The base class sends nothing."""

    store = AnyTrait(None, allow_none=True, help="The JobStore recording sent notifications (set by the manager)")
    on_submit = Bool(True, help="Notify on submission").tag(config=True)
    on_done = Bool(True, help="Notify when a job is done").tag(config=True)
    on_fail = Bool(True, help="Notify when a job failed").tag(config=True)
    completion_threshold = Float(
        1800.0, help="Completion mail only for jobs that took longer than this many seconds"
    ).tag(config=True)
    email_interval = Float(
        5.0, help="No submission mail if one went out for the same job id less than this many seconds ago"
    ).tag(config=True)
    min_interval = Float(5.0, help="Alias of email_interval").tag(config=True)

    @observe("min_interval")
    def _alias_interval(self, change: dict) -> None:
        self.email_interval = change["new"]

    # -- rules ------------------------------------------------------------------------

    def completion_due(self, job: Job, status: JobStatus, finished: float) -> bool:
        """Whether a job ending in ``status`` at ``finished`` deserves a completion mail."""
        if not job.email:
            return False
        if status is JobStatus.FAILED:
            return self.on_fail
        if status is JobStatus.DONE:
            return self.on_done and finished - job.created > self.completion_threshold
        return False

    def deliver_due(self, owner: str, lease: float = 120.0, limit: int | None = None) -> int:
        """Send the outbox's due mails, oldest first; returns how many went out.

        Stops at the first mail that cannot be delivered (SMTP down): it stays due, and the job
        manager calls again later. ``lease`` (s) covers one mail's delivery with its retries."""
        sent = 0
        while limit is None or sent < limit:
            item = self.store.claim_mail(owner, max(lease, self.delivery_time()))
            if item is None:
                break
            job, kind, extra = item["job"], item["kind"], item["extra"]
            _DELIVERY.ending = functools.partial(self.store.mail_ending, job, kind, owner)
            try:
                self.send(job, kind, extra)
            except Exception as err:
                self.store.mail_failed(job, kind, owner, f"{type(err).__name__}: {err}")
                self.log.warning("mail %s of job %s not delivered (try %d): %s; it stays due",
                                 kind, job.job_id, item["tries"], err)
                break
            finally:
                _DELIVERY.ending = None
            self.store.mail_sent(job, kind, owner)
            sent += 1
        return sent

    def delivery_time(self) -> float:
        """Longest time one delivery may take (its lease must outlast it)."""
        return 60.0

    def send(self, job: Job, kind: str, extra: dict[str, Any]) -> None:
        """Deliver one mail of ``kind`` (submitted, done, failed, feedback:<id>); raise if not accepted."""
        if kind == "submitted":
            self.send_submitted(job)
        elif kind.startswith("feedback:"):
            self.send_feedback(job, extra.get("message", ""), extra.get("author"), kind=kind)
        else:
            self.send_done(job)

    # -- delivery (override) ----------------------------------------------------------

    def send_submitted(self, job: Job) -> None:
        self.log.info("job %s submitted (no notifier configured)", job.job_id)

    def send_done(self, job: Job) -> None:
        self.log.info("job %s %s (no notifier configured)", job.job_id, job.status.value)

    def send_feedback(self, job: Job, message: str, author: str | None = None, kind: str = "feedback") -> None:
        self.log.info("feedback on job %s (no notifier configured)", job.job_id)


def _py_literal(value: Any, indent: str = "    ") -> str:
    """A Python literal for a JSON-like value (double-quoted strings, as MMODA's code does)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_py_literal(v, indent) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_py_literal(v, indent)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


def _public_params(job: Job) -> dict[str, Any]:
    return {k: v for k, v in sorted(job.params.items()) if k not in _SECRET_KEYS and v is not None}


def api_code(job: Job, dispatcher_url: str) -> str:
    """``oda_api`` code repeating the request; ``get_product`` takes the product as ``product``
    and the query type as ``product_type``. The token is discovered, never written out."""
    pars = _public_params(job)
    pars["product"] = pars.pop("product_type", job.product)
    pars["product_type"] = pars.pop("query_type", job.query_type)
    lines = [f"    {json.dumps(k)}: {_py_literal(v)}," for k, v in sorted(pars.items())]
    return "\n".join(
        [
            "from oda_api.api import DispatcherAPI",
            "from oda_api.token import discover_token",
            "",
            f'disp = DispatcherAPI(url="{dispatcher_url}", instrument="mock")',
            "",
            "par_dict = {",
            *lines,
            "}",
            "par_dict[\"token\"] = discover_token()  # from $ODA_TOKEN or ~/.oda-token",
            "",
            "data_collection = disp.get_product(**par_dict)",
        ]
    )


def request_url(job: Job, products_url: str) -> str:
    """The frontend URL repeating the request (MMODA's "permanent" status link)."""
    pars = {k: v if isinstance(v, str) else json.dumps(v) for k, v in _public_params(job).items()}
    pars["query_status"] = "new"
    pars.setdefault("use_scws", "no" if "scw_list" not in pars else "user_input")
    return f"{products_url}?{urlencode(sorted(pars.items()))}"


class EmailNotifier(Notifier):
    """E-mails over SMTP, in the form of MMODA's (``[ODA][status] product requested at ...``)."""

    smtp_server = Unicode("127.0.0.1", help="SMTP server host").tag(config=True)
    smtp_host = Unicode("127.0.0.1", help="Alias of smtp_server").tag(config=True)
    smtp_port = Integer(25, help="SMTP server port").tag(config=True)
    smtp_user = Unicode(None, allow_none=True, help="SMTP login (optional)").tag(config=True)
    smtp_password = Unicode(None, allow_none=True, help="SMTP password (never logged)").tag(config=True)
    use_tls = Bool(False, help="STARTTLS after connecting").tag(config=True)
    smtp_timeout = Float(10.0, help="Seconds per SMTP connection attempt").tag(config=True)
    smtp_attempts = Integer(5, help="SMTP attempts per mail (MMODA: 5, 0.5 s apart)").tag(config=True)
    smtp_retry_delay = Float(0.5).tag(config=True)
    sender = Unicode("team@odahub.io", help="From address").tag(config=True)
    cc = List(Unicode(), help="CC addresses of every mail").tag(config=True)
    bcc = List(Unicode(), help="BCC addresses of every mail").tag(config=True)
    contact_email = Unicode("contact@odahub.io", help="Reply-To and contact address").tag(config=True)
    subject_tag = Unicode("ODA", help="Tag in the subject: [ODA][submitted] ...").tag(config=True)
    site_name = Unicode("University of Geneva", help="Who provides the service").tag(config=True)
    products_url = Unicode("http://127.0.0.1:8000", help="Frontend URL; the request is repeated as its query").tag(config=True)
    dispatcher_url = Unicode("", help="URL for oda_api code (default: products_url + '/dispatch-data')").tag(config=True)
    job_url = Unicode(
        "", help="Template of a direct link to a job, e.g. '{products_url}/jobs/{job_id}' (empty: none)"
    ).tag(config=True)

    @observe("smtp_host")
    def _alias_host(self, change: dict) -> None:
        self.smtp_server = change["new"]

    # -- content ----------------------------------------------------------------------

    def subject(self, job: Job, status: str) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(job.created))
        return f"[{self.subject_tag}][{status}] {job.product} requested at {when} job_id: {job.job_id[:8]}"

    def links(self, job: Job) -> tuple[str | None, str]:
        """(URL, note) following MMODA's length rules for the status link."""
        url = request_url(job, self.products_url)
        direct = self.job_url.format(products_url=self.products_url, job_id=job.job_id) if self.job_url else None
        if len(url) < 600:
            return url, "Note that this url is permanent, and can be used to refer to the results as long as the service exists."
        if direct:
            return direct, "This url leads to this job of yours."
        return None, "The request is too long to be written as a url; repeat it with the python code below."

    def delivery_time(self) -> float:
        return self.smtp_attempts * (self.smtp_timeout + self.smtp_retry_delay) + 30.0

    def message_id(self, job: Job, kind: str) -> str:
        """The same for every try of one mail: a resent copy is recognisably a duplicate."""
        domain = self.sender.rpartition("@")[2] or "mmoda.local"
        return f"<mmoda.{job.job_id}.{job.generation}.{kind.replace(':', '-')}@{domain}>"

    def compose(self, job: Job, status: str, paragraphs: list[str], kind: str | None = None) -> EmailMessage:
        url, note = self.links(job)
        code = api_code(job, self.dispatcher_url or self.products_url.rstrip("/") + "/dispatch-data")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(job.created))
        intro = (
            f"you receive this message because at {when} UTC you submitted a request for a "
            f"{job.product} ({job.instrument}) from the service provided by {self.site_name}, "
            f"available at the URL {self.products_url}."
        )
        params = "\n".join(f"    {k} = {v}" for k, v in _public_params(job).items())
        link = (
            f'You can inspect the status of your job using the following url: "{url}".\n\n{note}\n'
            "Such link is intended for the recipient of this email, please do NOT share it, "
            "since this might contain sensitive information."
            if url else note
        )
        text = "\n\n".join(
            [
                "Dear User,",
                intro,
                *paragraphs,
                link,
                f"The parameters of your request (job_id {job.job_id}):\n{params}",
                "You can also retrieve the result by repeating the request (either with frontend "
                "or with the python API query at the end of this message.).",
                f'In case you have questions or issues you can contact us at this email: '
                f'"mailto:{self.contact_email}" or reply to the current message.',
                "Kind regards,\n\nThe ODA team.",
                "Python API code:\n\n" + code,
            ]
        ) + "\n"
        esc = html.escape
        link_html = (
            f'You can inspect the status of your job using the following <a href="{esc(url)}">url</a>.<br>\n'
            f"{esc(note)}<br>\nSuch link is intended for the recipient of this email, please do "
            "<b>NOT</b> share it, since this might contain sensitive information.<br>"
            if url else esc(note) + "<br>"
        )
        rows = "".join(
            f"<tr><td>{esc(k)}</td><td>{esc(str(v))}</td></tr>" for k, v in _public_params(job).items()
        )
        body_html = "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en">',
                f"<head><title>{esc(self.subject(job, status))}</title></head>",
                "<body>",
                "Dear User,<br><br>",
                esc(intro) + "<br><br>",
                *(esc(p).replace("\n", "<br>\n") + "<br><br>" for p in paragraphs),
                link_html + "<br><br>",
                f"The parameters of your request (job_id {esc(job.job_id)}):<br>",
                f'<table border="1" cellpadding="3">{rows}</table><br>',
                "You can also retrieve the result by repeating the request (either with frontend or "
                "with the python API query at the end of this message.).<br><br>",
                f'In case you have questions or issues you can contact us at <a href="mailto:'
                f'{esc(self.contact_email)}">this email</a> or reply to the current message.<br><br>',
                "Kind regards,<br><br>The ODA team.<br><br>",
                "Python API code:<br><br>",
                '<div style="background-color: lightgray; display: inline-block; padding: 5px;">'
                + esc(code).replace("\n", "<br>\n")
                + "</div>",
                "</body>",
                "</html>",
            ]
        )
        msg = EmailMessage(policy=_POLICY)
        msg["Subject"] = self.subject(job, status)
        msg["From"] = self.sender
        msg["To"] = job.email
        if self.cc:
            msg["CC"] = ", ".join(self.cc)
        msg["Reply-To"] = self.contact_email
        msg["Message-ID"] = self.message_id(job, kind or status)
        msg.set_content(text)
        msg.add_alternative(body_html, subtype="html")
        return msg

    # -- delivery ---------------------------------------------------------------------

    def deliver(self, msg: EmailMessage) -> None:
        """Send over SMTP, retrying a few times; raises the last error if every attempt failed."""
        to = [msg["To"], *self.cc, *self.bcc]
        last: Exception | None = None
        for attempt in range(self.smtp_attempts):
            accepted = False
            try:
                with _SMTP(self.smtp_server, self.smtp_port, timeout=self.smtp_timeout) as smtp:
                    if self.use_tls:
                        smtp.starttls()
                    if self.smtp_user:
                        smtp.login(self.smtp_user, self.smtp_password or "")
                    smtp.send_message(msg, to_addrs=to)
                    accepted = True  # the server took responsibility for the mail
                self.log.info("mail sent to %s: %s", msg["To"], msg["Subject"])
                return
            except (OSError, smtplib.SMTPException) as err:
                if accepted:  # only the goodbye failed: the mail is delivered, never send it again
                    self.log.info("mail sent to %s: %s (QUIT failed: %s)", msg["To"], msg["Subject"], err)
                    return
                last = err
                self.log.warning("SMTP attempt %d to %s:%s failed: %s", attempt + 1, self.smtp_server, self.smtp_port, err)
                time.sleep(self.smtp_retry_delay)
        assert last is not None
        raise last

    def send_submitted(self, job: Job) -> None:
        self.deliver(self.compose(job, "submitted", ["Once products will be ready, you will receive a new email."]))

    def send_done(self, job: Job) -> None:
        took = (job.finished or time.time()) - job.created
        if job.status is JobStatus.DONE:
            paras = [f"Your request is done: it took {took:.1f} seconds, and the products are ready."]
            if self.job_url:
                paras.append("Products: " + self.job_url.format(products_url=self.products_url, job_id=job.job_id))
            status = "done"
        else:
            paras = [f"Unfortunately your request {job.status.value} after {took:.1f} seconds:\n{job.error or ''}"]
            status = job.status.value
        self.deliver(self.compose(job, status, paras))

    def send_feedback(self, job: Job, message: str, author: str | None = None, kind: str = "feedback") -> None:
        by = f" ({author})" if author else ""
        paras = [f"The ODA team{by} left a message about this request:\n\n{message}"]
        self.deliver(self.compose(job, "feedback", paras, kind))
