"""gunicorn settings for the recall service: prometheus-client's multiprocess mode.

Each worker writes its metric samples under ``PROMETHEUS_MULTIPROC_DIR``; ``/metrics`` (any worker)
sums them. The folder is emptied when the master starts (stale files would add old counts) and a
dead worker's live gauges are dropped. Use with ``gunicorn -c serving/gunicorn_conf.py``.
"""

import os
import shutil


def on_starting(server):
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
