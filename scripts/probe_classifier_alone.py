"""Probe: how far is the paper's PGD from converging on the receiver classifier alone? (issue 19)

Loads the report's own 1000 test images (seed 0) and its cached PGD 8/255 x 10 store (crafting
it if absent, about 10 minutes), prints the classifier's clean and robust accuracy, then attacks
the images the store left right once more from a new random start, with PGD 8/255 x 10, x 20 and
x 50 (step 2.5 eps / steps), each 8-bit quantized as the store is. "alone" is then the classifier's
accuracy under the store followed by that restart: a PGD with one restart, out of 1000.

    python scripts/probe_classifier_alone.py      # 1 thread; about 20 minutes beside a busy report
"""
import time

import torch

from shared.attacks.source import SourceAttack, pgd, quantize_within
from shared.attacks.store import cached_polluted_store
from shared.data import load_eval_data
from shared.pipeline import Pipeline
from shared.training.common import classifier_accuracy

torch.set_num_threads(1)
p = Pipeline.load("cifar10", None, ("classifier",), "cpu")
data = load_eval_data("cifar10", None, "test", 1000, 0)
attack = SourceAttack("pgd", 8/255, steps=10)
t = time.time()
store = cached_polluted_store(p, data, attack, 0, 250)
print("store", round(time.time()-t, 1), "s")
x = data.as_float()
xa = store.as_float()
y = data.labels
print("clean", classifier_accuracy(p.classifier, x, y), "store robust", classifier_accuracy(p.classifier, xa, y))
with torch.no_grad():
    pred = torch.cat([p.classifier(xa[i:i+250]).argmax(1) for i in range(0, 1000, 250)])
surv = (pred == y).nonzero().flatten()
print("survivors", len(surv))
xs, ys = x[surv], y[surv]
logits = p.classifier
for steps in (10, 20, 50):
    g = torch.Generator().manual_seed(1)
    xadv = pgd(logits, xs, ys, 8/255, steps, 2.5*(8/255)/steps if steps > 10 else 2/255, None, True, g)
    q = quantize_within(xadv, (xs*255).round().to(torch.uint8), 8/255).float()/255
    with torch.no_grad():
        acc = (p.classifier(q).argmax(1) == ys).float().sum().item()
    print(f"PGD-{steps} restart on survivors: {int(acc)} of {len(surv)} still right -> alone {(acc)/1000:.3f}",
          flush=True)
