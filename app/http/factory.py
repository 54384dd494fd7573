"""The Flask application factory: one blueprint per area, middleware, problem+json error handlers."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app import contract
from app.http import catalog, checkout, config, errors, health, middleware, openapi, user
from app.observability import configure_logging, configure_tracing
from app.services import Services
from app.settings import Settings, load_settings


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    app = Flask("app")
    app.config["MAX_CONTENT_LENGTH"] = contract.MAX_REQUEST_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if settings.trusted_proxy_hops:
        # Only the configured hops (CloudFront + ALB) are trusted to append to X-Forwarded-For.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_hops)  # type: ignore[method-assign]
    configure_tracing(settings)  # before any connection is made, so the pools' connections are instrumented
    services = services or Services.build(settings)
    app.extensions["services"] = services
    configure_tracing(settings, app)
    for module in (health, openapi, catalog, user, checkout, config):
        app.register_blueprint(module.bp)
    middleware.install(app, settings, services)
    errors.install(app)
    return app


def bare_app() -> Flask:
    """The benchmark's baseline: one trivial JSON endpoint, no middleware."""
    app = Flask("bare")

    @app.get("/bare")
    def bare() -> dict[str, Any]:
        return {"id": 1, "name": "bare"}

    return app
