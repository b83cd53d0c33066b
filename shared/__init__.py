"""DiffuSeC Link shared library: the math, models and experiments under every command and service.

What the link's services (sender, channel proxy, receiver) load at run time:

- :mod:`.presets` (model sizes, hyperparameters), :mod:`.models`, :mod:`.diffusion`,
  :mod:`.channel` (AWGN, pilots, SNR estimate), :mod:`.pipeline` (the chain of eq. 8),
  :mod:`.checkpoints`, :mod:`.losses` (SSIM);
- :mod:`.data` (the sender's test images, :func:`.data.load_eval_data`);
- :mod:`.attacks` (the source attack of the sender, the wireless attack of the proxy);
- :mod:`.agent.policy` (the receiver's step policy: the trained actor or the grid oracle);
- :mod:`.devices` and :mod:`.cli_options`: the torch-free command-line options every command shares.

Offline code, run by the ``diffusec`` command only (:mod:`diffusec`), never by a service:

- :mod:`.training` (one module per training phase, DDP) and the agent's training
  (:mod:`.agent.train`, on the grid that :func:`.agent.grid.measure_grid` measures);
- :mod:`.evaluate` (in-process evaluation), :mod:`.purification`, :mod:`.imaging`;
- :mod:`.baselines` (the conventional JPEG + LDPC link, evaluated in process);
- :mod:`.report`: the experiment runners (the paper's Table II and figures, the attack sweep)
  and the files they write.

Nothing here imports the services, the link layer or the ``diffusec`` command
(``tests/test_structure.py`` checks it).
"""

__version__ = "0.1.0"
