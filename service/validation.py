"""Validation of `POST /api/products` bodies: `{"name": "<1 to 200 characters>"}`, nothing else."""

from __future__ import annotations

import json

MAX_BODY_BYTES = 16 * 1024
MAX_NAME = 200
FIELDS = frozenset({"name"})


class InvalidProduct(ValueError):
    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def parse_new_product(body: bytes) -> str:
    """The product name in a request body, stripped; raise InvalidProduct (400/422) otherwise."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidProduct(f"body is not valid JSON: {exc}", 400) from None
    if not isinstance(data, dict):
        raise InvalidProduct('body must be a JSON object like {"name": "Tablet"}')
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise InvalidProduct(f"unknown field(s): {', '.join(unknown)}; only name is accepted")
    if "name" not in data:
        raise InvalidProduct("name is required")
    name = data["name"]
    if not isinstance(name, str):
        raise InvalidProduct("name must be a string")
    name = name.strip()
    if not name:
        raise InvalidProduct("name must not be empty")
    if len(name) > MAX_NAME:
        raise InvalidProduct(f"name must be at most {MAX_NAME} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InvalidProduct("name must not contain control characters")
    return name
