"""What every config shape shares: problem codes, closed-vocabulary and number checks, and ``Spec``.

``Spec`` reports unknown keys with a suggestion and problems no single key has beside the fields' own, so a
file's structural problems all come out in one pass. A leaf of the schema: ``config_schema`` (the file's
shapes) and ``window_schema`` (time-relative metrics) build on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, StringConstraints, model_validator
from pydantic import ValidationError as SchemaError
from pydantic_core import InitErrorDetails, PydanticCustomError

from metrics.errors import did_you_mean

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
Path_ = tuple[str | int, ...]
Problem = tuple[str, str, Path_]
"""(code, message, path of the value in the file's data)."""

OWN_CODES = {
    "unknown_key",
    "unexpected_key",
    "missing_key",
    "invalid_value",
    "invalid_name",
    "metric_kind",
    "no_attributes",
}
IGNORABLE = {"unknown_key", "unexpected_key"}
"""Problems of a key that is simply left out: the object around it is still built and checked."""


def problem(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, "{message}", {"message": message})


def choice(enum: type[Enum], what: str) -> Callable[[Any], Any]:
    """A member of a closed vocabulary, or an ``invalid_value`` naming the closest one."""
    choices = [member.value for member in enum]

    def member(value: Any) -> Any:
        if value not in choices:
            hint = did_you_mean(str(value), choices) or f" (one of: {', '.join(choices)})"
            raise problem("invalid_value", f"{what} {value!r} is not valid{hint}")
        return enum(value)

    return member


def number(what: str) -> Callable[[Any], Any]:
    """A YAML number as written (95 stays 95 in messages); true and false are not numbers."""

    def number(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise problem("invalid_value", f"{what} must be a number, not {value!r}")
        return value

    return number


def snake_case(name: Any) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise problem("invalid_name", "the name must be snake_case (a-z, 0-9, _)")
    return name


Text = Annotated[str, StringConstraints(min_length=1)]
Name = Annotated[str, BeforeValidator(snake_case)]


def either(mapping: str, other: str) -> Discriminator:
    """A value written either as a mapping or as one plain value; the tags name the two forms in error paths."""
    return Discriminator(lambda value: mapping if isinstance(value, dict) else other)


class Spec(BaseModel):
    """A mapping with a fixed set of keys: unknown keys and rules over several keys come out with the fields' own."""

    model_config = ConfigDict(strict=True, frozen=True)

    @model_validator(mode="wrap")
    @classmethod
    def _whole_object(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        unknown = [
            InitErrorDetails(
                type=problem("unknown_key", f"unknown key {key!r}{did_you_mean(key, cls.model_fields)}"),
                loc=(key,),
                input=value,
            )
            for key, value in data.items()
            if key not in cls.model_fields
        ]
        whole = [
            InitErrorDetails(type=problem(code, message), loc=loc, input=data)
            for code, message, loc in cls.object_problems(data)
        ]
        if not unknown and not whole:
            return handler(data)
        fields: list[InitErrorDetails] = []
        try:
            handler({key: value for key, value in data.items() if key in cls.model_fields})
        except SchemaError as exc:
            fields = [_redo(error) for error in exc.errors()]
        raise SchemaError.from_exception_data(cls.__name__, [*unknown, *fields, *whole])

    @classmethod
    def object_problems(cls, data: dict[str, Any]) -> Iterator[tuple[str, str, Path_]]:
        """Problems no single key has (which of several keys is there); ``data`` is the raw mapping."""
        return iter(())


def _redo(error: Any) -> InitErrorDetails:
    """An error of a nested object, raised again beside this object's own."""
    kind = error["type"]
    if kind in OWN_CODES:
        kind = problem(kind, error["ctx"]["message"])
    detail = InitErrorDetails(type=kind, loc=error["loc"], input=error["input"])
    if "ctx" in error and not isinstance(kind, PydanticCustomError):
        detail["ctx"] = error["ctx"]
    return detail
