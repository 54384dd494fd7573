"""The real app plus one slow endpoint, for the graceful-shutdown test (served by gunicorn)."""

from __future__ import annotations

import time

from flask import request

from app.http.factory import create_app

application = create_app()


@application.get("/slow")
def slow() -> dict[str, float]:
    seconds = min(float(request.args.get("s", "1")), 5.0)
    time.sleep(seconds)
    return {"slept": seconds}
