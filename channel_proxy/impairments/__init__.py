"""Channel impairments: one class per kind (``jamming``, ``drop``, ``delay``, ``adversarial``), found
through a registry, like toxiproxy's toxics.

- :mod:`.params`: a kind's parameters are dataclass fields made with ``param(help, unit=, low=, ...)``;
- :mod:`.base`: :class:`ImpairmentSpec`, the base class: checks, proto conversion, effect hooks;
- :mod:`.registry`: ``@register`` (checked against link.proto), ``kind_classes()``, ``kind_class(name)``;
- :mod:`.impairment`: :class:`Impairment`, a named spec, and link.proto's Impairment message;
- :mod:`.kinds`: one module per kind, each registering itself; every module there is imported.

Adding a kind is its message and oneof entry in link.proto plus one module in ``kinds/``: the
channel state, the ChannelControl service and the CLI loop over the registry (docs/link.md,
"Adding an impairment kind").
"""
from . import kinds  # noqa: F401 - imports every kind's module, which registers it
from .base import ImpairmentSpec
from .impairment import MAX_NAME_CHARS, Impairment, check_name
from .registry import kind_class, kind_classes, names, register, shared_parameters

__all__ = ["MAX_NAME_CHARS", "Impairment", "ImpairmentSpec", "check_name", "kind_class", "kind_classes", "names",
           "register", "shared_parameters"]
