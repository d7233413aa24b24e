"""The durable job store: SQLite in WAL mode, one file per job root.

A job row is committed (``synchronous=FULL``) before the job is acknowledged, so an accepted
job survives a crash and a power loss (if the disk honours fsync). Committed rows live in the
write-ahead log ``jobs.sqlite-wal`` until a checkpoint copies them into ``jobs.sqlite``: the two
files belong together. At start-up the store refuses (:class:`StoreError`, naming the file and
what to do) a database that is corrupt, that cannot be written, or whose log was lost after a
crash (a process that opened it died, and ``-wal`` is gone). Every state change is a conditional ``UPDATE`` (a finished job is never
touched again; only the lease holder may finish a running job), which makes resuming after a
crash safe even when two managers share one store.

E-mails go through an outbox (``events``): a mail becomes due in the same transaction as the
change it tells about (the job accepted, finished, or given feedback), with a copy of the job as
it was then, so a crash can never lose it; it is marked sent only after the SMTP server has
accepted it, so an outage only delays it. A sender leases a due mail before sending (a second
manager on the same store never sends it in parallel) and commits ``ended`` just before it
sends the SMTP end-of-data mark: a sender killed before that point leaves a mail the server
discards (sent again, once), one killed after it leaves a mail the server has (or is about to
have) accepted, which is recorded as sent and not repeated. Only a server that rejects the
mail in the same few milliseconds as the sender dies could lose it.

Schema (``meta.schema_version`` = :data:`SCHEMA_VERSION`):

``jobs``      one row per job id: request, owner, state, progress, attempts, lease
``events``    the mail outbox: (job_id, generation, kind) once, due until ``sent``
``requests``  (user, time) of every new run, for the per-hour request limit
``feedback``  operator messages attached to jobs
``banners``   news / current issues shown to every user, with an optional expiry
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from ..access.rights import Rights
from ..models import UNFINISHED, Job, JobStatus

__all__ = ["JobStore", "SCHEMA_VERSION", "RateLimited", "StoreError", "lease_owner_alive", "new_owner"]

SCHEMA_VERSION = 2  # 2: events is the mail outbox (job, extra, sent, tries, lease, ended)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    email TEXT,
    instrument TEXT NOT NULL,
    product TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    messages TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    started REAL,
    finished REAL,
    outdir TEXT NOT NULL,
    query_type TEXT NOT NULL DEFAULT 'Real',
    session_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 0,
    rights TEXT NOT NULL DEFAULT '{}',
    lease_owner TEXT,
    lease_until REAL,
    notify_pending INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs (user, created);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    generation INTEGER NOT NULL,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    job TEXT,
    extra TEXT,
    sent REAL,
    tries INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    lease_owner TEXT,
    lease_until REAL,
    ended REAL,
    PRIMARY KEY (job_id, generation, kind)
);
CREATE TABLE IF NOT EXISTS requests (user TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS requests_user ON requests (user, created);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    author TEXT NOT NULL,
    message TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_job ON feedback (job_id);
CREATE TABLE IF NOT EXISTS banners (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL
);
"""

#: columns a Job is built from
_JOB_COLS = (
    "job_id, user, email, instrument, product, params, status, progress, message, messages, "
    "error, created, updated, started, finished, outdir, query_type, session_id, attempts, "
    "generation"
)


class StoreError(RuntimeError):
    """The job store cannot be used safely; the message names the file and what to do."""


class RateLimited(Exception):
    """Raised inside :meth:`JobStore.submit` when the user's hourly limit is reached."""

    def __init__(self, count: int, oldest: float) -> None:
        super().__init__(count)
        self.count = count
        self.oldest = oldest


def rights_to_json(rights: Rights) -> str:
    """The caller's rights, kept with the job so that a resumed job runs with them."""
    d = {k: sorted(v) if isinstance(v, (set, frozenset)) else v for k, v in asdict(rights).items()}
    return json.dumps(d)


def rights_from_json(text: str) -> Rights:
    """Inverse of :func:`rights_to_json`, tolerant of fields added or removed since."""
    d = json.loads(text or "{}")
    out: dict[str, Any] = {}
    for f in fields(Rights):
        if f.name in d:
            v = d[f.name]
            out[f.name] = frozenset(v) if isinstance(v, list) else v
    return Rights(**out)


