"""The DiffuSeC chain in one process (eq. 8): diffuse -> encode -> channel -> decode -> purify -> classify.

The sender, proxy and receiver services call the same stage methods, so the network cannot
change the math. Images enter and leave as [0, 1] pixels [B, C, H, W]; latents are [B, L] real
symbols at unit average power; SNR is in dB; timesteps are integers (t_D in 0..T).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .fading import AWGN, LinkChannel, transmit
from .checkpoints import load_checkpoint, resolve_checkpoint_dir
from .diffusion import (Schedule, as_timesteps, denoise_ddim, denoise_ddpm, linear_beta_schedule,
                        q_sample, to_model_space, to_pixels)
from .models.classifier import Classifier
from .models.codec import Codec
from .models.unet import UNet
from .presets import Preset, get_preset

if TYPE_CHECKING:
    from .baselines.jpeg_ldpc import LinkTally

# jpeg-ldpc: the conventional baseline (JPEG + LDPC + QAM, shared/baselines), no codec or denoiser;
# jpeg-ldpc-at: the same link with the adversarially trained classifier (classifier_kind="classifier_at").
DIGITAL_SYSTEMS = ("jpeg-ldpc", "jpeg-ldpc-at")
SYSTEMS = ("classifier", "vit", "plain") + DIGITAL_SYSTEMS
SAMPLERS = ("ddpm", "ddim")


def classifier_kind_for(system: str) -> str:
    """The classifier checkpoint ``system`` classifies with: classifier_at for jpeg-ldpc-at, else classifier."""
    return "classifier_at" if system == "jpeg-ldpc-at" else "classifier"


@dataclass
class Pipeline:
    preset: Preset
    codec: Codec | None
    denoiser: UNet | None
    classifier: Classifier | None
    schedule: Schedule
    device: torch.device = torch.device("cpu")
    # The digital baseline's (modulation, code rate): "adaptive" (measured policy) or e.g. "16qam-3/4".
    link_mode: str = "adaptive"
    # Which classifier checkpoint was loaded: "classifier" (the receiver's) or "classifier_at" (PGD-trained).
    classifier_kind: str = "classifier"
    # What the channel does besides AWGN (shared.fading); the default is shared.channel.awgn alone, bit for bit.
    link_channel: LinkChannel = AWGN

    @classmethod
    def load(cls, preset_name: str, checkpoint_dir: str | Path | None = None,
             parts: tuple[str, ...] = ("codec", "denoiser", "classifier"),
             device: str | torch.device = "cpu", classifier_kind: str = "classifier") -> "Pipeline":
        """Build the preset's models and load ``parts`` from ``checkpoint_dir`` (CheckpointError if missing).

        ``classifier_kind="classifier_at"`` loads the adversarially trained classifier (jpeg-ldpc-at).
        """
        preset = get_preset(preset_name)
        directory = resolve_checkpoint_dir(preset_name, checkpoint_dir)
        codec = denoiser = classifier = None
        if "codec" in parts:
            codec = Codec(preset.codec)
            codec.load_state_dict(load_checkpoint(directory, "codec", preset_name))
        if "denoiser" in parts:
            denoiser = UNet(preset.denoiser, preset.codec.channels)
            denoiser.load_state_dict(load_checkpoint(directory, "denoiser", preset_name))
        if "classifier" in parts:
            classifier = Classifier(preset.classifier_config(classifier_kind), preset.codec.channels,
                                    preset.num_classes)
            classifier.load_state_dict(load_checkpoint(directory, classifier_kind, preset_name))
        device = torch.device(device)
        for module in (codec, denoiser, classifier):
            if module is not None:
                module.to(device).eval().requires_grad_(False)
        return cls(preset, codec, denoiser, classifier, linear_beta_schedule(preset.diffusion), device,
                   classifier_kind=classifier_kind)

    # --- sender side -----------------------------------------------------------------------
    def diffuse(self, pixels01: torch.Tensor, t_d: int | torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """D(x; t_D), eq. 12, on [0,1] pixels -> model-space x_{t_D} in about [-1, 1]."""
        return q_sample(to_model_space(pixels01), t_d, self.schedule, generator=generator)

    @torch.no_grad()
    def encode(self, x_model: torch.Tensor) -> torch.Tensor:
        """F(x), eq. 4: -> z [B, L], unit average power per real symbol."""
        return self.codec.encode(x_model)

    # --- channel -----------------------------------------------------------------------------
    def channel(self, z: torch.Tensor, snr_db: float | torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """z [B, L] -> z_hat [B, L] through ``self.link_channel`` at ``snr_db`` (dB): AWGN (eq. 5) by default,
        or block fading with the receiver's equaliser (:func:`shared.fading.transmit`)."""
        return transmit(z, snr_db, self.link_channel, generator)

    # --- receiver side -----------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, z_hat: torch.Tensor) -> torch.Tensor:
        """F^-1(z_hat), eq. 6: -> model-space image x_hat [B, C, H, W]."""
        return self.codec.decode(z_hat)

    @torch.no_grad()
    def purify(self, x_hat: torch.Tensor, t_p: int | torch.Tensor, sampler: str = "ddpm", steps: int = 5,
               generator: torch.Generator | None = None, eta: float = 0.0) -> torch.Tensor:
        """Asymmetric denoising P(x_hat; t_P), eqs. 21-23 -> [0, 1] pixels. t_P may differ per image.

        ``eta`` (ddim only): 0 is the deterministic strided sampler, 1 draws fresh noise at each of its
        steps as the DDPM chain does at each of its own (a stochastic strided sampler).
        """
        t_p = as_timesteps(t_p, x_hat.shape[0], self.schedule)

        def predict_x0(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.denoiser.predict_x0(x_t, t, self.schedule)

        if sampler == "ddpm":
            x0 = denoise_ddpm(predict_x0, x_hat, t_p, self.schedule, generator)
        elif sampler == "ddim":
            x0 = denoise_ddim(predict_x0, x_hat, t_p, self.schedule, steps=steps, eta=eta, generator=generator)
        else:
            raise ValueError(f"unknown sampler {sampler!r}; use one of {SAMPLERS}")
        return to_pixels(x0)

    @torch.no_grad()
    def classify(self, pixels01: torch.Tensor) -> torch.Tensor:
        """Receiver classifier H(x) on [0,1] pixels -> logits [B, classes]."""
        return self.classifier(pixels01)

    # --- the whole chain ---------------------------------------------------------------------
    @torch.no_grad()
    def run(self, system: str, pixels01: torch.Tensor, snr_db: float, t_d: int = 20, t_plus: int = 0,
            sampler: str = "ddpm", steps: int = 5, generator: torch.Generator | None = None,
            link_tally: LinkTally | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch through ``system`` -> (received image in [0,1] [B,C,H,W], logits [B, classes]).

        classifier: the classifier on the clean image (no link); vit: encode -> channel -> decode,
        no diffusion (the paper's "ViT-based"); plain: DiffuSeC with fixed t_D and t_P = t_D + t_plus;
        jpeg-ldpc: JPEG + LDPC + QAM over the same AWGN channel and budget (``self.link_mode``;
        undelivered images are mid-grey, counted in ``link_tally``, a
        :class:`shared.baselines.jpeg_ldpc.LinkTally`), then the receiver classifier; jpeg-ldpc-at:
        the same, classified by the adversarially trained classifier (loaded as ``classifier_at``).
        The channel is ``self.link_channel`` (AWGN unless set; the digital systems equalise fading with zf).
        Inputs may live on the CPU; the outputs come back on the CPU.
        """
        if system in DIGITAL_SYSTEMS:
            from .baselines import jpeg_ldpc

            wanted = classifier_kind_for(system)
            if self.classifier_kind != wanted:
                raise ValueError(f"{system} classifies with {wanted}.pt but this pipeline loaded {self.classifier_kind}"
                                 f".pt: use Pipeline.load(..., classifier_kind={wanted!r})")

            received, logits = jpeg_ldpc.run(pixels01, snr_db, self.classify, self.preset.codec.channel_symbols,
                                             self.link_mode, generator, link_tally, self.device,
                                             self.link_channel)
            return received.cpu(), logits.cpu()
        pixels01 = pixels01.to(self.device)
        if system == "classifier":
            received = pixels01
        elif system == "vit":
            received = to_pixels(self.decode(self.channel(self.encode(to_model_space(pixels01)), snr_db, generator)))
        elif system == "plain":
            z = self.encode(self.diffuse(pixels01, t_d, generator))
            received = self.purify(self.decode(self.channel(z, snr_db, generator)), t_d + t_plus, sampler, steps, generator)
        else:
            raise ValueError(f"unknown system {system!r}; use one of {SYSTEMS}")
        return received.cpu(), self.classify(received).cpu()
