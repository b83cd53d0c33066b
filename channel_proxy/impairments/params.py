"""An impairment kind's parameters: dataclass fields that carry their help, unit, range and choices.

A kind declares each parameter as a field made with :func:`param`; from those fields alone the
base class checks values and converts to and from the kind's proto message (a field's name is
its proto field's name), and the proxy CLI builds its ``--flag`` options and usage lines.

Torch-free (click and the standard library), so that ``diffusec-proxy --help`` starts at once.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import MISSING, dataclass
from functools import cache

import click


def param(help: str, *, unit: str = "", metavar: str = "X", low: float | None = None, high: float | None = None,
          choices: tuple[str, ...] = (), default: object = MISSING) -> typing.Any:
    """A parameter field of an impairment kind.

    ``help``: what it is, one phrase for ``--help``; ``unit``: "dB", "ms", ... ("" when it has none);
    ``metavar``: its value in usage lines (``--ms MS``); ``low``..``high``: the inclusive range a
    number must lie in (None: open on that side); ``choices``: the words a text may be; no
    ``default``: the parameter is required.
    """
    meta = {"help": help, "unit": unit, "metavar": metavar, "low": low, "high": high, "choices": tuple(choices)}
    return dataclasses.field(default=default, metadata={"param": meta})


@dataclass(frozen=True)
class Parameter:
    """One parameter of an impairment kind, read from its dataclass field (see :func:`param`)."""

    name: str                   # the field's name, its proto field's name, and --flag in the CLI
    type: type                  # float, int or str
    optional: bool              # declared ``X | None``: None (unset) allowed, a proto3 ``optional`` field
    default: object             # MISSING when required
    help: str
    unit: str
    metavar: str
    low: float | None
    high: float | None
    choices: tuple[str, ...]

    @property
    def required(self) -> bool:
        return self.default is MISSING

    @property
    def flag(self) -> str:
        return flag(self.name)

    def check(self, kind: str, value: object) -> None:
        """ValueError, naming ``kind``, the parameter and what is allowed, unless ``value`` is valid."""
        if value is None:
            if not self.optional:
                raise ValueError(f"{kind} {self.name} must be given")
            return
        _check_type(f"{kind} {self.name}", self.type, value)
        if self.type is not str and not math.isfinite(value):
            raise ValueError(f"{kind} {self.name} must be a finite number, got {value}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ValueError(f"{kind} {self.name} must {self.allowed()}, got {value}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{kind} {self.name} must be one of {', '.join(self.choices)}, got {value!r}")

    def allowed(self) -> str:
        """The range in words: "lie in -60..60 dB", "be >= 0"."""
        unit = f" {self.unit}" if self.unit else ""
        if self.low is not None and self.high is not None:
            return f"lie in {self.low:g}..{self.high:g}{unit}"
        return f"be >= {self.low:g}{unit}" if self.low is not None else f"be <= {self.high:g}{unit}"

    def from_proto(self, message) -> object:
        """The value of this parameter in the kind's proto ``message``.

        proto3 cannot tell a zero or empty value from an unset field, so one stands for the default
        (an older client's empty ``method`` is "fgm"); declare the proto field ``optional`` (and the
        Python field ``X | None = None``) where unset must differ from zero.
        """
        if self.optional:
            return getattr(message, self.name) if message.HasField(self.name) else self.default
        value = getattr(message, self.name)
        return self.default if not value and not self.required else value

    def click_type(self) -> click.ParamType | type:
        """Its type on the command line: a choice, a bounded integer, or a plain float/int/str."""
        if self.choices:
            return click.Choice(list(self.choices))
        if self.type is int and (self.low is not None or self.high is not None):
            return click.IntRange(self.low, self.high)
        return self.type

    def usage(self) -> str:
        """``--ms MS`` when required, ``[--method fgm|pgd]`` when not."""
        text = f"{self.flag} {'|'.join(self.choices) or self.metavar}"
        return text if self.required else f"[{text}]"

    def shown_default(self) -> str | None:
        """The default worth printing in --help (None for a required parameter, None, "", 0)."""
        return None if self.default in (MISSING, None, "", 0) else str(self.default)


def flag(name: str) -> str:
    """The command-line flag of a parameter name: ``jitter_ms`` -> ``--jitter-ms``."""
    return "--" + name.replace("_", "-")


@cache
def parameters(spec_class: type) -> tuple[Parameter, ...]:
    """The parameters of an impairment kind (a dataclass of :func:`param` fields), in field order.

    TypeError when a field was not made with :func:`param` or has a type other than float, int, str
    (optionally ``| None``).
    """
    hints = typing.get_type_hints(spec_class)
    out = []
    for field in dataclasses.fields(spec_class):
        if "param" not in field.metadata:
            raise TypeError(f"{spec_class.__name__}.{field.name} must be declared with param(help, unit=...)")
        base, optional = _unwrap_optional(hints[field.name])
        if base not in (float, int, str):
            raise TypeError(f"{spec_class.__name__}.{field.name}: a parameter is a float, int or str, "
                            f"not {hints[field.name]}")
        out.append(Parameter(field.name, base, optional, field.default, **field.metadata["param"]))
    return tuple(out)


def _unwrap_optional(hint) -> tuple[object, bool]:
    """``int | None`` -> (int, True); ``float`` -> (float, False)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def _check_type(what: str, expected: type, value: object) -> None:
    """ValueError unless ``value`` fits ``expected`` (an int is a float; a bool is neither number)."""
    if expected is str:
        ok, words = isinstance(value, str), "text"
    elif expected is int:
        ok, words = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    else:
        ok, words = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    if not ok:
        raise ValueError(f"{what} must be {words}, got {value!r}")
