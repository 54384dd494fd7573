"""RFC 9457 problem details: every error the API returns, naming the field at fault."""

from __future__ import annotations

from typing import Any

from flask import Response, json
from pydantic import ValidationError

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail
        self.errors = errors or []
        self.headers = headers or {}
        self.kind = kind

    def response(self, instance: str | None = None) -> Response:
        body: dict[str, Any] = {
            "type": f"https://errors.example.com/{self.kind}" if self.kind else "about:blank",
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        resp = Response(json.dumps(body), status=self.status, mimetype=PROBLEM_JSON)
        for k, v in self.headers.items():
            resp.headers[k] = v
        return resp


def field_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return f"{prefix}{path}" if path else prefix.rstrip(".") or "body"


def from_validation(exc: ValidationError, where: str) -> Problem:
    errors = [
        {"field": field_path(tuple(e["loc"])), "in": where, "message": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]
    first = errors[0]["field"] if errors else where
    return Problem(
        422 if where == "body" else 400,
        "Invalid request",
        f"'{first}' in {where}: {errors[0]['message']}" if errors else None,
        errors=errors,
        kind="validation",
    )
