"""The base class of every impairment kind: a frozen dataclass of parameters that checks itself,
converts to and from its message in link.proto's ``Impairment`` oneof, and says what it does.

A kind overrides only the effects it has; the channel state (:mod:`channel_proxy.state`) asks
every impairment, in the order they were added, through these hooks:

- :meth:`ImpairmentSpec.noise_pnr_db`: Gaussian noise on every latent and pilot symbol, as a PNR
  in dB over the channel's AWGN power (``jamming``);
- :meth:`ImpairmentSpec.drops_frame`: whether a frame is lost (``drop``);
- :meth:`ImpairmentSpec.added_delay_s`: seconds added before a frame or a sync goes on (``delay``);
- :meth:`ImpairmentSpec.latent_attack`: a perturbation of latent frames, with its models loaded
  (``adversarial``, through :mod:`channel_proxy.adversary`);
- :meth:`ImpairmentSpec.fading`: the block-fading model of the channel (``rayleigh``, ``rician``; at
  most one at a time), through :mod:`shared.pilot_aided`;
- :meth:`ImpairmentSpec.message_tamper`: rewrites of the link's control fields (SyncReply, frame
  headers, acks), with any memory it needs (``sync-tamper``, ``frame-tamper``, ``ack-forge``, through
  :mod:`channel_proxy.tamper`).

``drops_frame`` and ``added_delay_s`` get ``draw``, the state's seeded uniform generator in
[0, 1); a kind calls it only when it needs a number, so the draws of a seeded run repeat.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from protos.diffusec.link.v1 import link_pb2

from .params import Parameter, parameters

if TYPE_CHECKING:
    from typing import Self   # Python >= 3.11; annotations only (pyproject allows 3.10)
    from ..adversary import LatentAttack, Surrogates
    from ..tamper import MessageTamper
    from shared.fading import LinkChannel

# The fields of the ``kind`` oneof of link.proto's Impairment message, one per impairment kind, by the
# kind's name: the field's name with '-' for '_' ("sync_tamper" -> "sync-tamper"), as the CLI spells it.
KIND_FIELDS = {field.name.replace("_", "-"): field
               for field in link_pb2.Impairment.DESCRIPTOR.oneofs_by_name["kind"].fields}


def field_name(kind: str) -> str:
    """The Impairment oneof field of ``kind``: "sync-tamper" -> "sync_tamper"."""
    return KIND_FIELDS[kind].name


def kind_of_field(name: str) -> str:
    """The kind of an Impairment oneof field: "sync_tamper" -> "sync-tamper"."""
    return name.replace("_", "-")


class ImpairmentSpec:
    """An impairment kind's parameters (subclasses are frozen dataclasses of ``param`` fields)."""

    kind: ClassVar[str] = ""             # its entry in the Impairment oneof, and the CLI's KIND
    summary: ClassVar[str] = ""          # what it does, for `attack add --help` ("\n" between lines)
    add_timeout_s: ClassVar[float] = 10.0  # how long the CLI waits for the proxy to add one (s)

    @classmethod
    def parameters(cls) -> tuple[Parameter, ...]:
        return parameters(cls)

    def check(self) -> Self:
        """``self`` when every parameter is valid; else ValueError saying which and what is allowed."""
        for parameter in self.parameters():
            parameter.check(self.kind, getattr(self, parameter.name))
        return self

    def values(self) -> dict[str, object]:
        """{parameter name: value}, in the proto message's field order."""
        return dataclasses.asdict(self)

    def to_message(self):
        """Its message in the Impairment oneof (link_pb2.Jamming, ...); None values stay unset."""
        return message_class(self.kind)(**{k: v for k, v in self.values().items() if v is not None})

    @classmethod
    def from_message(cls, message) -> Self:
        """The spec of its message in the Impairment oneof (zero values mean the defaults; unchecked)."""
        return cls(**{p.name: p.from_proto(message) for p in cls.parameters()})

    # --- effects (the default: none) ---------------------------------------------------------
    def noise_pnr_db(self) -> float | None:
        """Gaussian noise this adds to every latent and pilot symbol, as a PNR (dB) over the AWGN; None: none."""
        return None

    def drops_frame(self, draw: Callable[[], float]) -> bool:
        """Whether this loses the frame at hand."""
        return False

    def added_delay_s(self, draw: Callable[[], float]) -> float:
        """Seconds this adds before the frame or sync at hand goes on."""
        return 0.0

    def latent_attack(self, surrogates: Surrogates) -> LatentAttack | None:
        """The attack this mounts on latent frames, its models loaded from ``surrogates`` (called once,
        when the impairment is added; may raise CheckpointError or ValueError). None: no attack."""
        return None

    def fading(self) -> LinkChannel | None:
        """The block fading this puts on frames and pilots (before the AWGN). None: none."""
        return None

    @classmethod
    def fades(cls) -> bool:
        """Whether this kind is a fading model (it overrides :meth:`fading`); torch-free, no instance needed."""
        return cls.fading is not ImpairmentSpec.fading

    def message_tamper(self, num_classes: int) -> MessageTamper | None:
        """The rewriter of control messages this mounts (called once, when the impairment is added; may raise
        ValueError; ``num_classes``: the proxy's preset's). None: it leaves them alone."""
        return None


def message_class(kind: str) -> type:
    """The proto message class of ``kind``'s entry in the Impairment oneof (KeyError when there is none)."""
    return getattr(link_pb2, KIND_FIELDS[kind].message_type.name)
