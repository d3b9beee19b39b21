"""NaN is an error, never a result: find a non-finite number in a result, and JSON that
refuses to contain NaN/Infinity (``json.dumps(..., allow_nan=False)``)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from bot.errors import NonFiniteResultError


def first_non_finite(obj: Any, path: str = "") -> tuple[str, float] | None:
    """(dotted path, value) of the first NaN/±inf float in nested dicts/lists/tuples, or None."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (path or "value", obj)
    if isinstance(obj, Mapping):
        items: Any = ((f"{path}.{k}" if path else str(k), v) for k, v in obj.items())
    elif isinstance(obj, list | tuple):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for sub, value in items:
        if (found := first_non_finite(value, sub)) is not None:
            return found
    return None


def require_finite(obj: Any, what: str, hint: str = "") -> None:
    """Raise NonFiniteResultError naming ``what`` and the first non-finite field."""
    found = first_non_finite(obj)
    if found is not None:
        raise NonFiniteResultError(f"{what}: {found[0]} is {found[1]}, so there is no result"
                                   f"{': ' + hint if hint else ''}")


def finite_json(obj: Any, what: str) -> str:
    """``json.dumps`` of a result that must hold only finite numbers."""
    require_finite(obj, what)
    return json.dumps(obj, allow_nan=False)
