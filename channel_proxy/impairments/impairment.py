"""An impairment on the proxy: a name and a kind's parameters; as link.proto's Impairment message both ways."""
from __future__ import annotations

from dataclasses import dataclass

from protos.diffusec.link.v1 import link_pb2

from .base import ImpairmentSpec, field_name, kind_of_field
from .registry import kind_class, names

MAX_NAME_CHARS = 64


@dataclass(frozen=True)
class Impairment:
    name: str
    spec: ImpairmentSpec

    @property
    def kind(self) -> str:
        return self.spec.kind

    def to_message(self) -> link_pb2.Impairment:
        return link_pb2.Impairment(name=self.name, **{field_name(self.kind): self.spec.to_message()})

    @classmethod
    def from_message(cls, message: link_pb2.Impairment) -> Impairment:
        """Name and spec of ``message`` (unchecked); ValueError when it sets no kind."""
        field = message.WhichOneof("kind")
        if field is None:
            raise ValueError(f"the impairment has no kind; set one of: {', '.join(names())}")
        return cls(message.name, kind_class(kind_of_field(field)).from_message(getattr(message, field)))


def check_name(name: str) -> str:
    """ValueError unless ``name`` is empty (the proxy picks one) or 1..64 printable characters without spaces."""
    if name and (len(name) > MAX_NAME_CHARS or not name.isprintable() or any(c.isspace() for c in name)):
        raise ValueError(f"impairment name must be 1..{MAX_NAME_CHARS} printable characters without spaces, got "
                         f"{name[:MAX_NAME_CHARS]!r}{'...' if len(name) > MAX_NAME_CHARS else ''} ({len(name)} characters)")
    return name
