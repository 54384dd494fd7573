"""Validated input types shared by the request models."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator


def clean_text(value: str) -> str:
    """Text PostgreSQL can store: no NUL characters, no lone surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(k): clean_json(v) for k, v in value.items()}
    return value


Text = Annotated[str, AfterValidator(clean_text)]
