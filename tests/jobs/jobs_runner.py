"""A job manager in its own process, for crash tests: ``python jobs_runner.py ROOT LOG_DIR SMTP_PORT [REQUESTS_JSON]``.

Starts a JobManager on ROOT (Dask: an in-process LocalCluster, so that SIGKILL takes it all
down), submits the requests of REQUESTS_JSON (a list of {"product", "params", "user"}) and
prints ``accepted <job_id>`` for each, then waits until the store holds no unfinished job and
no due e-mail, prints ``all finished`` and exits. ``$MAIL_RETRY`` (seconds, default 300) is the
interval between tries of undelivered mails; with it set, one SMTP attempt per try.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str]) -> int:
    from distributed import Client, LocalCluster
    from jobs_toy import ToyInstrument

    from mmoda_ext.access.rights import Rights
    from mmoda_ext.jobs.manager import JobManager
    from mmoda_ext.jobs.notify import EmailNotifier

    root, log_dir, port = argv[0], argv[1], int(argv[2])
    requests = json.loads(Path(argv[3]).read_text()) if len(argv) > 3 else []
    cluster = LocalCluster(n_workers=1, threads_per_worker=4, processes=False, dashboard_address="127.0.0.1:0")
    client = Client(cluster)
    retry = float(os.environ.get("MAIL_RETRY", "300"))
    quick = {"smtp_attempts": 1, "smtp_timeout": 2.0} if "MAIL_RETRY" in os.environ else {}
    notifier = EmailNotifier(smtp_server="127.0.0.1", smtp_port=port, completion_threshold=0.0,
                             products_url="http://127.0.0.1:8011", **quick)
    manager = JobManager(root=root, compute="dask", client=client, concurrency=2, progress_interval=0.0,
                         instruments={"toy": ToyInstrument(log_dir)}, notifier=notifier,
                         mail_retry_interval=retry)
    manager.start_sync()
    for req in requests:
        user = req["user"]
        rights = Rights(user=user, tier="registered", email=user, requests_per_hour=1000)
        job = manager.submit("toy", req["product"], req["params"], rights)
        print(f"accepted {job.job_id}", flush=True)
    while manager.store.unfinished() or manager.store.pending_notifications():
        time.sleep(0.05)
    manager.wait_mail(30)
    manager.close()
    client.close()
    cluster.close()
    print("all finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
