"""Objective-specific options from ``pretrain --objective-option KEY=VALUE`` (strings) to typed values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backend.errors import UserError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(key: str, value: Any, default: Any) -> Any:
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    try:
        if isinstance(default, bool):
            if value.lower() not in _TRUE | _FALSE:
                raise ValueError(value)
            return value.lower() in _TRUE
        return type(default)(value)
    except ValueError:
        raise UserError(f"objective option {key}={value!r}: expected a {type(default).__name__}") from None


def objective_options(settings: Mapping[str, Any], defaults: Mapping[str, Any],
                      objective: str) -> dict[str, Any]:
    """``defaults`` overridden by ``settings["options"]``, each value converted to its default's type.

    Raises:
        UserError: for an option the objective does not know, or a value of the wrong type.
    """
    given = dict(settings.get("options") or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise UserError(f"objective {objective} has no option {', '.join(unknown)}; "
                        f"known options: {', '.join(sorted(defaults))}")
    return {key: _convert(key, given[key], default) if key in given else default
            for key, default in defaults.items()}
