"""Does ``torch.compile``, bf16 autocast or channels-last speed up a CPU training step?

Issue 12 asks to try bf16 autocast on CPU and ``torch.compile`` "where they speed up without
losing quality". The network is the one ``train --budget`` picks on CPU
(:func:`tomochunk.training.budget.budget_settings`: the space-to-depth UNet 2 x 32, 96²
patches, batch 8, 2.5D context 5; ``--network msd`` for MSD-30). Each variant starts from the
same weights and trains on the same fixed batches, so besides the time per step the table
gives the loss after ``--steps`` steps relative to eager float32: a variant that is faster but
learns differently shows up there.

The peer is eager float32, in the same run; ratios are eager's time over the variant's.

    python benchmarks/step_speed.py [--steps 60] [--threads 2] [--network unet|msd]

Writes a table and ``benchmarks/results/step_speed.json`` (``--name`` for another name).
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_json  # noqa: E402

from tomochunk.config import TrainConfig  # noqa: E402
from tomochunk.nn.registry import build_network, network_params_from_config  # noqa: E402
from tomochunk.training.budget import budget_settings  # noqa: E402

VARIANTS = ("eager", "channels_last", "bf16_autocast", "compile")


def make_config(network: str) -> TrainConfig:
    if network == "msd":
        return TrainConfig().with_values(network="msd", depth=30, patch_size=96, batch_size=8)
    return TrainConfig().with_values(**budget_settings(10.0, 128, False))


def run_variant(variant: str, cfg: TrainConfig, context: int, batches: list[tuple],
                warmup: int) -> dict[str, Any]:
    torch.manual_seed(0)
    net = build_network(cfg.network, context, 1, **network_params_from_config(cfg)).train()
    fmt = torch.channels_last if variant == "channels_last" else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    model = torch.compile(net) if variant == "compile" else net
    cast = (torch.autocast("cpu", dtype=torch.bfloat16) if variant == "bf16_autocast"
            else nullcontext())

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        opt.zero_grad(set_to_none=True)
        with cast:
            out = model(x.to(memory_format=fmt))
        loss = torch.nn.functional.mse_loss(out.float(), y)
        loss.backward()
        opt.step()
        return float(loss)

    row: dict[str, Any] = {"variant": variant}
    try:
        t0 = time.perf_counter()
        for x, y in batches[:warmup]:  # compilation happens here
            step(x, y)
        row["warmup_s"] = time.perf_counter() - t0
        w0, c0 = time.perf_counter(), time.process_time()
        losses = [step(x, y) for x, y in batches[warmup:]]
        n = len(losses)
        row["wall_s_per_step"] = (time.perf_counter() - w0) / n
        row["cpu_s_per_step"] = (time.process_time() - c0) / n
        row["final_loss"] = sum(losses[-10:]) / len(losses[-10:])
    except Exception as exc:  # noqa: BLE001 - a variant that fails is a result
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60, help="timed steps per variant")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--network", choices=("unet", "msd"), default="unet")
    ap.add_argument("--only", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--name", default="step_speed")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = make_config(args.network)
    context, p, b = 5, cfg.patch_size, cfg.batch_size
    # smooth targets, so that the loss falls and "learns the same" is measurable
    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(args.warmup + args.steps):
        y = torch.nn.functional.avg_pool2d(torch.rand(b, 1, p + 4, p + 4, generator=g), 5, 1)
        x = y.repeat(1, context, 1, 1) + 0.3 * torch.randn(b, context, p, p, generator=g)
        batches.append((x, y))
    print(f"{cfg.network} ({network_params_from_config(cfg)}), {p}² x {b}, context {context}, "
          f"{args.threads} threads, {args.warmup} warm-up + {args.steps} timed steps",
          flush=True)
    rows = []
    for v in args.only:
        rows.append(run_variant(v, cfg, context, batches, args.warmup))
        print(f"  {rows[-1]}", flush=True)
    base = next((r for r in rows if r["variant"] == "eager" and "error" not in r), None)
    for r in rows:
        if base is not None and "error" not in r:
            r["speedup_wall"] = base["wall_s_per_step"] / r["wall_s_per_step"]
            r["loss_vs_eager"] = r["final_loss"] / base["final_loss"]
    cols = ["variant", "wall_s_per_step", "cpu_s_per_step", "speedup_wall", "final_loss",
            "loss_vs_eager", "warmup_s", "error"]
    print(table(rows, cols))
    path = write_json(args.name, {
        "network": cfg.network, "params": network_params_from_config(cfg), "patch": p,
        "batch": b, "context": context, "threads": args.threads, "steps": args.steps,
        "warmup": args.warmup, "torch": torch.__version__, "rows": rows})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