#: lease owners (job managers) alive in this process
LIVE_OWNERS: set[str] = set()


def new_owner() -> str:
    """A lease-owner name ``host:pid:nonce`` for one job manager, registered as alive."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"
    LIVE_OWNERS.add(owner)
    return owner


def lease_owner_alive(owner: str | None) -> bool:
    """Whether the job manager named by a lease owner ``host:pid:nonce`` may still be running.

    Only a process on this host can be checked; others are assumed alive until their
    lease expires. In this process, a stopped manager is dead.
    """
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    if host != socket.gethostname():
        return True
    try:
        pid = int(rest.split(":")[0])
        if pid == os.getpid():
            return owner in LIVE_OWNERS
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _row_to_job(row: sqlite3.Row) -> Job:
    return Job(
        job_id=row["job_id"],
        user=row["user"],
        email=row["email"],
        instrument=row["instrument"],
        product=row["product"],
        params=json.loads(row["params"]),
        status=JobStatus(row["status"]),
        progress=row["progress"],
        message=row["message"],
        messages=json.loads(row["messages"]),
        error=row["error"],
        created=row["created"],
        updated=row["updated"],
        started=row["started"],
        finished=row["finished"],
        outdir=Path(row["outdir"]),
        query_type=row["query_type"],
        session_id=row["session_id"],
        attempts=row["attempts"],
        generation=row["generation"],
    )


class JobStore:
    """Jobs, events, feedback and banners in one SQLite file (WAL, durable commits).

    One connection per store object, guarded by a lock; several processes may open the
    same file (a busy timeout makes writers wait for each other).
    """

    def __init__(self, path: str | Path, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._check_log()
        try:
            self._open(busy_timeout)
        except sqlite3.DatabaseError as err:
            # OperationalError: read-only file or folder, cannot open or write; else: not a database
            readonly = isinstance(err, sqlite3.OperationalError)
            raise StoreError(
                f"The job store {self.path} cannot be written ({err}): check that the user running "
                f"the server may write the file and its folder (SQLite also writes {self.path.name}-wal "
                f"and -shm there)." if readonly else
                f"The job store {self.path} is damaged ({err}). Stop every server using it, move the "
                "file aside (products under jobs/ stay) and start again with a new store, or "
                "restore it from a backup."
            ) from None
        for marker in self._dead_markers():  # their log was recovered by this open
            marker.unlink(missing_ok=True)
        self._marker = self.path.with_name(f".{self.path.name}.open-{socket.gethostname()}-{os.getpid()}")
        self._marker.touch()
        # a process that ends normally (even without close()) closes the connection, which
        # checkpoints the log: only a killed process leaves its marker behind
        weakref.finalize(self, self._marker.unlink, missing_ok=True)

    def _dead_markers(self) -> list[Path]:
        """Markers left by processes of this host that died with the store open."""
        dead = []
        for marker in self.path.parent.glob(f".{self.path.name}.open-*"):
            host, _, pid = marker.name.rpartition(".open-")[2].rpartition("-")
            if host != socket.gethostname():
                continue
            try:
                os.kill(int(pid), 0)
            except (ValueError, ProcessLookupError):
                dead.append(marker)
            except PermissionError:
                pass
        return dead

    def _check_log(self) -> None:
        """Refuse a database whose write-ahead log was lost after a crash."""
        wal = self.path.with_name(self.path.name + "-wal")
        if not self.path.exists() or wal.exists():
            return
        for marker in self._dead_markers():
            pid = marker.name.rpartition("-")[2]
            raise StoreError(
                f"The job store {self.path} was not closed cleanly (process {pid} died) and its "
                f"write-ahead log {wal.name} is missing: jobs acknowledged since the last checkpoint "
                f"are lost. Restore {wal.name} beside it if you have it; otherwise, to accept the "
                f"loss and start, delete {marker} and {self.path.name}-shm."
            )

    def _open(self, busy_timeout: float) -> None:
        self._db = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        check = self._db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(f"integrity check: {check}")
        with self.transaction() as db:
            for stmt in filter(str.strip, _SCHEMA.split(";")):
                db.execute(stmt)
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has job-store schema {row[0]}, newer than this code ({SCHEMA_VERSION}): "
                    "upgrade mmoda-hub, or point the server at another --root."
                )
            elif int(row[0]) < SCHEMA_VERSION:
                self._migrate(db, int(row[0]))
            db.execute("CREATE INDEX IF NOT EXISTS events_due ON events (sent, created)")
            # a write at every start: a read-only file fails here, not at the first submission
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('opened', ?)", (str(time.time()),))

    @staticmethod
    def _migrate(db: sqlite3.Connection, version: int) -> None:
        """Schema 1 -> 2: claimed events become sent mails; completion mails marked due on a
        job (``notify_pending``) become outbox rows."""
        have = {r["name"] for r in db.execute("PRAGMA table_info(events)")}
        for name, decl in (("job", "TEXT"), ("extra", "TEXT"), ("sent", "REAL"),
                           ("tries", "INTEGER NOT NULL DEFAULT 0"), ("error", "TEXT"),
                           ("lease_owner", "TEXT"), ("lease_until", "REAL"), ("ended", "REAL")):
            if name not in have:
                db.execute(f"ALTER TABLE events ADD COLUMN {name} {decl}")
        db.execute("UPDATE events SET sent=created WHERE sent IS NULL AND job IS NULL")
        for row in db.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE notify_pending=1").fetchall():
            db.execute("INSERT OR IGNORE INTO events (job_id, generation, kind, created, job) VALUES (?,?,?,?,?)",
                       (row["job_id"], row["generation"], row["status"], row["finished"] or time.time(),
                        json.dumps(dict(row))))
        db.execute("UPDATE jobs SET notify_pending=0")
        db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))

    # -- plumbing ---------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: one writer at a time, all or nothing."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        """Close; the last connection checkpoints and removes the write-ahead log."""
        with self._lock:
            self._db.close()
        self._marker.unlink(missing_ok=True)

    @property
    def schema_version(self) -> int:
        return int(self._query("SELECT value FROM meta WHERE key='schema_version'")[0][0])

    @property
    def journal_mode(self) -> str:
        return self._query("PRAGMA journal_mode")[0][0]

    # -- jobs -------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        rows = self._query(f"SELECT {_JOB_COLS} FROM jobs WHERE job_id=?", (job_id,))
        if not rows:
            return None
        job = _row_to_job(rows[0])
        job.feedback = self.feedback(job_id)
        return job

    def rights(self, job_id: str) -> Rights:
        rows = self._query("SELECT rights FROM jobs WHERE job_id=?", (job_id,))
        return rights_from_json(rows[0][0]) if rows else Rights()

    def list_user(self, user: str, session_id: str | None = None, limit: int = 1000) -> list[Job]:
        """A user's jobs, newest first (at most ``limit``)."""
        sql = f"SELECT {_JOB_COLS} FROM jobs WHERE user=?"
        args: tuple = (user,)
        if session_id is not None:
            sql += " AND session_id=?"
            args += (session_id,)
        return [_row_to_job(r) for r in self._query(sql + " ORDER BY created DESC LIMIT ?", (*args, limit))]

    def unfinished(self) -> list[Job]:
        rows = self._query(
            f"SELECT {_JOB_COLS} FROM jobs WHERE status IN (?, ?) ORDER BY created", UNFINISHED
        )
        return [_row_to_job(r) for r in rows]

    def submit(
        self,
        job: Job,
        rights: Rights,
        *,
        rate_key: str,
        rate_limit: int | None,
        rerun_done: bool = False,
        window: float = 3600.0,
        submit_mail: float | None = None,
    ) -> tuple[Job, bool]:
        """Store a new run of ``job`` unless an equivalent one exists; commit before returning.

        Returns ``(job, created)``. An unfinished job with the same id (or a done one, unless
        ``rerun_done``) is returned as it is. A failed or cancelled one is replaced by a new
        run (``generation`` + 1). Raises :class:`RateLimited` when ``rate_key`` already made
        ``rate_limit`` new runs within ``window`` seconds. ``submit_mail`` (seconds): a new run
        of a job with an e-mail address gets a due submission mail in the same commit, unless
        one was queued for this job id less than that long ago (None: no submission mail).
        """
        now = time.time()
        with self.transaction() as db:
            row = db.execute(
                f"SELECT {_JOB_COLS} FROM jobs WHERE job_id=?", (job.job_id,)
            ).fetchone()
            if row is not None:
                old = _row_to_job(row)
                if old.status.value in UNFINISHED or (old.status is JobStatus.DONE and not rerun_done):
                    return old, False
                generation = old.generation + 1
            else:
                generation = 0
            if rate_limit is not None:
                count, oldest = db.execute(
                    "SELECT COUNT(*), MIN(created) FROM requests WHERE user=? AND created>?",
                    (rate_key, now - window),
                ).fetchone()
                if count >= rate_limit:
                    raise RateLimited(count, oldest)
            db.execute("DELETE FROM requests WHERE created<?", (now - 2 * window,))
            db.execute("INSERT INTO requests (user, created) VALUES (?, ?)", (rate_key, now))
            db.execute("DELETE FROM jobs WHERE job_id=?", (job.job_id,))
            db.execute(
                "INSERT INTO jobs (job_id, user, email, instrument, product, params, status, progress,"
                " message, messages, created, updated, outdir, query_type, session_id, attempts,"
                " generation, rights) VALUES (?,?,?,?,?,?,?,0,?,?,?,?,?,?,?,0,?,?)",
                (
                    job.job_id, job.user, job.email, job.instrument, job.product,
                    json.dumps(job.params), JobStatus.SUBMITTED.value, "submitted",
                    json.dumps(job.messages), now, now, str(job.outdir), job.query_type,
                    job.session_id, generation, rights_to_json(rights),
                ),
            )
            if submit_mail is not None and job.email:
                last = db.execute("SELECT MAX(created) FROM events WHERE job_id=? AND kind='submitted'",
                                  (job.job_id,)).fetchone()[0]
                if last is None or now - last >= submit_mail:
                    self._queue_mail(db, job.job_id, "submitted")
        stored = self.get(job.job_id)
        assert stored is not None
        return stored, True

    def claim(self, job_id: str, owner: str, lease: float) -> Job | None:
        """Take the lease of an unfinished job (attempt + 1); None if finished or held by a live owner."""
        now = time.time()
        with self.transaction() as db:
            row = db.execute(
                "SELECT status, lease_owner, lease_until FROM jobs WHERE job_id=?", (job_id,)
            ).fetchone()
            if row is None or row["status"] not in UNFINISHED:
                return None
            holder = row["lease_owner"]
            if holder and holder != owner and (row["lease_until"] or 0) > now and lease_owner_alive(holder):
                return None
            db.execute(
                "UPDATE jobs SET lease_owner=?, lease_until=?, attempts=attempts+1,"
                " started=COALESCE(started, ?), updated=? WHERE job_id=?",
                (owner, now + lease, now, now, job_id),
            )
        return self.get(job_id)

    def renew(self, owner: str, lease: float) -> int:
        """Extend every lease ``owner`` holds on unfinished jobs (heartbeat)."""
        now = time.time()
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE jobs SET lease_until=? WHERE lease_owner=? AND status IN (?, ?)",
                (now + lease, owner, *UNFINISHED),
            )
            return cur.rowcount

    def release(self, job_id: str, owner: str, message: str | None = None) -> None:
        """Give a job's lease back (stop, retry): it stays unfinished and resumes later."""
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET lease_owner=NULL, lease_until=NULL, updated=? WHERE job_id=? AND lease_owner=?",
                (time.time(), job_id, owner),
            )
            if message:
                self._append_message(db, job_id, message)

    def set_progress(self, job_id: str, owner: str | None, fraction: float, message: str = "") -> bool:
        """Record progress of a running job; False if the job is no longer ours to run (cancelled)."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE jobs SET status=?, progress=?, message=?, updated=? WHERE job_id=?"
                " AND status IN (?, ?) AND (lease_owner IS ? OR ? IS NULL)",
                (JobStatus.PROGRESS.value, fraction, message, time.time(), job_id, *UNFINISHED, owner, owner),
            )
            return cur.rowcount == 1

    def add_message(self, job_id: str, message: str) -> None:
        with self.transaction() as db:
            self._append_message(db, job_id, message)

    @staticmethod
    def _append_message(db: sqlite3.Connection, job_id: str, message: str, keep: int = 100) -> None:
        row = db.execute("SELECT messages FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        if row is None:
            return
        messages = (json.loads(row[0]) + [message])[-keep:]
        db.execute("UPDATE jobs SET messages=?, updated=? WHERE job_id=?", (json.dumps(messages), time.time(), job_id))

    def finish(
        self,
        job_id: str,
        owner: str | None,
        status: JobStatus,
        *,
        error: str | None = None,
        messages: list[str] = (),
        notify: bool = False,
    ) -> Job | None:
        """Move an unfinished job to a final state, once. ``owner`` None ignores the lease
        (cancellation). ``notify`` queues the completion e-mail in the same commit.

        Returns the finished job as committed (None if it was not ours to finish): its
        completion mail is made from this copy, which a resubmission cannot change."""
        now = time.time()
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE jobs SET status=?, error=?, finished=?, updated=?, lease_owner=NULL,"
                " lease_until=NULL, progress=CASE WHEN ?='done' THEN 1.0 ELSE progress END"
                " WHERE job_id=? AND status IN (?, ?) AND (lease_owner IS ? OR ? IS NULL)",
                (status.value, error, now, now, status.value, job_id, *UNFINISHED, owner, owner),
            )
            if cur.rowcount != 1:
                return None
            for m in messages:
                self._append_message(db, job_id, m)
            if notify:
                self._queue_mail(db, job_id, status.value)
            return _row_to_job(db.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE job_id=?", (job_id,)).fetchone())

    # -- the mail outbox ---------------------------------------------------------------

    @staticmethod
    def _queue_mail(db: sqlite3.Connection, job_id: str, kind: str, extra: dict | None = None) -> None:
        """A due mail about this run of the job, with a copy of the job as it is now (in the
        caller's transaction: the mail exists if and only if the change it tells about does)."""
        row = db.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        if row is None:
            return
        db.execute(
            "INSERT OR IGNORE INTO events (job_id, generation, kind, created, job, extra) VALUES (?,?,?,?,?,?)",
            (job_id, row["generation"], kind, time.time(), json.dumps(dict(row)), json.dumps(extra or {})),
        )

    def claim_mail(self, owner: str, lease: float) -> dict[str, Any] | None:
        """Lease the oldest due mail for sending: ``{"job", "kind", "extra", "tries"}``, or None.

        A mail leased by a live sender is skipped until its lease ends; one whose sender died is
        taken over at once."""
        now = time.time()
        with self.transaction() as db:
            rows = db.execute(
                "SELECT job_id, generation, kind, job, extra, tries, lease_owner, lease_until, ended FROM events"
                " WHERE sent IS NULL ORDER BY created"
            ).fetchall()
            for row in rows:
                holder = row["lease_owner"]
                if holder and holder != owner and (row["lease_until"] or 0) > now and lease_owner_alive(holder):
                    continue
                if row["ended"] is not None:  # its sender died after the end of the data: delivered
                    db.execute("UPDATE events SET sent=?, error=? WHERE job_id=? AND generation=? AND kind=?",
                               (now, "recorded as sent: its sender stopped after the end of the data",
                                row["job_id"], row["generation"], row["kind"]))
                    continue
                db.execute(
                    "UPDATE events SET lease_owner=?, lease_until=?, tries=tries+1"
                    " WHERE job_id=? AND generation=? AND kind=?",
                    (owner, now + lease, row["job_id"], row["generation"], row["kind"]),
                )
                job = _row_to_job(json.loads(row["job"])) if row["job"] else self.get(row["job_id"])
                if job is None:  # a v1 row of a deleted job: nothing to tell
                    db.execute("UPDATE events SET sent=? WHERE job_id=? AND generation=? AND kind=?",
                               (now, row["job_id"], row["generation"], row["kind"]))
                    continue
                return {"job": job, "kind": row["kind"], "extra": json.loads(row["extra"] or "{}"),
                        "tries": row["tries"] + 1}
        return None

    def mail_sent(self, job: Job, kind: str, owner: str) -> bool:
        """Record that the SMTP server accepted the mail; False if it was already recorded."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE events SET sent=?, lease_owner=NULL, lease_until=NULL, ended=NULL, error=NULL"
                " WHERE job_id=? AND generation=? AND kind=? AND sent IS NULL",
                (time.time(), job.job_id, job.generation, kind),
            )
            return cur.rowcount == 1

    def mail_ending(self, job: Job, kind: str, owner: str, ending: bool = True) -> None:
        """Record that the sender is about to end the SMTP data (``ending`` False: undo, the
        server did not accept it)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE events SET ended=? WHERE job_id=? AND generation=? AND kind=? AND sent IS NULL"
                " AND lease_owner=?", (time.time() if ending else None, job.job_id, job.generation, kind, owner),
            )

    def mail_failed(self, job: Job, kind: str, owner: str, error: str) -> None:
        """Give a mail that could not be delivered back to the outbox: due again."""
        with self.transaction() as db:
            db.execute(
                "UPDATE events SET lease_owner=NULL, lease_until=NULL, ended=NULL, error=?"
                " WHERE job_id=? AND generation=? AND kind=? AND sent IS NULL AND lease_owner=?",
                (error[:500], job.job_id, job.generation, kind, owner),
            )

    def due_mails(self, job_id: str | None = None) -> list[dict[str, Any]]:
        """Mails not yet accepted by an SMTP server (``job_id``, ``generation``, ``kind``, ``tries``)."""
        sql = "SELECT job_id, generation, kind, created, tries, error FROM events WHERE sent IS NULL"
        rows = self._query(sql + (" AND job_id=?" if job_id else "") + " ORDER BY created",
                           (job_id,) if job_id else ())
        return [dict(r) for r in rows]

    def pending_notifications(self) -> list[Job]:
        """The jobs that have a mail due (each once), as the store holds them now."""
        seen = dict.fromkeys(m["job_id"] for m in self.due_mails())
        return [job for job in map(self.get, seen) if job is not None]

    def last_event(self, job_id: str, kind: str) -> float | None:
        rows = self._query("SELECT MAX(created) FROM events WHERE job_id=? AND kind=?", (job_id, kind))
        return rows[0][0]

    def events(self, job_id: str) -> list[dict[str, Any]]:
        """Mails sent (accepted by the SMTP server) about a job, oldest first."""
        rows = self._query(
            "SELECT generation, kind, created, sent FROM events WHERE job_id=? AND sent IS NOT NULL"
            " ORDER BY created", (job_id,)
        )
        return [dict(r) for r in rows]

    # -- feedback ---------------------------------------------------------------------

    def add_feedback(self, job_id: str, message: str, author: str, notify: bool = False) -> dict[str, Any]:
        """Attach an operator's message; ``notify`` queues its mail to the job's owner (if the job
        has an address) in the same commit."""
        now = time.time()
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO feedback (job_id, author, message, created) VALUES (?,?,?,?)",
                (job_id, author, message, now),
            )
            fid = cur.lastrowid
            email = db.execute("SELECT email FROM jobs WHERE job_id=?", (job_id,)).fetchone()
            if notify and email is not None and email[0]:
                self._queue_mail(db, job_id, f"feedback:{fid}", {"message": message, "author": author})
        return {"id": fid, "job_id": job_id, "author": author, "message": message, "created": now}

    def feedback(self, job_id: str) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT id, job_id, author, message, created FROM feedback WHERE job_id=? ORDER BY id", (job_id,)
        )
        return [dict(r) for r in rows]

    # -- banners ----------------------------------------------------------------------

    def add_banner(self, text: str, kind: str, expires: float | None) -> dict[str, Any]:
        now = time.time()
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO banners (kind, text, created, expires) VALUES (?,?,?,?)", (kind, text, now, expires)
            )
            bid = cur.lastrowid
        return {"id": bid, "kind": kind, "text": text, "created": now, "expires": expires}

    def banners(self, now: float | None = None) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        rows = self._query(
            "SELECT id, kind, text, created, expires FROM banners WHERE expires IS NULL OR expires>?"
            " ORDER BY id DESC",
            (now,),
        )
        return [dict(r) for r in rows]

    def remove_banner(self, banner_id: int) -> bool:
        with self.transaction() as db:
            return db.execute("DELETE FROM banners WHERE id=?", (banner_id,)).rowcount == 1
