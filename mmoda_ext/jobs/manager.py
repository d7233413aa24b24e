"""The job manager: accept a request durably, run it in the background, never lose it.

``submit`` validates (``PublicError`` before anything is stored), derives the MMODA job id,
answers an identical request with the existing job, applies the per-hour request limit,
commits the job to the store and only then schedules it. Jobs run in a small thread pool;
each calls the product on a compute context (one Dask client shared by every job) whose
progress callback writes to the store and is also where cancellation and shutdown stop a
running product.

Never lost, never twice
-----------------------
A worker *claims* a job (a lease renewed by a heartbeat, attempt + 1) before running it and
finishes it with a conditional update that only the lease holder can make. ``start()``
re-queues every unfinished job; a job whose holder died (killed process) is claimed again.
``products.json`` is written atomically just before the job is marked done, so a job that
completed its products before a crash is marked done without running again. E-mails are
queued in the store's outbox in the same transaction as the change they tell about (accepted,
finished, feedback) and marked sent only after the SMTP server accepted them: one mailer thread
sends due mails after each change, and again every ``mail_retry_interval`` while SMTP is down.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from traitlets import Any as AnyTrait
from traitlets import CaselessStrEnum, Dict, Float, Instance, Integer, Set, Type, Unicode, default
from traitlets.config import LoggingConfigurable

from .. import engine
from ..access.rights import Rights
from ..errors import PublicError, shown
from ..instruments import get_instrument
from ..instruments.base import Instrument, ProductSet
from ..models import Job, JobStatus, write_products
from . import ids, retention
from .cache import ProvenanceCache
from .compute import DaskContext, SerialContext, local_client
from .integrity import MANIFEST_FILE, Verifier, write_manifest
from .notify import Notifier
from .store import LIVE_OWNERS, JobStore, RateLimited, new_owner

__all__ = ["JobManager"]


class _Interrupted(Exception):
    """Raised from the progress callback to stop a running product (cancel or shutdown)."""


class JobManager(LoggingConfigurable):
    """Runs jobs in the background and keeps them in a durable store under ``root``."""

    root = Unicode("mmoda-jobs", help="Folder holding jobs.sqlite, jobs/<job_id>/ and cache/").tag(config=True)
    compute = CaselessStrEnum(
        ["dask", "serial"], "dask", help="Where products run: a shared Dask client, or in the job's thread"
    ).tag(config=True)
    scheduler_address = Unicode(None, allow_none=True, help="Dask scheduler to use instead of a LocalCluster").tag(config=True)
    n_workers = Integer(None, allow_none=True, help="Workers of the embedded LocalCluster (default: one per core)").tag(config=True)
    client = AnyTrait(None, allow_none=True, help="An existing distributed.Client (not closed by stop())")
    concurrency = Integer(4, help="Jobs running at once (threads driving the Dask graphs; more than "
                          "one user's running_jobs, so that another user's job always finds a slot)").tag(config=True)
    running_jobs_per_user = Integer(
        1, min=1, help="Jobs of one user running at once when their tier sets no running_jobs; "
        "waiting jobs start in fair share (the user with fewest running jobs first)").tag(config=True)
    max_retries = Integer(2, help="Re-runs of a job whose product raised an unexpected error (PublicError: none)").tag(config=True)
    max_attempts = Integer(5, help="Claims of one job, crashes included, before it is declared failed").tag(config=True)
    retry_delay = Float(1.0, help="Seconds between a failure and its retry").tag(config=True)
    lease_seconds = Float(60.0, help="A running job's lease; renewed every third of it").tag(config=True)
    rescan_interval = Float(30.0, help="Seconds between looks for orphaned unfinished jobs").tag(config=True)
    progress_interval = Float(0.5, help="Minimum seconds between progress writes of one job").tag(config=True)
    stop_timeout = Float(10.0, help="Seconds stop() waits for running jobs to reach a stopping point").tag(config=True)
    rate_window = Float(3600.0, help="Window of the per-user request limit (Rights.requests_per_hour)").tag(config=True)
    archive_root = Unicode(None, allow_none=True, help="Archive folder (default: the archive package's default)").tag(config=True)
    archive = AnyTrait(None, allow_none=True, help="An archive object (overrides archive_root)")
    instruments = Dict(help="Instrument objects by name, overriding the registry (tests, plug-ins)")
    admin_roles = Set({"job manager"}, help="Roles that may see every job").tag(config=True)
    retention_max_bytes = Integer(
        20 * 2**30, allow_none=True, help="Disk budget (bytes) of finished jobs' products plus the provenance "
        "cache; beyond it the least recently used go first (None: no limit)").tag(config=True)
    retention_max_age = Float(
        30 * 86400.0, allow_none=True, help="Seconds after their last use that a finished job's products "
        "and cache entries are deleted (None: kept)").tag(config=True)
    retention_min_age = Float(3600.0, help="Nothing used more recently than this (s) is deleted").tag(config=True)
    retention_interval = Float(600.0, help="Seconds between retention sweeps").tag(config=True)
    mail_retry_interval = Float(300.0, help="Seconds between new tries of mails not delivered "
                                "(SMTP down)").tag(config=True)
    prepare_cache_seconds = Float(60.0, help="Seconds a validated request is remembered for its repeats").tag(config=True)
    notifier_class = Type(Notifier, klass=Notifier, help="Notifier (e-mails); EmailNotifier for SMTP").tag(config=True)
    notifier = Instance(Notifier, allow_none=True)

    @default("notifier")
    def _default_notifier(self) -> Notifier:
        return self.notifier_class(parent=self)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root_path = Path(self.root)
        self.store = JobStore(self.root_path / "jobs.sqlite")
        self.cache = ProvenanceCache(self.root_path / "cache")
        self.verifier = Verifier()
        self.notifier.store = self.store
        self.owner = new_owner()
        self._executor: ThreadPoolExecutor | None = None
        self._mailer: ThreadPoolExecutor | None = None
        self._stopping = threading.Event()
        #: job id -> the generation (run) the user cancelled; a new run is never stopped by it
        self._cancelled: dict[str, int] = {}
        self._queued: set[str] = set()
        #: queued jobs not yet running, in arrival order: job id -> (user, that user's limit)
        self._waiting: dict[str, tuple[str, int]] = {}
        self._prepared: dict[tuple, tuple[float, Instrument, dict]] = {}
        #: fair-share key of new anonymous jobs: their client address (else the job's user)
        self._share_key: dict[str, str] = {}
        self._running_users: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._client_lock = threading.Lock()
        self._dask_client: Any = None
        self._own_client = False
        self._heartbeat: threading.Thread | None = None
        self._archive = self.archive

    # -- lifecycle --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._executor is not None and not self._stopping.is_set()

    async def start(self) -> None:
        """Start the workers and resume every unfinished job found in the store."""
        await asyncio.get_running_loop().run_in_executor(None, self.start_sync)

    async def stop(self) -> bool:
        """Stop: running products stop at their next check and resume on next start.

        Returns False when a job thread was still running after ``stop_timeout`` (its job is
        released and resumes on the next start; the caller may end the process)."""
        return await asyncio.get_running_loop().run_in_executor(None, self.stop_sync)

    def start_sync(self) -> None:
        if self._executor is not None:
            return
        LIVE_OWNERS.add(self.owner)
        self._stopping.clear()
        self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="mmoda-job")
        self._mailer = ThreadPoolExecutor(1, thread_name_prefix="mmoda-mail")
        resumed = self._queue_unfinished()
        self._send_mails()
        self._heartbeat = threading.Thread(target=self._beat, name="mmoda-jobs-heartbeat", daemon=True)
        self._heartbeat.start()
        self.log.info("Job manager started in %s; resumed %d unfinished job(s)", self.root_path, resumed)

    def stop_sync(self) -> bool:
        if self._executor is None:
            return True
        self._stopping.set()
        executor, mailer = self._executor, self._mailer
        waiter = threading.Thread(target=executor.shutdown, kwargs={"wait": True, "cancel_futures": True})
        waiter.start()
        waiter.join(self.stop_timeout)
        clean = not waiter.is_alive()
        if not clean:
            self.log.warning("job threads still running after %g s: %s; they resume on the next start",
                             self.stop_timeout, ", ".join(sorted(self._queued)))
        for job_id in list(self._queued):
            self.store.release(job_id, self.owner)
        with self._lock:
            self._queued -= set(self._waiting)
            self._waiting.clear()
        if mailer is not None:
            mailer.shutdown(wait=True)
        if self._heartbeat is not None:
            self._heartbeat.join(5)
        LIVE_OWNERS.discard(self.owner)
        self._executor = self._mailer = self._heartbeat = None
        if self._own_client and self._dask_client is not None:
            cluster = getattr(self._dask_client, "cluster", None)
            self._dask_client.close()
            if cluster is not None:
                cluster.close()
            self._dask_client, self._own_client = None, False
        return clean

    def close(self) -> None:
        self.stop_sync()
        self.store.close()

    def _queue_unfinished(self) -> int:
        n = 0
        for job in self.store.unfinished():
            n += self._schedule(job.job_id)
        return n

    def _beat(self) -> None:
        last_scan = time.monotonic()
        last_sweep = -math.inf
        last_mail = time.monotonic()
        while not self._stopping.wait(max(min(self.lease_seconds / 3, self.mail_retry_interval), 0.05)):
            try:
                self.store.renew(self.owner, self.lease_seconds)
                if time.monotonic() - last_scan > self.rescan_interval:
                    last_scan = time.monotonic()
                    self._queue_unfinished()
                if time.monotonic() - last_sweep > self.retention_interval:
                    last_sweep = time.monotonic()
                    self.sweep()
                if time.monotonic() - last_mail > self.mail_retry_interval:
                    last_mail = time.monotonic()
                    if self.store.due_mails():
                        self._send_mails()
            except Exception:  # the heartbeat must outlive a busy database
                self.log.exception("job heartbeat failed")

    def _schedule(self, job_id: str) -> bool:
        with self._lock:
            if self._executor is None or self._stopping.is_set() or job_id in self._queued:
                return False
            self._queued.add(job_id)
        job = self.store.get(job_id)
        with self._lock:
            key = self._share_key.pop(job_id, None)
        user = key or (job.user if job is not None else "")
        limit = getattr(self.store.rights(job_id), "running_jobs", None) or self.running_jobs_per_user
        with self._lock:
            self._waiting[job_id] = (user, limit)
        self._dispatch()
        return True

    def _dispatch(self) -> None:
        """Start waiting jobs on free slots: a user below their limit, fewest running first,
        then the oldest job. One user's big jobs never hold every slot."""
        with self._lock:
            while self._executor is not None and not self._stopping.is_set() and self._waiting \
                    and sum(self._running_users.values()) < self.concurrency:
                best: tuple[str, str, int] | None = None
                for jid, (user, limit) in self._waiting.items():
                    running = self._running_users[user]
                    if running < limit and (best is None or running < best[2]):
                        best = (jid, user, running)
                        if running == 0:
                            break
                if best is None:
                    return
                jid, user, _ = best
                del self._waiting[jid]
                self._running_users[user] += 1
                self._executor.submit(self._run_slot, jid, user)

    def _run_slot(self, job_id: str, user: str) -> None:
        try:
            self._execute(job_id)
        finally:
            with self._lock:
                self._running_users[user] -= 1
                if self._running_users[user] <= 0:
                    del self._running_users[user]
            self._dispatch()

    def _send_mails(self) -> None:
        """Have the mailer thread send the outbox's due mails (each stays due until accepted)."""
        if self._mailer is None:
            return

        def call() -> None:
            try:
                self.notifier.deliver_due(self.owner)
            except Exception:  # a busy database: the next round sends them
                self.log.exception("sending due mails failed")

        self._mailer.submit(call)

    # -- the door ---------------------------------------------------------------------

    def instrument(self, name: str) -> Instrument:
        return self.instruments[name] if name in self.instruments else get_instrument(name)

    def get_archive(self) -> Any:
        if self._archive is None:
            try:
                from ..archive import default_archive  # type: ignore[attr-defined]
            except ImportError:
                return None
            self._archive = default_archive(self.archive_root)
        return self._archive

    def prepare(
        self, instrument: str, product: str, raw: dict, rights: Rights, *, allow_unknown: bool = False
    ) -> tuple[Instrument, dict[str, Any]]:
        """Validate a request as the engine does (raises ``PublicError``).

        An identical request by the same rights within ``prepare_cache_seconds`` reuses the
        result: a repeated request (``oda_api`` polls, a cached product) skips parsing and
        the science-window selection."""
        try:
            key = (instrument, product, ids.canonical_json(raw), rights, allow_unknown)
            hash(key)
        except (TypeError, ValueError):
            key = None
        now = time.monotonic()
        if key is not None:
            with self._lock:
                hit = self._prepared.get(key)
            if hit is not None and now - hit[0] < self.prepare_cache_seconds:
                return hit[1], dict(hit[2])
        inst, params = self._prepare(instrument, product, raw, rights, allow_unknown=allow_unknown)
        if key is not None:
            with self._lock:
                self._prepared[key] = (now, inst, dict(params))
                while len(self._prepared) > 512:
                    self._prepared.pop(next(iter(self._prepared)))
        return inst, params

    def _prepare(
        self, instrument: str, product: str, raw: dict, rights: Rights, *, allow_unknown: bool = False
    ) -> tuple[Instrument, dict[str, Any]]:
        if instrument not in self.instruments:
            return engine.prepare(instrument, product, raw, rights, self.get_archive(), allow_unknown=allow_unknown)
        inst = self.instruments[instrument]
        archive = self.get_archive()
        if archive is not None and "RA" in inst.param_set(product).names():
            raw = engine.resolve_target(raw, archive)
        params = inst.parse(product, raw, allow_unknown=allow_unknown)
        inst.check(product, params, rights)
        return inst, params

    @staticmethod
    def is_anonymous(rights: Rights) -> bool:
        return rights.user in ("", "anonymous")

    def submit(
        self,
        instrument: str,
        product: str,
        raw: dict,
        rights: Rights,
        *,
        query_type: str = "Real",
        allow_unknown: bool = False,
        session_id: str | None = None,
        client: str | None = None,
    ) -> Job:
        """Accept a request; the returned job is durably stored (or is the identical earlier one).

        ``client`` is the caller's network address: anonymous callers are rate-limited per
        address (a session id is theirs to choose, so it cannot be the key); users per user.
        An anonymous caller repeating another session's request shares its job (a cache) but
        never learns that session's id.
        """
        inst, params = self.prepare(instrument, product, raw, rights, allow_unknown=allow_unknown)
        anonymous = self.is_anonymous(rights)
        user = "anonymous" if anonymous else rights.user
        hashed = {**params, "instrument": inst.name, "product_type": product, "query_type": query_type}
        jid = ids.job_id(hashed, None if anonymous else rights.user)
        existing = self.store.get(jid)
        rerun_done = existing is not None and existing.status is JobStatus.DONE and not self._products_ok(existing)
        job = Job(
            job_id=jid, user=user, email=rights.email, instrument=inst.name, product=product,
            params=hashed, outdir=self.root_path / "jobs" / jid, query_type=query_type,
            session_id=session_id,
        )
        rate_key = user if not anonymous else f"anonymous@{client or 'local'}"
        try:
            job, created = self.store.submit(
                job, rights, rate_key=rate_key, rate_limit=rights.requests_per_hour,
                rerun_done=rerun_done, window=self.rate_window,
                submit_mail=self.notifier.email_interval if self.notifier.on_submit else None,
            )
        except RateLimited as err:
            wait_min = max(1, math.ceil((err.oldest + self.rate_window - time.time()) / 60))
            raise PublicError(
                f"Too many requests: {err.count} new requests in the last hour, and your tier "
                f"'{rights.tier}' allows {rights.requests_per_hour} per hour. Repeating an earlier "
                f"request is free; for a new one, try again in {wait_min} minute(s). "
                + (getattr(rights, "how_to_get_more", "") or "Log in, or ask the team for a higher tier (e.g. hpc) to get more."),
                parameter="requests_per_hour", value=rights.requests_per_hour, status=429,
            ) from None
        if created:
            if anonymous:
                with self._lock:
                    self._share_key[jid] = rate_key
            self.log.info("job %s accepted: %s %s for %s", jid, inst.name, product, user)
            self._send_mails()
            self._schedule(jid)
        return self._view(job, rights, session_id)

    def _view(self, job: Job, rights: Rights, session_id: str | None) -> Job:
        """The job as this caller may see it: an anonymous caller sees only their own session id."""
        if self.is_anonymous(rights) and job.session_id is not None and job.session_id != session_id:
            job.session_id = None
        return job

    def owns_session(self, job: Job, rights: Rights, session_id: str | None) -> bool:
        """Whether the caller controls the job: its user, or for an anonymous job its session."""
        if getattr(rights, "admin", False) or self.admin_roles & set(rights.roles):
            return True
        if self.is_anonymous(rights):
            return job.user == "anonymous" and bool(session_id) and job.session_id == session_id
        return job.user == rights.user

    def _products_ok(self, job: Job) -> bool:
        return self.products_ok(job)

    def products_ok(self, job: Job) -> bool:
        """Whether a job's product files are all there as written (size and checksum)."""
        problem = self.verifier.problem(job.outdir)
        if problem is not None and job.status is JobStatus.DONE:
            self.log.warning("job %s: products damaged or removed (%s); it runs again when asked",
                             job.job_id, problem)
        if problem is None:
            try:  # last use, for the retention policy
                os.utime(job.outdir / MANIFEST_FILE)
            except OSError:
                pass
        return problem is None

    # -- disk -------------------------------------------------------------------------

    def disk_usage(self) -> dict[str, int]:
        """Bytes and counts of job folders and provenance-cache entries under ``root``."""
        return retention.disk_usage(self.root_path / "jobs", self.cache.root)

    def sweep(self) -> dict[str, int]:
        """Apply the retention policy once (never touches an unfinished or queued job)."""
        protected = {j.job_id for j in self.store.unfinished()} | set(self._queued)
        items = retention.scan(self.root_path / "jobs", self.cache.root, protected)
        removed = retention.sweep(items, max_bytes=self.retention_max_bytes, max_age=self.retention_max_age,
                                  min_age=self.retention_min_age)
        if removed["jobs"] or removed["cache_entries"]:
            self.log.info("retention: removed %d job folder(s) and %d cache entries (%.1f MB); %.1f MB kept",
                          removed["jobs"], removed["cache_entries"], removed["bytes"] / 1e6,
                          removed["left_bytes"] / 1e6)
        if self.retention_max_bytes is not None and removed["left_bytes"] > self.retention_max_bytes:
            self.log.warning("retention: %.1f MB in use, above the budget of %.1f MB (all recently used)",
                             removed["left_bytes"] / 1e6, self.retention_max_bytes / 1e6)
        return removed

    def _may_see(self, job: Job, rights: Rights) -> bool:
        if getattr(rights, "admin", False) or self.admin_roles & set(rights.roles):
            return True
        if self.is_anonymous(rights):
            return job.user == "anonymous"  # the job id is the capability, as in MMODA
        return job.user == rights.user

    def get(self, job_id: str, rights: Rights, session_id: str | None = None) -> Job:
        """The caller's job; 404 for an unknown job and for anyone else's (no hint it exists).

        Anonymous jobs are readable by their id (the id is the capability, as in MMODA), but
        their session id is shown only to that session."""
        job = self.store.get(job_id)
        if job is None or not self._may_see(job, rights):
            raise PublicError(
                f"There is no job {shown(job_id)} of yours. Check the job id, or submit the request again.",
                parameter="job_id", value=job_id, status=404,
            )
        return self._view(job, rights, session_id)

    def list(self, rights: Rights, session_id: str | None = None) -> list[Job]:
        """The caller's jobs, newest first (anonymous callers: only those of their session)."""
        if self.is_anonymous(rights):
            return self.store.list_user("anonymous", session_id) if session_id else []
        return self.store.list_user(rights.user, session_id)

    def cancel(self, job_id: str, rights: Rights, session_id: str | None = None) -> Job:
        """Cancel the caller's unfinished job (a finished one is returned as it is).

        An anonymous job can be cancelled only by the session that submitted it."""
        job = self.get(job_id, rights, session_id)
        if job.status.finished:
            return job
        if not self.owns_session(self.store.get(job_id) or job, rights, session_id):
            raise PublicError(
                f"Job {job_id} was submitted by another session; only that session may cancel it "
                "(give its session_id).", parameter="session_id", value=session_id, status=403,
            )
        self._cancelled[job_id] = job.generation
        self.store.finish(job_id, None, JobStatus.CANCELLED, error="The job was cancelled at the user's request.")
        return self.get(job_id, rights, session_id)

    def products(self, job_id: str, rights: Rights) -> ProductSet:
        """The products of the caller's finished job (files under ``job.outdir``)."""
        job = self.get(job_id, rights)
        if job.status is not JobStatus.DONE:
            raise PublicError(
                f"Job {job_id} is {job.status.value}; products exist once it is done"
                + (f" ({job.error})" if job.error else "."),
                parameter="job_id", value=job_id, status=409,
            )
        if not self.products_ok(job):
            raise PublicError(
                f"The products of job {job_id} are no longer stored whole; submit the same request "
                "again to compute them anew.", parameter="job_id", value=job_id, status=410,
            )
        return job.products()

    def wait(self, job_id: str, timeout: float = 60.0, poll: float = 0.05) -> Job:
        """Block until the job is finished (tests, CLI); raises ``TimeoutError``."""
        end = time.monotonic() + timeout
        while True:
            job = self.store.get(job_id)
            if job is None:
                raise KeyError(job_id)
            if job.status.finished:
                return job
            if time.monotonic() > end:
                raise TimeoutError(f"job {job_id} still {job.status.value} after {timeout} s")
            time.sleep(poll)

    def wait_mail(self, timeout: float = 10.0) -> None:
        """Block until running jobs have queued their notifications and those were handled (tests).

        A job is marked done before its completion mail is queued, so a caller that saw it
        done must first wait for the job's thread to finish, then flush the mailer.
        """
        end = time.monotonic() + timeout
        while self._queued and time.monotonic() < end:
            time.sleep(0.01)
        if self._mailer is not None:
            self._mailer.submit(lambda: None).result(max(end - time.monotonic(), 0.1))

    # -- banner and feedback ----------------------------------------------------------

    def publish_banner(self, text: str, kind: str = "news", expires: Any = None) -> dict:
        """Show ``text`` to every user (``kind`` news or issue) until ``expires`` (unix time,
        datetime or astropy Time; None: until removed)."""
        if kind not in ("news", "issue"):
            raise PublicError(f"Banner kind {kind!r} is not allowed. Allowed: news, issue.", "kind", kind)
        if expires is not None and not isinstance(expires, (int, float)):
            expires = expires.timestamp() if isinstance(expires, datetime) else float(expires.unix)
        return self.store.add_banner(text, kind, expires)

    def banners(self) -> list[dict]:
        """Banners not yet expired, newest first."""
        return self.store.banners()

    def remove_banner(self, banner_id: int) -> bool:
        return self.store.remove_banner(banner_id)

    def add_feedback(self, job_id: str, message: str, author: str) -> dict:
        """Attach an operator's feedback to a job and e-mail it to the job's owner."""
        job = self.store.get(job_id)
        if job is None:
            raise PublicError(f"There is no job {shown(job_id)}.", parameter="job_id", value=job_id, status=404)
        entry = self.store.add_feedback(job_id, message, author, notify=True)
        if self._mailer is not None:
            self._send_mails()
        else:
            self.notifier.deliver_due(self.owner)
        return entry

    # -- running ----------------------------------------------------------------------

    def dask_client(self) -> Any:
        """The one Dask client every job shares (created on first use)."""
        with self._client_lock:
            if self._dask_client is None:
                if self.client is not None:
                    self._dask_client = self.client
                elif self.scheduler_address:
                    from distributed import Client

                    self._dask_client, self._own_client = Client(self.scheduler_address), True
                else:
                    self._dask_client, self._own_client = local_client(self.n_workers), True
            return self._dask_client

    def _context(self, job: Job, rights: Rights, on_progress) -> Any:
        check = self._check_callback(job.job_id, job.generation)
        if self.compute == "serial":
            return SerialContext(self.get_archive(), job.outdir, rights, on_progress, cache=self.cache, check=check)
        return DaskContext(
            self.get_archive(), job.outdir, rights, on_progress, client=self.dask_client(), cache=self.cache,
            check=check,
        )

    def _check_callback(self, job_id: str, generation: int):
        def check() -> None:
            if self._stopping.is_set() or self._cancelled.get(job_id) == generation:
                raise _Interrupted(job_id)

        return check

    def _execute(self, job_id: str) -> None:
        ran: list[int] = []
        try:
            self._execute_claimed(job_id, ran)
        except Exception as err:
            # never leave a claimed job behind: the heartbeat would renew its lease forever
            self.log.exception("job %s: unexpected error in the job manager", job_id)
            error = err.message if isinstance(err, PublicError) else (
                f"The job could not be run ({type(err).__name__}); please tell the team the job id {job_id}."
            )
            try:
                self.store.finish(job_id, self.owner, JobStatus.FAILED, error=error)
            except Exception:
                self.log.exception("job %s: could not record the failure", job_id)
        finally:
            with self._lock:
                self._queued.discard(job_id)
            self._after_run(job_id, ran[0] if ran else None)

    def _after_run(self, job_id: str, generation: int | None) -> None:
        """Forget a cancellation once its run ended; run at once a resubmission that came
        while the cancelled run was still stopping (it found the job queued)."""
        job = self.store.get(job_id)
        if job is None:
            return
        cancelled = self._cancelled.get(job_id)
        if cancelled is not None and (job.status.finished or cancelled < job.generation):
            self._cancelled.pop(job_id, None)
        if generation is not None and job.generation != generation and not job.status.finished:
            self._schedule(job_id)

    def _execute_claimed(self, job_id: str, ran: list[int]) -> None:
        if self._stopping.is_set():
            return
        job = self.store.claim(job_id, self.owner, self.lease_seconds)
        if job is None:
            return  # finished meanwhile, or another live manager runs it
        ran.append(job.generation)
        if self._products_ok(job):
            # a previous attempt wrote its products, then the process died: do not run again
            self._finish_done(job, "products found from an interrupted attempt")
            return
        if job.attempts > self.max_attempts:
            self.store.finish(
                job_id, self.owner, JobStatus.FAILED,
                error=f"The job was interrupted {job.attempts - 1} times (server restarts) and was "
                "given up. Please submit it again; if this repeats, tell the team the job id.",
            )
            return
        if job.attempts > 1:
            self.store.add_message(job_id, f"resumed (attempt {job.attempts})")
        rights = self.store.rights(job_id)
        inst = self.instrument(job.instrument)
        # request keys that are not parameters; a product may declare query_type (MMODA's empty*)
        drop = {"instrument", "product_type", "query_type"} - set(inst.param_set(job.product).names())
        params = {k: v for k, v in job.params.items() if k not in drop}
        for retry in range(self.max_retries + 1):
            if self._cancelled.get(job_id) == job.generation:
                return
            shutil.rmtree(job.outdir, ignore_errors=True)
            ctx = None
            try:
                ctx = self._context(job, rights, self._progress_callback(job_id, job.generation))
                result = self._run_product(inst, job.product, params, ctx)
                write_products(result, job.outdir)
                write_manifest(job.outdir)
            except _Interrupted:
                if self._stopping.is_set():
                    self.store.release(job_id, self.owner, "interrupted by a server stop; will resume")
                return
            except PublicError as err:
                self._mail_if_due(self.store.finish(
                    job_id, self.owner, JobStatus.FAILED, error=err.message,
                    notify=self._completion_due(job, JobStatus.FAILED),
                ))
                return
            except Exception as err:
                self.log.exception("job %s: attempt %d failed", job_id, retry + 1)
                if retry < self.max_retries:
                    self.store.add_message(job_id, f"attempt {retry + 1} failed ({type(err).__name__}); retrying")
                    if self._stopping.wait(self.retry_delay):
                        self.store.release(job_id, self.owner, "interrupted by a server stop; will resume")
                        return
                    continue
                self._mail_if_due(self.store.finish(
                    job_id, self.owner, JobStatus.FAILED,
                    error=f"The analysis failed after {retry + 1} attempt(s) because of an internal "
                    f"error ({type(err).__name__}). The team can see the details; please tell them "
                    f"the job id {job_id}.",
                    notify=self._completion_due(job, JobStatus.FAILED),
                ))
                return
            finally:
                if ctx is not None and hasattr(ctx, "close"):
                    ctx.close()  # a context never closes the shared client it was given
            self._finish_done(job, None, result.messages)
            return

    def _run_product(self, inst: Instrument, product: str, params: dict, ctx: Any) -> ProductSet:
        if inst.name in self.instruments:
            return inst.run(product, params, ctx)
        return engine.run(inst.name, product, params, ctx)

    def _finish_done(self, job: Job, note: str | None, messages: list[str] = ()) -> None:
        msgs = list(messages) + ([note] if note else [])
        done = self.store.finish(job.job_id, self.owner, JobStatus.DONE, messages=msgs,
                                 notify=self._completion_due(job, JobStatus.DONE))
        if done is not None:
            self.log.info("job %s done", job.job_id)
            self._mail_if_due(done)

    def _completion_due(self, job: Job, status: JobStatus) -> bool:
        return self.notifier.completion_due(job, status, time.time())

    def _mail_if_due(self, job: Job | None) -> None:
        """Send the completion mail the store queued when it finished the run (if any)."""
        if job is not None:
            self._send_mails()

    def _progress_callback(self, job_id: str, generation: int):
        last = [0.0]

        def on_progress(fraction: float, message: str) -> None:
            if self._stopping.is_set() or self._cancelled.get(job_id) == generation:
                raise _Interrupted(job_id)
            now = time.monotonic()
            if fraction < 1.0 and now - last[0] < self.progress_interval:
                return
            last[0] = now
            if not self.store.set_progress(job_id, self.owner, fraction, message):
                raise _Interrupted(job_id)  # cancelled, or no longer ours

        return on_progress
