"""One Transmit stream's frames on their way to the receiver, after the channel has decided their fate.

Frames go into a :class:`channel_proxy.delayline.DelayLine` that lets each out when its delay is up;
while a latent attack is on, through an :class:`channel_proxy.adversary.AttackStage` first, which
perturbs them in batches. The stage and its thread exist only once a frame needs it.
"""
from __future__ import annotations

from collections.abc import Iterator

from .adversary import AttackStage
from .delayline import DelayLine
from .state import ChannelState, FrameFate


class Outbound:
    def __init__(self, state: ChannelState):
        self._state = state
        self._line: DelayLine = DelayLine()
        self._stage: AttackStage | None = None

    def put(self, frame, fate: FrameFate) -> None:
        """``frame`` (a message whose ``latent`` is ``fate.latent``) goes out ``fate.delay_s`` seconds from now."""
        if not fate.attack:
            self._line.put(frame, fate.delay_s)
            return
        if self._stage is None:
            generator = self._state.attack_generator()   # one per stream: streams differ, reruns repeat
            self._stage = AttackStage(lambda latents: self._state.attack(latents, generator), self._line.put,
                                      self._state.attack_latent_length)
        self._stage.put(frame, fate.delay_s)

    def close(self) -> None:
        """No more frames: those queued (in the attack stage too) still go out."""
        if self._stage is not None:
            self._stage.close()
        self._line.close()

    def cancel(self) -> None:
        """Stop now, dropping what is queued (the stream was cancelled)."""
        self._line.cancel()

    def __iter__(self) -> Iterator:
        return iter(self._line)
