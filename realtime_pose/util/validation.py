"""How validation errors read: one line per problem, naming the file and the field."""

from __future__ import annotations

from pydantic import ValidationError


def format_validation_error(err: ValidationError, where: object) -> str:
    """``<where>: field '<dotted.path>': <message>`` for every problem pydantic found."""
    lines = []
    for problem in err.errors():
        field = ".".join(str(p) for p in problem["loc"]) or "(top level)"
        lines.append(f"{where}: field '{field}': {problem['msg']}")
    return "\n".join(lines)
