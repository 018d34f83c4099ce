"""gunicorn settings for the recall service: one intra-op thread per worker, and
prometheus-client's multiprocess mode.

A worker per core is the deployment's unit of parallelism, so each worker's torch uses one
intra-op thread: two workers with a torch OpenMP team of two each on two cores spun against each
other and answered KB searches 6-20x slower. (Only torch's: Faiss and BLAS keep their defaults,
which the other endpoints measured no worse with.)

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


def post_fork(server, worker):
    import torch

    torch.set_num_threads(1)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
