#!/usr/bin/env python3
"""Sample HAProxy's per-server counters through the runtime API while the migration runs.

Every --every seconds one CSV line per server of --backend: time, server, status, stot
(total sessions sent to it), scur (current sessions). Bounded by --max-seconds; stops early
when --stop-file exists.
"""

import argparse
import csv
import io
import os
import socket
import time


def show_stat(path: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(path)
        s.sendall(b"show stat\n")
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--socket", default="/run/haproxy/admin.sock")
    p.add_argument("--backend", default="producers")
    p.add_argument("--out", required=True)
    p.add_argument("--every", type=float, default=0.2)
    p.add_argument("--max-seconds", type=float, default=540.0)
    p.add_argument("--stop-file", required=True)
    a = p.parse_args()
    start = time.monotonic()
    with open(a.out, "a", buffering=1, encoding="utf-8") as out:
        while time.monotonic() - start < a.max_seconds and not os.path.exists(a.stop_file):
            try:
                text = show_stat(a.socket).lstrip("# ")
            except OSError:
                time.sleep(a.every)
                continue
            now = time.time()
            for row in csv.DictReader(io.StringIO(text)):
                if row["pxname"] == a.backend and row["svname"] not in ("FRONTEND", "BACKEND"):
                    out.write(
                        f"{now:.3f},{row['svname']},{row['status']},{row['stot']},{row['scur']}\n"
                    )
            time.sleep(a.every)


if __name__ == "__main__":
    main()
