"""Gunicorn's entry point: `app.wsgi:application` (see `app.contract.API_COMMAND`)."""

from __future__ import annotations

from app.http.factory import create_app

application = create_app()
