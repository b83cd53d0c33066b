"""Run by tests/test_training.py under ``torch.distributed.run``: a 2-step codec phase on random
data, then check that every rank ends with the same weights (gradients really were averaged).

usage: python -m torch.distributed.run --nproc-per-node 2 tests/ddp_codec_worker.py PHASE OUT_DIR
Writes ``OUT_DIR/rank<r>.json`` with the max weight difference to rank 0.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

import shared.training.codec as codec_phase
from shared.data import ImageSet
from shared.presets import get_preset
from shared.training import run_phase
from shared.training.common import PhaseContext
from shared.training.distributed import init_distributed, shutdown


def main() -> None:
    phase, out_dir = sys.argv[1], Path(sys.argv[2])
    torch.set_num_threads(1)
    ctx = init_distributed()
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (160, 1, 28, 28), dtype=torch.uint8, generator=generator)
    data = ImageSet(images, torch.arange(160) % 10, [str(i) for i in range(10)], "random 28x28")
    pc = PhaseContext(get_preset("fmnist"), out_dir, ctx, seed=0, max_steps=2, train_set=data)

    original = codec_phase.validate_codec
    report: dict = {}

    def checking_validate(codec, val, pc_, ctx_, n=500):
        flat = torch.cat([p.detach().reshape(-1) for p in codec.parameters()])
        gathered = [torch.zeros_like(flat) for _ in range(ctx.world)]
        dist.all_gather(gathered, flat)
        report["max_diff_to_rank0"] = float((flat - gathered[0]).abs().max())
        return original(codec, val, pc_, ctx_, n)

    codec_phase.validate_codec = checking_validate
    try:
        run_phase(phase, pc)
    finally:
        shutdown(ctx)
    (out_dir / f"rank{ctx.rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
