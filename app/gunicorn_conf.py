"""Gunicorn configuration (`--config python:app.gunicorn_conf`): graceful shutdown under the ECS stop timeout."""

from __future__ import annotations

import os

from app import contract
from app.http import gunicorn_errors

bind = f"0.0.0.0:{os.environ.get(contract.PORT, contract.API_PORT)}"
workers = int(os.environ.get(contract.WEB_CONCURRENCY, "2"))
# gthread, not gevent: bench/api.py runs both side by side (BENCH_WORKER_CLASSES); with reads served from memory
# gevent's cached reads came out slower in absolute terms and its orders far slower ("Benchmarks", app/README.md).
worker_class = "gthread"
threads = int(os.environ.get(contract.GUNICORN_THREADS, "8"))
# Each worker listens on its own SO_REUSEPORT socket, so the kernel spreads the ALB's keep-alive connections over
# the workers; on one shared socket the first worker to wake accepted most of them and, with `threads` requests in
# flight at most, left the other worker idle (bench/api.py's orders: 1-3 of 16 connections on one worker).
reuse_port = True
# SIGTERM: stop accepting, finish in-flight requests within graceful_timeout (< the task's stop timeout).
graceful_timeout = contract.GRACEFUL_TIMEOUT_SECONDS
timeout = 30
keepalive = contract.KEEPALIVE_SECONDS
# Read-only root filesystem: heartbeat files in the writable /tmp, no control socket.
worker_tmp_dir = os.environ.get("TMPDIR", "/tmp")  # noqa: S108
control_socket_disable = True
accesslog = None  # the app logs each request as a JSON/EMF line
errorlog = "-"
forwarded_allow_ips = "*"  # the task only receives traffic from the ALB; the app trusts TRUSTED_PROXY_HOPS hops
max_requests = 0
# Gunicorn's own refusals (414 request line too long, 431 header fields too large, 400 unparseable) answered as
# the API's problem documents, not HTML: installed here, before the workers fork, for every worker class.
gunicorn_errors.install()
