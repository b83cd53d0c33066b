"""``python -m diffusec ...``, and ``torchrun --nproc-per-node N -m diffusec train ...`` (DDP)."""
from .cli import main

if __name__ == "__main__":
    main(prog_name="diffusec")
