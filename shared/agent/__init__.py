"""The channel-adaptive diffusion step selection agent (DiffuSeC paper IV-D, V-C, Algorithm 1).

One concept per module:

- :mod:`.reward`: eqs. 26-31 (batch SSIM, Adv, Err, the weighted reward);
- :mod:`.grid`: the response surface measured once on a (t_D, t_plus, SNR) grid, cached as JSON,
  and its trilinear interpolator;
- :mod:`.env`: the MDP as a ``gymnasium.Env`` with a pluggable reward source;
- :mod:`.ddpg`: DDPG (Algorithm 1), our own compact implementation;
- :mod:`.policy`: the trained actor and the grid oracle as step-selection policies;
- :mod:`.train`, :mod:`.evaluate`, :mod:`.plots`: `diffusec train agent`,
  `diffusec eval --system diffusec|table`, `diffusec eval adaptation` (the commands:
  :mod:`diffusec.agent`).

Nothing here is imported by ``shared`` at start-up: torch, numpy and gymnasium load on use.
"""
