"""``ack-forge``: change the class each ack reports on its way to the sender (issue 17)."""
from __future__ import annotations

from dataclasses import dataclass

from ...tamper import AckForger, MessageTamper
from ..base import ImpairmentSpec
from ..registry import register
from .adversarial import target_param
from .sync_tamper import rate_param


@register
@dataclass(frozen=True)
class AckForge(ImpairmentSpec):
    """Acks report class ``target`` (default: the next class) instead of the receiver's answer."""

    target: int | None = target_param("the class forged acks report (default: the next class, (c + 1) mod classes).")
    rate: float | None = rate_param()

    kind = "ack-forge"
    summary = "rewrite the class each ack reports (to C, or to the next class)"

    def message_tamper(self, num_classes: int) -> MessageTamper:
        if self.target is not None and self.target >= num_classes:
            raise ValueError(f"ack-forge target {self.target} is out of range: the proxy's preset has {num_classes} "
                             f"classes (0..{num_classes - 1})")
        return AckForger(self.target, self.rate, num_classes)
