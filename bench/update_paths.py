"""Whole fits with and without a path of the update, side by side in one process: the
figures behind train.pyx's deferred SGD (plain SGD updating W inside the weight-gradient
product) and dense.pyx's MK_MAX_WORK (how large a product the register-blocked kernels
take).

    python bench/update_paths.py [--switch deferral|micro-work] [--rounds R] SPEC ...

SPEC is WIDTHxBATCH (a 10-w-w-1 ReLU network, MSE, SGD) or "wide" (784-512-512-10 at
batch 128). Each round times the fit with the path off, then on (each run about 0.25 s
after an untimed one); the line per SPEC gives the medians (µs per update) and the median
of the rounds' ratios off/on, with their range. --switch deferral turns
train.set_deferred_sgd off and on; micro-work sets the register-blocked kernels' most
work per product to 4 M (off) and 3 M (on). Run with
`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` as the benchmarks are.
"""
import argparse
import time

import numpy as np

import fastdense as fd
from fastdense._core import dense, train


def switch_deferral(on):
    train.set_deferred_sgd(on)


def switch_micro_work(on):
    dense.set_micro_max_work((3 << 20) if on else (1 << 22))


SWITCHES = {"deferral": switch_deferral, "micro-work": switch_micro_work}


def workload(spec):
    """(model, x, y, batch) for SPEC."""
    if spec == "wide":
        sizes, batch = [784, 512, 512, 10], 128
    else:
        width, batch = (int(v) for v in spec.split("x"))
        sizes = [10, width, width, 1]
    rng = np.random.default_rng(0)
    n = max(2048, 16 * batch)
    x = rng.standard_normal((n, sizes[0])).astype(np.float32)
    y = (0.1 * rng.standard_normal((n, sizes[-1]))).astype(np.float32)
    layers = [fd.Dense(sizes[1], activation="relu", input_dim=sizes[0])]
    layers += [fd.Dense(u, activation="relu") for u in sizes[2:-1]] + [fd.Dense(sizes[-1])]
    model = fd.Sequential(layers, seed=0)
    model.compile(optimizer=fd.optimizers.SGD(learning_rate=0.001), loss="mse")
    return model, x, y, batch


def per_update(model, x, y, batch, target=0.25):
    """µs per update of a fit lasting about `target` seconds, after an untimed epoch."""
    updates = -(-len(x) // batch)
    start = time.perf_counter()
    model.fit(x, y, epochs=1, batch_size=batch, verbose=0)
    epochs = max(1, int(target / (time.perf_counter() - start)))
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=batch, verbose=0)
    return (time.perf_counter() - start) / (epochs * updates) * 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", nargs="+", metavar="SPEC")
    parser.add_argument("--switch", choices=sorted(SWITCHES), default="deferral")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    switch = SWITCHES[args.switch]
    try:
        for spec in args.specs:
            model, x, y, batch = workload(spec)
            off, on = [], []
            for r in range(args.rounds + 1):
                switch(False)
                t_off = per_update(model, x, y, batch)
                switch(True)
                t_on = per_update(model, x, y, batch)
                if r:                               # the first round warms both up
                    off.append(t_off)
                    on.append(t_on)
            ratios = np.array(off) / np.array(on)
            print(f"{spec:9s} off {np.median(off):10.2f}  on {np.median(on):10.2f} µs/update"
                  f"  off/on {np.median(ratios):.3f} ({ratios.min():.2f}–{ratios.max():.2f})",
                  flush=True)
    finally:
        switch(True)


if __name__ == "__main__":
    main()
