"""Milliseconds per image of the whole jpeg-ldpc link (JPEG, FEC, mapping, AWGN, decoding, JPEG decoding),
802.16e against 5G NR (Sionna), with the adaptive policy, over the report's SNRs. One torch thread.
Data: the embedded CIFAR-10 (JPEG q75 copy) test sample, first 200 images.

    python docs/baselines/time_fec.py > docs/baselines/time-fec.json
"""
import json
import time

import torch

from shared.baselines import jpeg_ldpc
from shared.data.sample import load_sample

SNRS_DB = (-6.0, -3.0, 0.0, 3.0, 6.0, 9.0, 12.0, 15.0, 18.0)


def main() -> None:
    torch.set_num_threads(1)
    pixels = load_sample("cifar10").images[:200].float() / 255
    rows = []
    for snr_db in SNRS_DB:
        for fec in jpeg_ldpc.FEC_LINKS:   # alternate, so that load on the machine hits both alike
            tally = jpeg_ldpc.LinkTally()
            start = time.perf_counter()
            jpeg_ldpc.transmit_images(pixels, snr_db, 768, generator=torch.Generator().manual_seed(0), tally=tally,
                                      fec=fec)
            ms = (time.perf_counter() - start) * 1000 / len(pixels)
            rows.append({"fec": fec, "snr_db": snr_db, "ms_per_image": round(ms, 2), "mode": tally.to_dict()["mode"],
                         "delivered": tally.delivered})
    total = {fec: sum(r["ms_per_image"] for r in rows if r["fec"] == fec) for fec in jpeg_ldpc.FEC_LINKS}
    print(json.dumps({"rows": rows, "mean_ms_per_image": {k: round(v / len(SNRS_DB), 2) for k, v in total.items()},
                      "ratio_5g_nr_to_802_16e": round(total["5g-nr"] / total["802.16e"], 3)}))


if __name__ == "__main__":
    main()
