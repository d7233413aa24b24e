"""E-mails through a real SMTP server (aiosmtpd on 127.0.0.1): MMODA's rules, at most once."""

from __future__ import annotations

import time

from jobs_toy import free_port

from mmoda_ext.access.rights import Rights
from mmoda_ext.jobs.notify import EmailNotifier
from mmoda_ext.models import JobStatus


def notifier(port: int, **kw) -> EmailNotifier:
    kw.setdefault("completion_threshold", 0.5)
    return EmailNotifier(
        smtp_server="127.0.0.1", smtp_port=port, sender="team@odahub.io", contact_email="contact@odahub.io",
        products_url="http://127.0.0.1:8011", smtp_retry_delay=0.05, **kw,
    )


def mails_for(box, job_id):
    return [m for m in box.messages if str(m["Subject"]).endswith(job_id[:8])]


def wait_mails(box, n, timeout=5.0):
    end = time.monotonic() + timeout
    while len(box.messages) < n and time.monotonic() < end:
        time.sleep(0.02)


def test_long_job_gets_one_submission_and_one_completion_mail(make_manager, smtp, alice):
    box, port = smtp
    m = make_manager(notifier=notifier(port))
    job = m.submit("toy", "slow", {"duration": 0.8, "steps": 4, "tag": "long"}, alice)
    again = m.submit("toy", "slow", {"duration": 0.8, "steps": 4, "tag": "long"}, alice)  # attaches
    assert again.job_id == job.job_id
    m.wait(job.job_id, 10)
    m.wait(m.submit("toy", "slow", {"duration": 0.8, "steps": 4, "tag": "long"}, alice).job_id, 1)
    m.wait_mail()
    mails = mails_for(box, job.job_id)
    subjects = [str(x["Subject"]) for x in mails]
    assert len(mails) == 2, subjects
    sub, done = mails
    assert subjects[0].startswith("[ODA][submitted] slow requested at ")
    assert subjects[1].startswith("[ODA][done] slow requested at ")
    for mail in mails:
        assert mail["From"] == "team@odahub.io" and mail["To"] == alice.email
        assert mail["Reply-To"] == "contact@odahub.io"
        assert mail.envelope_to == [alice.email]
        assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    text = sub.get_body(("plain",)).get_content()
    html = sub.get_body(("html",)).get_content()
    assert "you submitted a request for a slow (toy)" in text
    assert 'http://127.0.0.1:8011?DEC=-29.74516667&RA=265.97845833' in text
    assert "product_type=slow" in text and "query_status=new" in text and "duration=0.8" in text
    assert "Note that this url is permanent" in text
    # the python code repeats the request with oda_api argument names, and carries no token
    assert 'from oda_api.api import DispatcherAPI' in text
    assert 'DispatcherAPI(url="http://127.0.0.1:8011/dispatch-data"' in text
    assert '"product": "slow",' in text and '"product_type": "Real",' in text and '"duration": 0.8,' in text
    assert "discover_token()" in text and "eyJ" not in text
    assert "<!DOCTYPE html>" in html and "Python API code:" in html and "&quot;product&quot;: &quot;slow&quot;" in html
    done_text = done.get_body(("plain",)).get_content()
    assert "Your request is done" in done_text
    # compile the snippet: it is valid Python
    code = text.split("Python API code:")[1]
    compile(code, "api_code.py", "exec")
    assert [e["kind"] for e in m.store.events(job.job_id)] == ["submitted", "done"]


def test_short_job_gets_no_completion_mail(make_manager, smtp, alice):
    box, port = smtp
    m = make_manager(notifier=notifier(port, completion_threshold=30))
    job = m.wait(m.submit("toy", "sum", {"n": 2, "tag": "short"}, alice).job_id, 10)
    assert job.status is JobStatus.DONE
    m.wait_mail()
    assert [str(x["Subject"]).split("]")[1] for x in mails_for(box, job.job_id)] == ["[submitted"]
    assert m.store.get(job.job_id) and not m.store.pending_notifications()


def test_failed_job_mail_and_no_mail_without_address(make_manager, smtp, alice):
    box, port = smtp
    m = make_manager(notifier=notifier(port, completion_threshold=30, on_submit=False))
    job = m.wait(m.submit("toy", "nodata", {"tag": "f"}, alice).job_id, 10)
    anon = m.wait(m.submit("toy", "nodata", {"tag": "f"}, Rights()).job_id, 10)
    m.wait_mail()
    (mail,) = mails_for(box, job.job_id)
    assert str(mail["Subject"]).startswith("[ODA][failed] nodata")
    assert "No science window in the time interval" in mail.get_body(("plain",)).get_content()
    assert anon.status is JobStatus.FAILED and mails_for(box, anon.job_id) == []


def test_feedback_mail(make_manager, smtp, alice):
    box, port = smtp
    m = make_manager(notifier=notifier(port, on_submit=False))
    job = m.wait(m.submit("toy", "sum", {"n": 1}, alice).job_id, 10)
    m.add_feedback(job.job_id, "Your source is 20 deg off-axis; use scw_list to select pointings.", "Volodymyr")
    m.wait_mail()
    (mail,) = mails_for(box, job.job_id)
    assert str(mail["Subject"]).startswith("[ODA][feedback] sum requested at")
    body = mail.get_body(("plain",)).get_content()
    assert "The ODA team (Volodymyr) left a message" in body and "20 deg off-axis" in body


def test_submission_interval_and_smtp_down(make_manager, smtp, alice, tmp_path):
    """A job resubmitted within email_interval gets no second submission mail; an SMTP server
    that is down delays the mail (it stays due), never the job."""
    box, port = smtp
    m = make_manager(notifier=notifier(port, email_interval=60))
    job = m.wait(m.submit("toy", "nodata", {"tag": "i"}, alice).job_id, 10)
    m.wait(m.submit("toy", "nodata", {"tag": "i"}, alice).job_id, 10)  # a new run, within 60 s
    m.wait_mail()
    subjects = [str(x["Subject"]) for x in mails_for(box, job.job_id)]
    assert sum("[submitted]" in s for s in subjects) == 1 and sum("[failed]" in s for s in subjects) == 2

    down = make_manager(root=str(tmp_path / "down"), notifier=notifier(free_port(), smtp_attempts=2))
    job = down.wait(down.submit("toy", "sum", {"n": 1}, alice).job_id, 10)
    down.wait_mail()
    assert job.status is JobStatus.DONE
    assert down.store.events(job.job_id) == []  # not sent ...
    assert [m["kind"] for m in down.store.due_mails(job.job_id)] == ["submitted"]  # ... and not lost
