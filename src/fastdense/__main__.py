"""The command line: ``python -m fastdense demo [options]`` (also the ``fastdense`` script)."""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

# the classic regression network: 10 inputs → 10 ReLU → 10 ReLU → 1 linear
DEMO_ARCHITECTURE = [(10, "relu"), (10, "relu"), (1, "linear")]


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastdense", description="fastdense: dense neural networks trained on the CPU.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = commands.add_parser(
        "demo", help="train the 10-10-10-1 network on the bundled diabetes data",
        description="Train the classic 10-10-10-1 regression network (ReLU, ReLU, linear; "
                    "MSE; SGD) on the bundled diabetes data, once compiled and once with the "
                    "NumPy reference from the same seed, and compare test error and time.")
    demo.add_argument("--epochs", type=_positive_int, default=200)
    demo.add_argument("--batch-size", type=_positive_int, default=32)
    demo.add_argument("--lr", type=_positive_float, default=0.01, help="SGD learning rate")
    demo.add_argument("--seed", type=int, default=0,
                      help="seeds the weights, the shuffles and the train/test split")
    demo.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    demo.add_argument("--verbose", type=int, choices=(0, 1), default=0,
                      help="1: show every epoch (default: about ten lines)")
    demo.set_defaults(run=run_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


def demo_data(seed: int):
    """Diabetes split 80/20 by ``seed``; features and target standardised with the
    training part's statistics. Returns ``(X_train, X_test, y_train, y_test)``."""
    from .datasets import load_diabetes, standardize, train_test_split

    X, y = load_diabetes()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=seed)
    X_train, X_test = standardize(X_train, X_test)
    y_train, y_test = standardize(y_train, y_test)
    return X_train, X_test, y_train, y_test


def train_demo_model(module, data, args):
    """Build, compile and fit the demo network with ``module`` (``fastdense`` or
    ``fastdense.reference``). Returns ``(model, history, fit_seconds)``."""
    X_train, _, y_train, _ = data
    layers = [module.Dense(units, activation=act, **({"input_dim": X_train.shape[1]}
                                                     if i == 0 else {}))
              for i, (units, act) in enumerate(DEMO_ARCHITECTURE)]
    model = module.Sequential(layers, dtype=args.dtype, seed=args.seed)
    model.compile(optimizer=module.optimizers.SGD(learning_rate=args.lr), loss="mse")
    start = time.perf_counter()
    history = model.fit(X_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        shuffle=True, verbose=0)
    return model, history, time.perf_counter() - start


def _print_progress(history, epochs: int, every_epoch: bool) -> None:
    from .callbacks import progress_line

    step = 1 if every_epoch else max(1, epochs // 10)
    for epoch, loss in zip(history.epoch, history.history["loss"]):
        if epoch == 0 or (epoch + 1) % step == 0 or epoch + 1 == epochs:
            print("  " + progress_line(epoch, epochs, {"loss": loss}))


def _format_seconds(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"


def run_demo(args, compiled=None, reference=None) -> int:
    """The ``demo`` subcommand. ``compiled``/``reference`` are the modules providing
    ``Sequential``, ``Dense`` and ``optimizers.SGD`` (default: ``fastdense`` and its reference)."""
    if compiled is None:
        import fastdense as compiled
    if reference is None:
        from fastdense import reference

    data = demo_data(args.seed)
    X_train, X_test, y_train, y_test = data
    n_updates = args.epochs * -(-len(X_train) // args.batch_size)
    print(f"fastdense demo: 10-10-10-1 network (ReLU, ReLU, linear), MSE loss, "
          f"SGD lr={args.lr:g}, batch {args.batch_size}, {args.epochs} epochs "
          f"({n_updates} updates), {args.dtype}, seed {args.seed}")
    print(f"data: diabetes, {len(X_train)} training / {len(X_test)} test samples; "
          f"features and target standardised with the training part's statistics")

    results = {}
    for label, module in (("fastdense", compiled), ("NumPy reference", reference)):
        print(f"\n{label}:")
        model, history, seconds = train_demo_model(module, data, args)
        _print_progress(history, args.epochs, args.verbose == 1)
        results[label] = (model.evaluate(X_test, y_test), seconds,
                          np.asarray(model.predict(X_test), dtype=np.float64))

    baseline = float(np.mean((y_test - y_train.mean()) ** 2))
    (fast_mse, fast_s, fast_pred), (ref_mse, ref_s, ref_pred) = results.values()
    print("\ntest MSE (standardised target):")
    print(f"  fastdense                   {fast_mse:.4f}")
    print(f"  NumPy reference             {ref_mse:.4f}")
    print(f"  predict-the-mean baseline   {baseline:.4f}")
    print(f"  largest difference between the two models' test predictions: "
          f"{np.max(np.abs(fast_pred - ref_pred)):.2e}")
    print("\ntraining time (fit):")
    print(f"  fastdense        {_format_seconds(fast_s)}")
    print(f"  NumPy reference  {_format_seconds(ref_s)}")
    print(f"  speed-up         {ref_s / fast_s:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
