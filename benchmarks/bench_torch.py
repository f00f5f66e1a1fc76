"""ganlib against the PyTorch loop a user would write instead: the same conditional DCGAN, the same step.

    python benchmarks/bench_torch.py --setup       # once: .venv-torch with PyTorch CPU (never a ganlib dependency;
                                                   # TORCH_INDEX_URL=<a CPU-wheel index> where PyPI's is CUDA's)
    python benchmarks/bench_torch.py               # ganlib f32/bf16 vs PyTorch eager/compile f32/bf16, ~10 min
    python benchmarks/bench_torch.py --quick       # 1 rep, small data, no torch.compile (checks that it runs)

The model is bench_train.py's (Brownlee's conditional DCGAN for 28x28, 1,169,336 + 196,773 parameters on both
sides, checked). The PyTorch side is written as a PyTorch user writes it: two `nn.Module`s, `BCEWithLogitsLoss`,
`torch.optim.Adam(2e-4, betas=(0.5, 0.999))`, a `DataLoader(TensorDataset, batch_size=128, shuffle=True)`; per
step one generator forward, D updated on 128 real + those 128 fakes (detached), G updated through D on the same
fakes -- ganlib's step (`GANTrainer.train_step`), so both execute the same FLOPs. bfloat16 is `torch.autocast("cpu",
torch.bfloat16)` around the forward passes (float32 weights and losses, as Keras' `mixed_bfloat16`). The
`torch.compile` variants compile both modules (inductor, default mode); warm-up includes their compilation.

Each variant is its own long-lived worker process (ganlib's in this venv, PyTorch's in the torch venv, both with
every core), warmed up, then the variants take turns one step at a time in rotating order, so other load on the
machine hits all of them alike. A repetition's ratio compares steps taken seconds apart; wall time and the
worker's CPU time (less disturbed by other jobs) are both reported.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _benchutil import ROOT, machine, median, prepare_tensorflow, save_json, spread, table  # noqa: E402

BATCH, LATENT, EMBEDDING, FILTERS, CLASSES = 128, 100, 50, 128, 10
TORCH_VENV = ROOT / ".venv-torch"
TORCH_VERSION = "2.13.0"  # the CPU build this workplace has on disk (see docs); any recent CPU build works


# ---------------------------------------------------------------------------------------------- PyTorch side
def torch_models():
    import torch
    from torch import nn

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.label = nn.Sequential(nn.Embedding(CLASSES, EMBEDDING), nn.Linear(EMBEDDING, 7 * 7))
            self.latent = nn.Sequential(nn.Linear(LATENT, FILTERS * 7 * 7), nn.LeakyReLU(0.2))
            self.body = nn.Sequential(
                nn.ConvTranspose2d(FILTERS + 1, FILTERS, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.ConvTranspose2d(FILTERS, FILTERS, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(FILTERS, 1, 7, padding=3), nn.Tanh())

        def forward(self, z, y):
            h = torch.cat([self.latent(z).view(-1, FILTERS, 7, 7), self.label(y).view(-1, 1, 7, 7)], 1)
            return self.body(h)

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            self.label = nn.Sequential(nn.Embedding(CLASSES, EMBEDDING), nn.Linear(EMBEDDING, 28 * 28))
            self.body = nn.Sequential(
                nn.Conv2d(2, FILTERS, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(FILTERS, FILTERS, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Flatten(), nn.Dropout(0.4), nn.Linear(FILTERS * 7 * 7, 1))

        def forward(self, x, y):
            return self.body(torch.cat([x, self.label(y).view(-1, 1, 28, 28)], 1))

    return Generator(), Discriminator()


class TorchGAN:
    def __init__(self, images, labels, precision, compile_models):
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        torch.manual_seed(0)
        self.torch = torch
        self.G, self.D = torch_models()
        self.params = (sum(p.numel() for p in self.G.parameters()), sum(p.numel() for p in self.D.parameters()))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.loss = torch.nn.BCEWithLogitsLoss()
        self.g, self.d = (torch.compile(self.G), torch.compile(self.D)) if compile_models else (self.G, self.D)
        self.bf16 = precision == "mixed_bfloat16"
        x = torch.from_numpy(images).float().div(127.5).sub(1.0).unsqueeze(1)  # scaled once, N x 1 x 28 x 28
        self.loader = DataLoader(TensorDataset(x, torch.from_numpy(labels).long()), batch_size=BATCH, shuffle=True,
                                 drop_last=True)
        self.batches = iter(self.loader)
        self.ones, self.zeros = torch.ones(BATCH, 1), torch.zeros(BATCH, 1)

    def _batch(self):
        try:
            return next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)

    def step(self):
        torch = self.torch
        real, labels = self._batch()
        z, fake_labels = torch.randn(BATCH, LATENT), torch.randint(0, CLASSES, (BATCH,))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            fake = self.g(z, fake_labels)
            d_real, d_fake = self.d(real, labels), self.d(fake.detach(), fake_labels)
        d_loss = self.loss(d_real.float(), self.ones) + self.loss(d_fake.float(), self.zeros)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            g_out = self.d(fake, fake_labels)
        g_loss = self.loss(g_out.float(), self.ones)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return float(d_loss), float(g_loss)  # read back each step, as a user logging losses does


# ---------------------------------------------------------------------------------------------- ganlib side
class GanlibSide:
    def __init__(self, images, labels, precision):
        prepare_tensorflow()
        import keras

        import bench_train
        from ganlib.data import ImageData

        keras.utils.set_random_seed(0)
        data = ImageData(images[..., None], labels.astype("int32"), [str(i) for i in range(CLASSES)], "fashion_mnist")
        self.gan = bench_train.GanlibGAN(data, precision)
        self.params = (self.gan.generator.count_params(), self.gan.discriminator.count_params())

    def step(self):
        self.gan.run(1)


# ---------------------------------------------------------------------------------------------- workers
def worker(args) -> int:
    """Serve 'run N' requests on stdin with {"wall", "cpu"} JSON lines on stdout."""
    import numpy as np

    with np.load(args.data) as f:
        images, labels = f["images"], f["labels"]
    started = time.perf_counter()
    try:
        side = (TorchGAN(images, labels, args.precision, args.compile) if args.worker == "torch"
                else GanlibSide(images, labels, args.precision))
        for _ in range(args.warmup):
            side.step()
        ready = {"ready": True, "params": side.params, "warmup_s": time.perf_counter() - started}
        if args.worker == "torch":
            import torch

            ready.update(torch=torch.__version__, threads=torch.get_num_threads())
        else:
            from ganlib.device import onednn_enabled

            ready.update(onednn=onednn_enabled())
    except Exception as e:  # e.g. torch.compile without a working compiler: reported, the others go on
        ready = {"ready": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]}
    print(json.dumps(ready), flush=True)
    if not ready["ready"]:
        return 0
    for line in sys.stdin:
        steps = int(line.split()[1])
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            side.step()
        print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}), flush=True)
    return 0


class Worker:
    def __init__(self, python, name, kind, precision, compile_models, data, warmup):
        self.name = name
        cmd = [str(python), __file__, "--worker", kind, "--precision", precision, "--data", str(data),
               "--warmup", str(warmup)] + (["--compile"] if compile_models else [])
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'benchmarks'}"}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.info = None

    def wait_ready(self) -> dict:
        line = self.proc.stdout.readline()
        self.info = json.loads(line) if line.strip() else {"ready": False, "error": "the worker exited"}
        return self.info

    def run(self, steps) -> dict:
        self.proc.stdin.write(f"run {steps}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def torch_python(path=None) -> Path:
    python = Path(path) if path else TORCH_VENV / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"no PyTorch interpreter at {python}: run `python benchmarks/bench_torch.py --setup` "
                         f"(creates {TORCH_VENV} with torch=={TORCH_VERSION} CPU and numpy), or pass --torch-python")
    return python


def setup() -> int:
    if not (TORCH_VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(TORCH_VENV)], check=True)
    # The CPU build: without a pin or the CPU index pip may fetch a multi-GB CUDA build.
    cmd = [str(TORCH_VENV / "bin" / "python"), "-m", "pip", "install", "-q", f"torch=={TORCH_VERSION}", "numpy"]
    if os.environ.get("TORCH_INDEX_URL"):  # PyTorch's CPU-wheel index, where PyPI's wheel is the CUDA build
        cmd += ["--extra-index-url", os.environ["TORCH_INDEX_URL"]]
    return subprocess.run(cmd).returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", action="store_true", help=f"create {TORCH_VENV.name} with PyTorch and exit")
    parser.add_argument("--torch-python", help=f"the Python with torch installed (default {TORCH_VENV}/bin/python)")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--steps", type=int, default=1, help="steps per variant per turn")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile variants")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16",
                        help="comma-separated (e.g. float32 alone where bf16 is emulated and very slow)")
    parser.add_argument("--quick", action="store_true", help="1 rep, 2,048 images, no torch.compile")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--worker", choices=["torch", "ganlib"], help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    unknown = set(precisions) - {"float32", "mixed_bfloat16"}
    if unknown or not precisions:
        parser.error(f"--precisions takes float32 and/or mixed_bfloat16, not {args.precisions!r}")
    if args.setup:
        return setup()
    if args.quick:
        args.reps, args.warmup, args.no_compile = 1, 1, True
    python = torch_python(args.torch_python)

    import numpy as np

    prepare_tensorflow()
    from ganlib.data import load_dataset

    data = load_dataset("fashion_mnist", "train")
    if args.quick:
        data = data.take(2048)
    variants = [("ganlib", p, False) for p in precisions]
    variants += [("torch", p, c) for c in ((False,) if args.no_compile else (False, True)) for p in precisions]
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "data.npz"
        np.savez(npz, images=data.images[..., 0], labels=data.labels)
        workers, failed = {}, {}
        for kind, precision, compiled in variants:
            name = f"{kind}{' compile' if compiled else ''} {precision}"
            w = Worker(python if kind == "torch" else sys.executable, name, kind, precision, compiled, npz,
                       args.warmup)
            info = w.wait_ready()  # one at a time: a worker's warm-up (tracing, compiling) has the cores alone
            if info.get("ready"):
                workers[name] = w
                kernels = f", TensorFlow oneDNN {'on' if info['onednn'] else 'off'}" if "onednn" in info else ""
                print(f"{name}: ready after {info['warmup_s']:.1f} s (params G {info['params'][0]:,}, "
                      f"D {info['params'][1]:,}{kernels})", flush=True)
            else:
                failed[name] = info.get("error")
                print(f"{name}: FAILED to start: {info.get('error')}", flush=True)
                w.close()
        params = {tuple(w.info["params"]) for w in workers.values()}
        assert len(params) == 1, f"the sides build different models: {params}"
        torch_info = next((w.info for w in workers.values() if "torch" in w.info), {})

        names = list(workers)
        wall, cpu = {n: [] for n in names}, {n: [] for n in names}
        load_before = os.getloadavg()[0]
        for rep in range(args.reps):
            for n in names[rep % len(names):] + names[:rep % len(names)]:
                r = workers[n].run(args.steps)
                wall[n].append(r["wall"])
                cpu[n].append(r["cpu"])
        load_after = os.getloadavg()[0]
        for w in workers.values():
            w.close()

    ips = {n: [args.steps * BATCH / t for t in v] for n, v in wall.items()}
    rows = [{"variant": n, "images/s": median(ips[n]), "min": min(ips[n]), "max": max(ips[n]),
             "ms/step": 1000 * median(wall[n]) / args.steps,
             "CPU ms/image": 1000 * median(cpu[n]) / (args.steps * BATCH)} for n in names]
    print(f"\n{len(data)} Fashion-MNIST images, batch {BATCH}, {args.reps} reps x {args.steps} step(s); torch "
          f"{torch_info.get('torch')} with {torch_info.get('threads')} threads; load average {load_before:.1f} / "
          f"{load_after:.1f} on {os.cpu_count()} cores")
    print(table(rows, ["variant", "images/s", "min", "max", "ms/step", "CPU ms/image"]))

    ratios, cpu_ratios = {}, {}
    for precision in precisions:
        ours = f"ganlib {precision}"
        peers = [n for n in names if n.startswith("torch") and n.endswith(precision)]
        for peer in peers:
            key = f"{ours} / {peer}"
            ratios[key] = [a / b for a, b in zip(ips[ours], ips[peer])]
            cpu_ratios[key] = [b / a for a, b in zip(cpu[ours], cpu[peer])]
        if peers:
            best = max(peers, key=lambda n: median(ips[n]))
            ratios[f"{ours} / best torch {precision}"] = ratios[f"{ours} / {best}"]
            cpu_ratios[f"{ours} / best torch {precision}"] = cpu_ratios[f"{ours} / {best}"]
    print("\nratios, per repetition: median [min-max] (wall: images/s; CPU: peer CPU time / ganlib CPU time)")
    targets = {}
    for key in ratios:
        line = f"  {key:48s} wall {spread(ratios[key])}   CPU {spread(cpu_ratios[key])}"
        if "best torch" in key:
            targets[key] = median(ratios[key]) >= 1.0
            line += f"   target >= 1.0: {'MET' if targets[key] else 'MISSED'}"
        print(line)
    save_json(args.json, {"benchmark": "torch", "machine": machine(), "torch": torch_info.get("torch"),
                          "reps": args.reps, "steps": args.steps, "quick": args.quick, "table": rows,
                          "images_per_second": ips, "ratios": ratios, "cpu_time_ratios": cpu_ratios,
                          "targets_met": targets, "failed": failed, "load_average": [load_before, load_after]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
