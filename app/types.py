"""Validated input types shared by the request models."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


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


# What `clean_text` refuses, in the published schema (OpenAPI's regex dialect has no way to name a lone
# surrogate, so only NUL is spelled out there).
NO_NUL = r"^[^\x00]*$"
# The emails the API takes: no NUL or control character anywhere, so the pattern alone is the whole rule and the
# OpenAPI document publishes it as is (pydantic refuses a lone surrogate in any str before its pattern).
EMAIL = r"^[^@\s\x00-\x1f]{1,64}@[^@\s\x00-\x1f]{1,190}\.[A-Za-z]{2,}$"


class _NoNulInSchema:
    """Publishes `clean_text`'s rule as a pattern on text fields that have no pattern of their own."""

    def __get_pydantic_json_schema__(self, core: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core)
        schema.setdefault("pattern", NO_NUL)
        return schema


# Free text. A field with a pattern uses `str` and a pattern that admits no NUL or lone surrogate instead:
# pydantic leaves a pattern applied after `clean_text` out of the JSON schema.
Text = Annotated[str, AfterValidator(clean_text), _NoNulInSchema()]


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# JSON Schema's `integer` is any number with a zero fraction (`3.0` is one): such a number is taken as the integer
# it is, as the published schema promises; strict models refuse every other non-integer, booleans included.
# Placed after the field's constraints (`Annotated[int, Field(ge=...), WHOLE]`), which pydantic otherwise leaves
# out of the JSON schema.
WHOLE = BeforeValidator(_whole)
