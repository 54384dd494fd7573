"""Gunicorn's own error answers as RFC 9457 problems.

Gunicorn refuses some requests before the app sees them (a request line over `limit_request_line`: 414; a header
field over `limit_request_field_size` or more than `limit_request_fields` of them: 431; a request it cannot
parse: 400) and writes those answers itself, as HTML, through `gunicorn.util.write_error`. `install` swaps that
writer for one answering the same status with a problem document, its `type` one of the API's kinds, and the
security headers every other answer carries. Called from the gunicorn config, before the workers fork, so every
worker class writes them. `instance` is left out: the request line is unread (or unreadable) at that point.
"""

from __future__ import annotations

import json
import socket

from gunicorn import util

from app.http.middleware import SECURITY_HEADERS
from app.problems import PROBLEM_JSON, kind_for_status, problem_body

_DETAILS = {
    414: "the request line (method, path and query) is longer than the server accepts",
    431: "a header field is too large, or there are too many of them",
}


def problem_answer(status: int, reason: str, message: str) -> bytes:
    """The whole HTTP/1.1 answer for an error gunicorn found: status line, headers, problem document."""
    detail = _DETAILS.get(status, message)
    body = json.dumps(
        problem_body(kind_for_status(status), status, reason, detail=detail, instance=None, errors=[])
    ).encode()
    headers = {
        "Connection": "close",
        "Content-Type": PROBLEM_JSON,
        "Content-Length": str(len(body)),
        "Cache-Control": "no-store",
        **SECURITY_HEADERS,
    }
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + body


def _write_problem(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    util.write_nonblock(sock, problem_answer(status_int, reason, mesg))


def install() -> None:
    util.write_error = _write_problem
