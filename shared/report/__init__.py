"""The experiment runners: `diffusec report` (the paper's Table II and Figs. 5-6, measured on our
models beside its published rows) and `diffusec eval attacks` (the attack paper's sweeps).

- :mod:`.sweep`        -- every system x SNR x (no attack, PGD): the measurements, as a plain dict;
- :mod:`.tables`       -- the Markdown report (Table II layout, standard accuracy, SSIM, the reading);
- :mod:`.figures`      -- Fig. 5(a)/(b) analogues and the Fig. 6 image grid, as PNG;
- :mod:`.attack_sweep` -- accuracy vs PNR, multi-domain and strength curves of the attacks;
- :mod:`.attack_plots` -- their PNG plots;
- :mod:`.outputs`      -- the files each experiment writes in its --out folder.

The commands are in :mod:`diffusec.report` and :mod:`diffusec.attacks`.
"""
