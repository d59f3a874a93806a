"""Typed configuration files: pydantic models whose errors name the file, line and field.

Each configuration file type (scenario, experiment, training, environment, device profile)
is a :class:`ConfigModel`: ``extra="forbid"``, frozen, no ``nan``/``inf``, and scalar fields
that do not coerce (``"5"`` is not a number, ``true`` is not 1).  :func:`validate` runs a
model over a parsed document and turns the first pydantic error into one
:class:`~sim.errors.WulinError` in the project's words::

    experiments/demo.toml, line 14: field 'variations[0].scale' must be > 0, got -1

Validators that need a message of their own raise :class:`ConfigIssue`, optionally naming
a sub-field, so cross-field checks point at the right line too.  Files are read through
:mod:`sim.files` (kind, size, encoding, depth, number limits) by :func:`load_toml_model`.
"""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)

from sim.clock import parse_clock
from sim.errors import WulinError
from sim.files import check_tree, dotted, load_toml, toml_line

M = TypeVar("M")
Loc = tuple[str | int, ...]


CONFIG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
"""The settings of every configuration model."""
DATACLASS_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)
"""The same for ``pydantic.dataclasses.dataclass(frozen=True, config=DATACLASS_CONFIG)``."""
_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")


class ConfigModel(BaseModel):
    """Base of every configuration model: unknown keys, nan and inf refused; frozen."""

    model_config = CONFIG


class ConfigIssue(ValueError):
    """A validator's own message, optionally about a sub-field (``ConfigIssue(msg, "at")``)."""

    def __init__(self, problem: str, *path: str | int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: Loc = path


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ConfigIssue(f"must be a number, got {value!r}")
    return value


def _one_or_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _clock(value: Any) -> float:
    try:
        return parse_clock(value, "x")
    except WulinError as exc:
        raise ConfigIssue(str(exc).removeprefix("x: ")) from None


Clock = Annotated[float, BeforeValidator(_clock)]
"""A clock time (``"07:15"``) or seconds since midnight, read by :func:`sim.clock.parse_clock`."""
Number = Annotated[float, BeforeValidator(_no_bool), Field(strict=True, allow_inf_nan=False)]
"""A finite number; an int is accepted, a bool or a string is not."""
Int = StrictInt
Bool = StrictBool
Text = Annotated[StrictStr, Field(max_length=2_000)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=100)]
"""A short identifier (folder names, ids): 1 to 100 characters."""
Names = Annotated[tuple[Name, ...], BeforeValidator(_one_or_list)]
"""A list of names; a single string counts as a list of one."""

_PREDICATES = ("is ", "must ", "has ", "needs ")


def _join(field: str, problem: str) -> str:
    if not field:
        return problem
    sep = " " if problem.startswith(_PREDICATES) else ": "
    return f"field '{field}'{sep}{problem}"


# ----------------------------------------------------------------- finding the model at a path
def _fields_of(cls: Any) -> dict[str, Any]:
    """The pydantic fields of a model or a pydantic dataclass."""
    return dict(getattr(cls, "__pydantic_fields__", None) or {})


def _models_in(tp: Any) -> list[Any]:
    if isinstance(tp, type) and _fields_of(tp):
        return [tp]
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _models_in(typing.get_args(tp)[0])
    out: list[Any] = []
    if origin in (Union, types.UnionType, tuple, list, dict) or origin is not None:
        for arg in typing.get_args(tp):
            out += _models_in(arg)
    return out


