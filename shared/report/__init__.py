"""`diffusec report`: the paper's Table II and Figs. 5-6, measured on our models beside its published rows.

- :mod:`.sweep`   -- every system x SNR x (no attack, PGD): the measurements, as a plain dict;
- :mod:`.tables`  -- the Markdown report (Table II layout, standard accuracy, SSIM, the reading);
- :mod:`.figures` -- Fig. 5(a)/(b) analogues and the Fig. 6 image grid, as PNG;
- :mod:`.cli`     -- the click command.
"""
