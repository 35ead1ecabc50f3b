"""CAREamics peers under a training time budget (Lightning ``max_time``), 2D UNets on slices.

- ``n2v2``: Noise2Void 2 (Höck et al. 2022) trained and applied on the full reconstruction;
- ``n2n``: Noise2Noise (Lehtinen et al. 2018) trained on the split pair (s0 -> s1 and
  s1 -> s0), applied to each split and averaged (the same inputs N2I gets).

Run in benchmarks/peers/.venv:
    python run_careamics.py {n2v2,n2n} IN.npz OUT.npy --minutes M [--threads N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("method", choices=["n2v2", "n2n"])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--minutes", type=float, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from careamics import CAREamist
    from careamics.config.factories.care_n2n_factory import create_advanced_n2n_config
    from careamics.config.factories.n2v_factory import create_advanced_n2v_config
    from peer_io import Clock, load, save

    data = load(args.input)
    full, split = data["full"], data["split"]
    # a power of 2 that divides the slice: CAREamics 0.3.5 fails to pick its validation
    # patches ("Cannot take a larger sample than population") when it does not
    patch = args.patch
    while patch > 8 and (full.shape[1] % patch or full.shape[2] % patch):
        patch //= 2
    secs = int(round(args.minutes * 60))
    trainer = {"max_time": {"seconds": secs}, "accelerator": "cpu", "devices": 1,
               "enable_progress_bar": False}
    common = dict(data_type="array", axes="SYX", patch_size=[patch, patch],
                  batch_size=args.batch, num_epochs=100000, num_workers=0,
                  trainer_params=trainer, seed=args.seed + 1)  # CAREamics wants seed > 0
    clock = Clock()
    with tempfile.TemporaryDirectory() as work:
        if args.method == "n2v2":
            cfg = create_advanced_n2v_config(experiment_name="n2v2", use_n2v2=True, **common)
            model = CAREamist(cfg, work_dir=work)
            model.train(train_data=full)
            train_t = clock.lap()
            pred = model.predict(full, axes="SYX")[0]
            out = np.asarray(pred[0] if isinstance(pred, list) else pred)
        else:
            cfg = create_advanced_n2n_config(experiment_name="n2n", **common)
            model = CAREamist(cfg, work_dir=work)
            model.train(train_data=np.concatenate([split[0], split[1]]),
                        train_data_target=np.concatenate([split[1], split[0]]))
            train_t = clock.lap()
            preds = []
            for s in split[:2]:
                p = model.predict(s, axes="SYX")[0]
                preds.append(np.asarray(p[0] if isinstance(p, list) else p))
            out = (preds[0] + preds[1]) / 2
    out = np.reshape(np.squeeze(out), full.shape)
    save(args.output, out, {"method": f"careamics-{args.method}", "budget_min": args.minutes,
                            "train_wall_s": train_t["wall_s"], **clock.lap(),
                            "patch": patch, "batch": args.batch})


if __name__ == "__main__":
    main()