def _model_at(model: Any, loc: Loc) -> Any:
    """The model class that holds the field at ``loc`` (for listing its allowed fields)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        info = _fields_of(current).get(str(part))
        if info is None:
            continue  # a dict key (controller_params.<name>) or a union tag
        found = _models_in(info.annotation)
        current = found[0] if found else None
    return current


# ----------------------------------------------------------------- pydantic errors -> words
_EXPECTED = {
    "float_type": "a number", "float_parsing": "a number", "int_type": "an integer",
    "int_parsing": "an integer", "int_from_float": "an integer", "string_type": "a string",
    "bool_type": "true or false", "bool_parsing": "true or false", "list_type": "a list",
    "tuple_type": "a list", "dict_type": "a table", "model_type": "a table",
    "model_attributes_type": "a table", "finite_number": "a finite number",
    "dataclass_type": "a table",
}


def _problem(err: Any, model: Any, loc: Loc) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if isinstance(ctx.get("error"), ConfigIssue):
        return ctx["error"].problem
    if kind == "missing":
        if loc and isinstance(loc[-1], int):
            return "is missing: the list is too short"
        return f"is missing; add {loc[-1]} = ..." if loc else "is missing"
    if kind in _EXPECTED:
        return f"must be {_EXPECTED[kind]}, got {value!r}"
    bounds = {"greater_than": "> {gt}", "greater_than_equal": ">= {ge}", "less_than": "< {lt}",
              "less_than_equal": "<= {le}"}
    if kind in bounds:
        return f"must be {bounds[kind].format(**ctx)}, got {value!r}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters, got {len(value)}"
    if kind == "too_short":
        return f"must list at least {ctx.get('min_length')}, got {_short(value)}"
    if kind == "too_long":
        return f"must list at most {ctx.get('max_length')}, got {len(value)}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}, got {value!r}"
    if kind == "value_error":
        return str(ctx.get("error") or err["msg"])
    return f"{err['msg'][0].lower()}{err['msg'][1:]}, got {_short(value)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _unknown(errors: list[Any], model: Any, loc: Loc) -> str:
    unknown = [e["loc"] for e in errors if e["type"] in _UNKNOWN]
    # the caller's location is the document's (union steps dropped); pydantic's may carry them
    keys = [k for k in unknown if tuple(k[:-1]) == loc] or unknown or [(*loc, "?")]
    holder = _model_at(model, loc)
    allowed = sorted(_fields_of(holder)) if holder else []
    close = difflib.get_close_matches(str(keys[0][-1]), allowed, n=1) if allowed else []
    hint = f"did you mean '{close[0]}'? " if close else ""
    names = ", ".join(dotted(tuple(k)) for k in keys)
    return f"unknown field(s) {names}; {hint}allowed: {', '.join(allowed)}"


_STEP_NAMES = {"float", "int", "str", "bool", "none", "list", "tuple", "dict", "definition-ref"}


def _is_step(part: str | int) -> bool:
    """A name pydantic adds to an error location (``function-before[...]``, ``nullable[...]``,
    a union member such as ``float`` or ``ImitationConfig``), not a key of the document."""
    return isinstance(part, str) and ("[" in part or part in _STEP_NAMES or part[:1].isupper())


def _data_loc(loc: tuple[Any, ...], data: Any) -> Loc:
    """``loc`` without pydantic's own steps.  A part that is a key or index of the document
    is always kept (a user's key may look like a step); past a point where a validator
    reshaped the input (one table given for a list of them) the rest is kept as it is."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list | tuple) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif _is_step(part):
            continue
        else:
            node = None
        out.append(part)
    return tuple(out)


def config_error(exc: ValidationError, model: Any, source: object, text: str | None,
                 data: Any = None) -> WulinError:
    """The first error of ``exc`` as one WulinError naming file, line and field."""
    errors = exc.errors(include_url=False)
    # an unknown key is reported first: it is often a misspelling of a missing one
    err = next((e for e in errors if e["type"] in _UNKNOWN), errors[0])
    loc = _data_loc(tuple(err["loc"]), data)
    ctx_err = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_err, ConfigIssue):
        loc = (*loc, *ctx_err.path)
    if err["type"] in _UNKNOWN:
        message = _unknown(errors, model, tuple(loc[:-1]))
    else:
        message = _join(dotted(loc), _problem(err, model, loc))
    where = f"{source}"
    line = toml_line(text, loc) if text else None
    if line is not None:
        where += f", line {line}"
    return WulinError(f"{where}: {message}")


def validate(model: type[M], data: Any, source: object, *, text: str | None = None,
             context: dict[str, Any] | None = None) -> M:
    """``model`` over ``data``; the first problem is a WulinError naming file, line and field.

    Args:
        model: The configuration model.
        data: The parsed document (a dict from TOML or JSON).
        source: The file (or a name such as ``"<experiment>"``) for messages.
        text: The TOML text, so messages can give the line.
        context: Passed to the validators (a base folder for relative paths, for example).
    """
    if not isinstance(data, dict):
        raise WulinError(f"{source}: expected a table of fields (a JSON object), got {type(data).__name__}")
    check_tree(data, source, text)  # also for data that did not come through parse_toml/parse_json
    try:
        return TypeAdapter(model).validate_python(data, context=context)
    except ValidationError as exc:
        raise config_error(exc, model, source, text, data) from None


def load_toml_model(model: type[M], path: Path | str, what: str = "file",
                    context: dict[str, Any] | None = None) -> M:
    """Read a TOML file through :mod:`sim.files` and validate it into ``model``."""
    data, text = load_toml(path, what)
    return validate(model, data, path, text=text, context=context)
