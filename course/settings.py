"""Instructor settings read from the environment (``EXPRESSION_LAB_*`` variables), parsed one way everywhere."""

from __future__ import annotations


def positive_setting(env, name: str, default: int) -> int:
    """``env[name]`` as a positive integer, or ``default`` when unset or empty.

    Raises:
        ValueError: it is set but not a positive integer (the message names the variable).
    """
    if not env.get(name):
        return default
    try:
        value = int(env[name])
    except ValueError:
        raise ValueError(f"{name}={env[name]!r}: expected a positive integer") from None
    if value <= 0:
        raise ValueError(f"{name}={env[name]!r}: expected a positive integer")
    return value
