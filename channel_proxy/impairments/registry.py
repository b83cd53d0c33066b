"""The impairment kinds the proxy knows, by name: each kind's module registers its class here.

``@register`` checks a kind against link.proto when its module is imported, so a mismatch fails
at start-up rather than on the first frame: it must be a frozen dataclass of ``param`` fields,
name an entry of the Impairment oneof, and have that message's fields (same names, order, types;
``X | None`` exactly where the proto field is ``optional``). Kinds that share a parameter name
share its ``--flag`` on the CLI, so they must agree on its type, range and choices.
"""
from __future__ import annotations

import dataclasses

from google.protobuf.descriptor import FieldDescriptor

from .base import KIND_FIELDS, ImpairmentSpec
from .params import Parameter

_KINDS: dict[str, type[ImpairmentSpec]] = {}

# proto scalar types -> the Python type of a parameter
_PROTO_TYPES = {FieldDescriptor.CPPTYPE_DOUBLE: float, FieldDescriptor.CPPTYPE_FLOAT: float,
                FieldDescriptor.CPPTYPE_INT32: int, FieldDescriptor.CPPTYPE_INT64: int,
                FieldDescriptor.CPPTYPE_UINT32: int, FieldDescriptor.CPPTYPE_UINT64: int,
                FieldDescriptor.CPPTYPE_STRING: str}
_RESERVED = ("name", "kind")   # the CLI's --name and KIND


def register(spec_class: type[ImpairmentSpec]) -> type[ImpairmentSpec]:
    """Class decorator: make ``spec_class`` a kind the proxy serves (TypeError when it does not fit link.proto)."""
    kind = spec_class.kind
    if not (dataclasses.is_dataclass(spec_class) and spec_class.__dataclass_params__.frozen):
        raise TypeError(f"{spec_class.__name__} must be a @dataclass(frozen=True)")
    if kind not in KIND_FIELDS:
        raise TypeError(f"{spec_class.__name__}.kind = {kind!r} is no entry of the Impairment oneof in link.proto "
                        f"(entries: {', '.join(KIND_FIELDS)})")
    _check_fields(spec_class)
    _check_shared_flags(spec_class)
    if kind in _KINDS and _KINDS[kind] is not spec_class:
        raise TypeError(f"impairment kind {kind!r} is registered already, by {_KINDS[kind].__name__}")
    _KINDS[kind] = spec_class
    return spec_class


def kind_classes() -> tuple[type[ImpairmentSpec], ...]:
    """Every registered kind, in the order of the Impairment oneof's fields."""
    return tuple(sorted(_KINDS.values(), key=lambda c: KIND_FIELDS[c.kind].number))


def names() -> tuple[str, ...]:
    """The registered kinds' names ("jamming", ...), in oneof order."""
    return tuple(c.kind for c in kind_classes())


def kind_class(name: str) -> type[ImpairmentSpec]:
    """The class of kind ``name``; ValueError naming the known kinds when there is none."""
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"this proxy has no impairment kind {name!r}; it knows {', '.join(names())}") from None


def shared_parameters() -> dict[str, list[tuple[str, Parameter]]]:
    """{parameter name: [(kind, its declaration there), ...] over the kinds that take it}, in first-use order.

    The CLI has one --flag per name; the registry made sure its users agree on type, range and choices.
    """
    out: dict[str, list[tuple[str, Parameter]]] = {}
    for spec_class in kind_classes():
        for p in spec_class.parameters():
            out.setdefault(p.name, []).append((spec_class.kind, p))
    return out


def _check_fields(spec_class: type[ImpairmentSpec]) -> None:
    fields = KIND_FIELDS[spec_class.kind].message_type.fields
    params = spec_class.parameters()   # TypeError for a field not made with param()
    if [f.name for f in fields] != [p.name for p in params]:
        raise TypeError(f"{spec_class.__name__}'s parameters {[p.name for p in params]} must be the fields of its "
                        f"proto message, in order: {[f.name for f in fields]}")
    for field, p in zip(fields, params):
        if p.name in _RESERVED:
            raise TypeError(f"{spec_class.__name__}: a parameter may not be called {p.name!r} (the CLI's own)")
        proto_type = _PROTO_TYPES.get(field.cpp_type)
        if proto_type is not p.type or field.has_presence != p.optional:
            raise TypeError(f"{spec_class.__name__}.{p.name} is {_words(p.type, p.optional)} but its proto field is "
                            f"{_words(proto_type, field.has_presence)}")
        if p.optional and p.default is not None:
            raise TypeError(f"{spec_class.__name__}.{p.name}: an optional parameter defaults to None")


def _check_shared_flags(spec_class: type[ImpairmentSpec]) -> None:
    for p in spec_class.parameters():
        for other in kind_classes():
            q = next((q for q in other.parameters() if q.name == p.name), None)
            if q is not None and (q.type, q.low, q.high, q.choices) != (p.type, p.low, p.high, p.choices):
                raise TypeError(f"{spec_class.__name__}.{p.name} differs from {other.__name__}.{p.name} in type, "
                                f"range or choices; kinds share the {p.flag} flag")


def _words(python_type: type | None, optional: bool) -> str:
    return f"{'optional ' * optional}{python_type.__name__ if python_type else 'no scalar'}"
