#!/usr/bin/env python3
"""Enqueue sample jobs through HAProxy for the length of a migration, logging every job id.

One JSON line per request: {"t", "class", "status", "queue", "jids"} (or "error"). Classes
are sent in turn; bounded by --max-requests and --max-seconds, and stops early when
--stop-file exists. Sends only to --url (the scenario's HAProxy frontend).
"""

import argparse
import json
import os
import time
import urllib.error
import urllib.request

CLASSES = (
    "UrgentNotificationWorker",
    "ChecksumWorker",
    "RepositoryProbeWorker",
    "FlakyImportWorker",
    "AuditEventWorker",
)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--batch", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--rate", type=float, default=4.0, help="requests per second")
    p.add_argument("--jobs", type=int, default=2, help="jobs per request")
    p.add_argument("--max-requests", type=int, default=3000)
    p.add_argument("--max-seconds", type=float, default=480.0)
    p.add_argument("--stop-file", required=True)
    p.add_argument("--classes", default=",".join(CLASSES), help="comma-separated, sent in turn")
    a = p.parse_args()
    classes = [c for c in a.classes.split(",") if c]
    start = time.monotonic()
    with open(a.log, "a", buffering=1, encoding="utf-8") as log:
        for i in range(a.max_requests):
            if time.monotonic() - start > a.max_seconds or os.path.exists(a.stop_file):
                break
            cls = classes[i % len(classes)]
            url = f"{a.url}/enqueue?class={cls}&n={a.jobs}&batch={a.batch}"
            entry = {"t": time.time(), "class": cls}
            try:
                req = urllib.request.Request(url, data=b"", method="POST")
                with urllib.request.urlopen(req, timeout=10) as res:
                    body = json.loads(res.read().decode())
                entry.update(
                    status=res.status,
                    queue=body.get("queue"),
                    jids=body.get("jids", []),
                    producer=body.get("producer"),
                    durable=body.get("durable"),
                )
            except urllib.error.HTTPError as exc:
                entry.update(status=exc.code, error=exc.read().decode(errors="replace")[:200])
            except OSError as exc:
                entry.update(status=0, error=str(exc)[:200])
            entry["elapsed"] = round(time.time() - entry["t"], 4)
            log.write(json.dumps(entry) + "\n")
            delay = start + (i + 1) / a.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)


if __name__ == "__main__":
    main()
