"""The command line: ``fastdense COMMAND`` (the script) and ``python -m fastdense COMMAND``
(``fastdense/__main__.py`` calls `main`).

``demo``     the classic network on the bundled diabetes data, compiled against the reference;
``bench``    the benchmark suite (``fastdense.benchmarks.main``);
``train``    a network on a CSV file: standardise, train with a progress bar, report, save;
             a regression (MSE) or a classification (sigmoid or softmax and cross-entropy,
             reported as accuracy and a confusion matrix), ``--task auto`` choosing;
``predict``  a saved network's predictions for a CSV file (a classifier's labels, and
             with ``--proba`` its class probabilities);
``export``   a saved network as an ONNX file (``fastdense.interop.cli``).

Problems with the user's input (a missing file or column, non-numeric data) are reported as
one line on stderr with exit status 1; bad options exit with argparse's usage message and
status 2.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from .callbacks import Callback, _format_value

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


def _layer_sizes(text):
    """``"64,64"`` → ``[64, 64]``; ``"none"`` or ``""`` → ``[]`` (a linear model)."""
    if text.strip().lower() in ("", "none"):
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected widths separated by commas such as 64,64, got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"layer widths must be positive, got {text!r}")
    return sizes


def _split_fraction(text):
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1), got {text}")
    return value


# --task auto classifies a target of integers with at most this many distinct values
AUTO_MAX_CLASSES = 20

# the --optimizer names and their classes in fastdense.optimizers
OPTIMIZERS = {"adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop", "adamw": "AdamW",
              "adagrad": "Adagrad"}

EPILOG = """\
examples:
  fastdense demo
  fastdense train data.csv --target price --layers 64,64 --epochs 200 --out price.npz
  fastdense predict price.npz new.csv --out predictions.csv
  fastdense export price.npz price.onnx
  fastdense bench -h

'fastdense COMMAND -h' documents each command's options."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastdense", description="fastdense: dense neural networks trained on the CPU.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
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

    # listed for the help text; main() hands everything after "bench" to the suite
    commands.add_parser(
        "bench", add_help=False,
        help="time fastdense against the NumPy reference on the benchmark workloads "
             "(bench -h for its options)")

    train = commands.add_parser(
        "train", help="train a network on a CSV file and save it",
        description="Read DATA (a CSV file with a header line; every column but the target "
                    "is a feature and must be numeric), hold out a random validation part, "
                    "standardise the features (and a regression's target) with the training "
                    "part's mean and standard deviation, train a dense network with a "
                    "progress bar (tqdm if installed), report how well it fits, and save the "
                    "model with its standardisation statistics. Regression: MSE loss, the "
                    "training and validation MSE printed. Classification: the labels (text "
                    "or numbers) become classes 0..K-1 in sorted order; two classes get one "
                    "sigmoid output and binary cross-entropy, more get a softmax and sparse "
                    "categorical cross-entropy; the training and validation accuracy and a "
                    "confusion matrix are printed.",
        epilog="The model is written by model.save(OUT) (one .npz); the statistics (and a "
               "classifier's class labels) go beside it, in OUT with .npz replaced by "
               ".scaling.json, and 'fastdense predict' reads both. The MSE is printed in the "
               "target's units and on the standardised scale the network was trained on. "
               f"--task auto classifies when the target holds text, or integers only with "
               f"at most {AUTO_MAX_CLASSES} distinct values, and regresses otherwise; it says "
               f"which it chose and why.")
    train.add_argument("data", metavar="DATA.csv", help="training data: CSV with a header line")
    train.add_argument("--target", required=True, metavar="COL",
                       help="the column to predict (required)")
    train.add_argument("--task", choices=("auto", "regress", "classify"), default="auto",
                       help="regression or classification (default: auto: classify a "
                            "target of text, or of integers with at most "
                            f"{AUTO_MAX_CLASSES} distinct values; regress otherwise)")
    train.add_argument("--layers", type=_layer_sizes, default=[64, 64], metavar="W1,W2,...",
                       help="hidden layer widths (default: 64,64; 'none' for a linear model)")
    train.add_argument("--activation", choices=("relu", "linear"), default="relu",
                       help="the hidden layers' activation (default: relu)")
    train.add_argument("--optimizer", choices=list(OPTIMIZERS),
                       default="adam", help="update rule (default: adam)")
    train.add_argument("--lr", type=_positive_float, default=None,
                       help="learning rate (default: the optimizer's: 0.001 for adam, "
                            "0.01 for sgd)")
    train.add_argument("--epochs", type=_positive_int, default=100,
                       help="passes over the training part (default: 100)")
    train.add_argument("--batch-size", type=_positive_int, default=32,
                       help="samples per update (default: 32)")
    train.add_argument("--validation-split", type=_split_fraction, default=0.2, metavar="F",
                       help="fraction of the rows, drawn at random, held out for validation "
                            "(default: 0.2; 0 for none)")
    train.add_argument("--seed", type=int, default=0,
                       help="seeds the split, the weights and the shuffles (default: 0)")
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                       help="precision of the weights and the arithmetic (default: float32)")
    train.add_argument("--out", default="model.npz", metavar="MODEL.npz",
                       help="where to save the model (default: model.npz)")
    train.add_argument("--no-save", action="store_true", help="do not save the model")
    train.add_argument("--plot", metavar="LOSS.png",
                       help="draw the training and validation loss per epoch (and a "
                            "classifier's accuracy beside it) to this image (needs "
                            "matplotlib)")
    train.set_defaults(run=run_train)

    predict = commands.add_parser(
        "predict", help="predict with a saved model",
        description="Load MODEL (saved by 'fastdense train') and its standardisation "
                    "statistics, read the model's feature columns by name from DATA (a CSV "
                    "file with a header line; other columns are ignored), and write one "
                    "prediction per row, in the target's units (a classifier: the predicted "
                    "label, as it was written in the training data), as CSV under the "
                    "target's name.")
    predict.add_argument("model", metavar="MODEL.npz", help="a model saved by 'fastdense train'")
    predict.add_argument("data", metavar="DATA.csv", help="CSV with a header line")
    predict.add_argument("--out", metavar="PREDS.csv",
                         help="write the predictions here (default: standard output)")
    predict.add_argument("--proba", action="store_true",
                         help="a classifier only: also write each class's probability, in a "
                              "column p_<class> per class")
    predict.set_defaults(run=run_predict)

    from .interop import add_export_parser
    add_export_parser(commands)   # fastdense export MODEL.npz MODEL.onnx [--opset N]
    return parser


class CommandError(Exception):
    """A problem with the user's input or environment: one line on stderr, exit status 1."""


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        return run_bench(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CommandError as exc:
        print(f"fastdense {args.command}: error: {exc}", file=sys.stderr)
        return 1


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



# ---------------------------------------------------------------------------- bench
def run_bench(argv) -> int:
    """``bench``: everything after the word goes to ``fastdense.benchmarks.main``."""
    try:
        benchmarks = importlib.import_module(f"{__package__}.benchmarks")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.benchmarks":
            raise
        if "-h" in argv or "--help" in argv:
            print("usage: fastdense bench [options]\n\nTime fastdense against the NumPy "
                  "reference on the benchmark workloads (fastdense.benchmarks).")
        print("fastdense bench: error: the benchmark suite (module fastdense.benchmarks) is "
              "not part of this installation", file=sys.stderr)
        return 1
    return benchmarks.main(argv)


# ---------------------------------------------------------------------------- CSV
def read_csv(path, columns=None):
    """``(header, values)`` of a CSV file with a header line: ``values`` float64 of shape
    (rows, len(columns)), the named columns in that order (default: all of them).

    Blank lines are skipped. A missing file or column, a row of the wrong length, an
    empty or non-numeric cell, NaN or Inf raise CommandError naming the file, line and
    column."""
    table = read_table(path)
    return table.header, table.numeric(header_columns(table, columns))


class Table:
    """A CSV file's header, its data rows as text (blank lines left out) and each row's
    line number in the file."""

    def __init__(self, path: Path, header: list, rows: list, lines: list):
        self.path, self.header, self.rows, self.lines = path, header, rows, lines

    def cells(self, name: str) -> list:
        """The column ``name``'s cells, stripped of surrounding blanks."""
        k = self.header.index(name)
        return [row[k].strip() for row in self.rows]

    def numeric(self, columns) -> np.ndarray:
        """The named columns as float64, shape (rows, len(columns)); a non-numeric or
        non-finite cell raises CommandError naming its line and column."""
        values = np.empty((len(self.rows), len(columns)))
        for j, name in enumerate(columns):
            k = self.header.index(name)
            cells = [row[k] for row in self.rows]
            try:
                values[:, j] = np.array(cells).astype(np.float64)
            except ValueError:
                i = next(i for i, cell in enumerate(cells) if not _is_number(cell))
                raise CommandError(f"{self.path}, line {self.lines[i]}, column {name!r}: "
                                   f"{cells[i]!r} is not a number (every feature and the "
                                   f"target must be numeric)") from None
            bad = ~np.isfinite(values[:, j])
            if bad.any():
                i = int(np.argmax(bad))
                raise CommandError(f"{self.path}, line {self.lines[i]}, column {name!r}: "
                                   f"{cells[i]!r} is not a finite number")
        return values


def read_table(path) -> Table:
    """Read a CSV file with a header line as text. A missing or unreadable file, a row of
    the wrong length, a repeated column name, no header or no data rows raise
    CommandError."""
    path = Path(path)
    if not path.is_file():
        raise CommandError(f"no such file: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [name.strip() for name in next(reader, [])]
            rows, lines = [], []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise CommandError(f"{path}, line {reader.line_num}: {len(row)} "
                                       f"field(s), the header has {len(header)}")
                rows.append(row)
                lines.append(reader.line_num)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from None
    if not header:
        raise CommandError(f"{path} is empty: expected a header line of column names")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise CommandError(f"{path}: column name(s) {', '.join(map(repr, duplicated))} "
                           f"appear more than once in the header")
    if not rows:
        raise CommandError(f"{path} has a header line but no data rows")
    return Table(path, header, rows, lines)


def header_columns(table: Table, columns=None) -> list:
    """``columns`` (default: the whole header), each checked to be in the table."""
    columns = table.header if columns is None else list(columns)
    missing = [name for name in columns if name not in table.header]
    if missing:
        raise CommandError(f"{table.path} has no column {', '.join(map(repr, missing))}; its "
                           f"columns: {', '.join(table.header)}")
    return columns


def _is_number(text) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------- progress
class _LineBar:
    """``Epoch 12/100 [=====>      ] loss: 0.4123 - val_loss: 0.5012`` on one line of
    stderr, redrawn in place with ``\\r`` (at most ten times a second, and at the end)."""

    def __init__(self, total: int, stream=None, width: int = 24):
        self.total, self.width = total, width
        self.stream = sys.stderr if stream is None else stream
        self.done, self.last_draw = 0, 0.0

    def update(self, logs: dict) -> None:
        self.done += 1
        now = time.monotonic()
        if self.done < self.total and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        filled = self.width * self.done // self.total
        bar = "=" * filled + (">" if filled < self.width else "") \
            + " " * (self.width - filled - 1)
        metrics = " - ".join(f"{k}: {_format_value(val)}" for k, val in logs.items())
        self.stream.write(f"\rEpoch {self.done}/{self.total} [{bar}] {metrics}")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


class _TqdmBar:
    """The same interface over tqdm."""

    def __init__(self, total: int):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="epoch", file=sys.stderr, desc="Epoch")

    def update(self, logs: dict) -> None:
        self.bar.set_postfix({k: f"{val:.4g}" for k, val in logs.items()}, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def progress_bar(total: int):
    """tqdm's bar if tqdm is installed, else the built-in one-line bar."""
    try:
        importlib.import_module("tqdm")
    except ImportError:
        return _LineBar(total)
    return _TqdmBar(total)


# ---------------------------------------------------------------------------- train
def scaling_path(model_path) -> Path:
    """Where the standardisation statistics of the model at ``model_path`` live:
    ``model.npz`` → ``model.scaling.json``."""
    path = Path(model_path)
    stem = path.name[:-4] if path.name.endswith(".npz") else path.name
    return path.with_name(stem + ".scaling.json")


def _require_matplotlib() -> None:
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        raise CommandError("--plot needs matplotlib: pip install matplotlib") from None


# Set by MPI launchers for each rank: MPICH's Hydra and Slurm's PMI (PMI_SIZE), Open MPI,
# MVAPICH
_MPI_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def _mpi_launch():
    """A fastdense.distributed.MPI when this process is one of several ranks that an MPI
    launcher started (``mpiexec -n 2 fastdense train ...``), else None."""
    sizes = [os.environ.get(name, "") for name in _MPI_SIZE_VARIABLES]
    if not any(size.isdigit() and int(size) > 1 for size in sizes):
        return None
    try:
        from .distributed import MPI
        return MPI()
    except ImportError as exc:
        raise CommandError(f"started as one of several MPI ranks, but {exc}") from None


def run_train(args) -> int:
    """The ``train`` subcommand (data-parallel when started by ``mpiexec -n N``)."""
    dist = _mpi_launch()
    if dist is None or dist.rank == 0:
        return _run_train(args, dist)
    # the same run, printing and writing nothing (its errors still reach stderr: main
    # prints them once this returns)
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), \
            contextlib.redirect_stderr(quiet):
        return _run_train(args, dist)


def _run_train(args, dist) -> int:
    import fastdense as fd

    # every check that can fail runs before training does
    table = read_table(args.data)
    header = table.header
    if args.target not in header:
        raise CommandError(f"{args.data} has no column {args.target!r}; its columns: "
                           f"{', '.join(header)}")
    if len(header) < 2:
        raise CommandError(f"{args.data} has no feature columns besides the target "
                           f"{args.target!r}")
    if args.plot:
        _require_matplotlib()
    for option, path in (("--out", None if args.no_save else args.out), ("--plot", args.plot)):
        if path is not None and not Path(path).resolve().parent.is_dir():
            raise CommandError(f"{option} {path}: the directory {Path(path).parent} does "
                               f"not exist")
    features = [name for name in header if name != args.target]
    task, reason = choose_task(args.task, table.cells(args.target), args.target)
    classes: list | None = None
    if task == "regress":
        values = table.numeric(header)
        X = values[:, [header.index(name) for name in features]]
        y = values[:, [header.index(args.target)]]
    else:
        X = table.numeric(features)
        classes, labels = class_labels(table, args.target)
        check_classes(args, classes, labels)
    n = len(X)
    n_val = int(np.ceil(args.validation_split * n)) if args.validation_split else 0
    if n_val and n - n_val < 1:
        raise CommandError(f"--validation-split {args.validation_split:g} leaves no training "
                           f"rows out of {n}")
    order = np.random.default_rng(args.seed).permutation(n)
    val_rows, train_rows = order[:n_val], order[n_val:]

    x_mean, x_std = _statistics(X[train_rows])
    Xs = (X - x_mean) / x_std
    if classes is None:
        y_mean, y_std = _statistics(y[train_rows])
        ys = (y - y_mean) / y_std
        n_out, head, loss = 1, None, "mse"
    else:
        check_training_classes(args, classes, labels[train_rows])
        ys = labels.reshape(-1, 1).astype(np.float64)
        n_out, head, loss = ((1, "sigmoid", "binary_crossentropy") if len(classes) == 2 else
                             (len(classes), "softmax", "sparse_categorical_crossentropy"))
        # the target is not standardised: the identity, so 'fastdense export' needs no case
        y_mean, y_std = np.zeros(n_out), np.ones(n_out)
    X_train, y_train = Xs[train_rows], ys[train_rows]
    validation = (Xs[val_rows], ys[val_rows]) if n_val else None

    widths = args.layers + [n_out]
    activations = [args.activation] * len(args.layers) + [head]
    model = fd.Sequential(
        [fd.Dense(w, activation=a, input_dim=int(X.shape[1]) if i == 0 else None)
         for i, (w, a) in enumerate(zip(widths, activations))],
        dtype=args.dtype, seed=args.seed)
    rule = getattr(fd.optimizers, OPTIMIZERS[args.optimizer])
    optimizer = rule() if args.lr is None else rule(learning_rate=args.lr)
    model.compile(optimizer=optimizer, loss=loss,
                  metrics=None if classes is None else ["accuracy"])

    shape = " → ".join([str(X.shape[1])] + [f"{w} {args.activation}" for w in args.layers]
                       + ([f"{n_out}"] if head is None else [f"{n_out} {head}"]))
    what = "" if classes is None else f" ({len(classes)} classes)"
    print(f"fastdense train: {args.data}: {n} rows, {len(features)} features, target "
          f"{args.target!r}{what}; {n - n_val} training / {n_val} validation rows")
    if reason:
        other = "regress" if task == "classify" else "classify"
        print(f"task: {'classification' if task == 'classify' else 'regression'} "
              f"(auto-detected: {reason}; --task {other} to override)")
    print(f"network {shape}{'' if classes is None else ', ' + loss}; {args.optimizer} "
          f"lr={optimizer.learning_rate:g}, batch {args.batch_size}, {args.epochs} epochs, "
          f"{args.dtype}, seed {args.seed}", flush=True)
    if dist is not None:
        # every rank read the whole file and made the same split and statistics; each
        # trains on its share of the training rows and validates on its share of the rest
        print(f"data-parallel on {dist.size} MPI ranks: batch {args.batch_size} per rank, "
              f"{dist.size * args.batch_size} per update", flush=True)
        X_train, y_train = dist.shard(X_train, y_train)
        if validation is not None:
            validation = dist.shard(*validation)

    bar = progress_bar(args.epochs)
    try:
        history = model.fit(X_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                            validation_data=validation, verbose=0,
                            callbacks=[_BarCallback(bar)], distributed=dist)
    except fd.DivergenceError as exc:
        raise CommandError(str(exc)) from None
    except (ValueError, RuntimeError) as exc:
        if dist is None:
            raise
        raise CommandError(f"rank {dist.rank}: {exc}") from None
    finally:
        bar.close()

    if classes is None:
        def report(label, rows):
            mse = model.evaluate(Xs[rows], ys[rows])
            print(f"{label:<16}{mse * y_std[0] ** 2:.6g} (standardised: {mse:.4f})")

        print(f"MSE in the units of {args.target!r}²:")
        report("  training", train_rows)
        if n_val:
            report("  validation", val_rows)
    else:
        report_classification(model, Xs, ys, labels, classes,
                              [("training", train_rows)]
                              + ([("validation", val_rows)] if n_val else []))

    if not args.no_save:
        side = scaling_path(args.out)
        statistics = {"format": "fastdense-scaling", "version": 1,
                      "features": features, "target": args.target,
                      "x_mean": x_mean.tolist(), "x_std": x_std.tolist(),
                      "y_mean": y_mean.tolist(), "y_std": y_std.tolist()}
        if classes is not None:
            # version 2: a classifier, which predict of version 1 would not understand
            statistics.update(version=2, task="classify", classes=classes)
        try:
            model.save(args.out)            # from rank 0 only when data-parallel
            if dist is None or dist.rank == 0:
                side.write_text(json.dumps(statistics, indent=1) + "\n")
        except OSError as exc:
            raise CommandError(f"cannot save the model: {exc}") from None
        print(f"saved {args.out} (the network) and {side} (its standardisation statistics"
              f"{'' if classes is None else ' and class labels'})")
    if args.plot and (dist is None or dist.rank == 0):
        if classes is None:
            _plot_losses(history.history, args.plot)
            print(f"loss curve: {args.plot}")
        else:
            _plot_classification(history.history, args.plot, loss)
            print(f"loss and accuracy curves: {args.plot}")
    return 0


def choose_task(requested: str, cells: list, target: str) -> tuple:
    """``(task, reason)``: ``requested`` ("regress" or "classify") with an empty reason,
    or for "auto": "classify" when the target's cells hold text (a non-empty cell that is
    not a number) or integers only with at most AUTO_MAX_CLASSES distinct values,
    "regress" otherwise; ``reason`` says why, for the user."""
    if requested != "auto":
        return requested, ""
    values = [cell for cell in cells if cell]
    text = next((cell for cell in values if not _is_number(cell)), None)
    if text is not None:
        return "classify", f"{target!r} holds text such as {text!r}"
    if not values:     # only empty cells: the regression path names the first one
        return "regress", f"{target!r} holds no values"
    numbers = np.array(values).astype(np.float64)
    integral = np.isfinite(numbers) & (numbers == np.round(numbers))
    if not integral.all():
        example = values[int(np.argmin(integral))]
        return "regress", f"{target!r} holds numbers that are not integers, such as {example!r}"
    distinct = len(np.unique(numbers))
    if distinct <= AUTO_MAX_CLASSES:
        return "classify", (f"{target!r} holds integers only, {distinct} distinct value"
                            f"{'s' if distinct > 1 else ''} (at most {AUTO_MAX_CLASSES})")
    return "regress", (f"{target!r} holds {distinct} distinct integers (more than "
                       f"{AUTO_MAX_CLASSES})")


def class_labels(table: Table, target: str) -> tuple:
    """``(classes, labels)``: the target column's distinct labels, sorted, and each row's
    index into them. When every cell is a number, the labels are numbers (integral ones
    as ``int``, so ``1`` and ``1.0`` are one class); otherwise they are the cells' text.
    An empty cell, NaN or Inf raise CommandError."""
    cells = table.cells(target)
    for cell, line in zip(cells, table.lines):
        if not cell:
            raise CommandError(f"{table.path}, line {line}, column {target!r}: empty label "
                               f"(every row needs a class)")
    keys: list
    if all(_is_number(cell) for cell in cells):
        numbers = table.numeric([target])[:, 0]
        keys = [int(v) if v.is_integer() else v for v in numbers.tolist()]
    else:
        keys = cells
    classes = sorted(set(keys))
    index = {label: k for k, label in enumerate(classes)}
    return classes, np.array([index[key] for key in keys], dtype=np.intp)


def label_text(label) -> str:
    """A class label as written in the predictions: text as it is, numbers as Python
    writes them (``3``, ``2.5``)."""
    return label if isinstance(label, str) else repr(label)


def _some_labels(labels: list, limit: int = 5) -> str:
    shown = ", ".join(repr(label_text(label)) for label in labels[:limit])
    return shown + (f" and {len(labels) - limit} more" if len(labels) > limit else "")


def check_classes(args, classes: list, labels) -> None:
    """At least two classes, each with two rows or more."""
    if len(classes) < 2:
        raise CommandError(f"{args.data}: the target {args.target!r} has one class only "
                           f"({label_text(classes[0])!r}); classification needs two or more")
    counts = np.bincount(labels, minlength=len(classes))
    single = [classes[k] for k in np.flatnonzero(counts == 1)]
    if single:
        raise CommandError(f"{args.data}: {len(single)} of the {len(classes)} classes of "
                           f"{args.target!r} {'has' if len(single) == 1 else 'have'} one row "
                           f"only ({_some_labels(single)}); every "
                           f"class needs two rows or more (is {args.target!r} an identifier "
                           f"or a quantity to regress?)")


def check_training_classes(args, classes: list, train_labels) -> None:
    """Every class has a row in the training part."""
    counts = np.bincount(train_labels, minlength=len(classes))
    absent = [classes[k] for k in np.flatnonzero(counts == 0)]
    if absent:
        raise CommandError(f"{args.data}: class(es) {_some_labels(absent)} of {args.target!r} "
                           f"{'has' if len(absent) == 1 else 'have'} no row in the training "
                           f"part; use a smaller "
                           f"--validation-split or another --seed")


def predicted_classes(outputs) -> np.ndarray:
    """Class indices from a classifier's outputs: one sigmoid unit → p > 0.5 (the second
    class), as the accuracy metric decides; a softmax → the most probable class (the first
    of equals)."""
    outputs = np.asarray(outputs)
    if outputs.shape[1] == 1:
        return (outputs[:, 0] > 0.5).astype(np.intp)
    return np.argmax(outputs, axis=1)


def class_probabilities(outputs) -> np.ndarray:
    """Every class's probability, float64, shape (rows, classes): a sigmoid unit's p is
    the second class's, 1 - p the first's."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.shape[1] == 1:
        return np.column_stack([1.0 - outputs[:, 0], outputs[:, 0]])
    return outputs


def confusion_matrix(true, predicted, n_classes: int) -> np.ndarray:
    """``m[i, j]``: the rows of true class i predicted as class j."""
    return np.bincount(np.asarray(true) * n_classes + np.asarray(predicted),
                       minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def format_confusion(names: list, matrix) -> str:
    """The matrix as text: a header line of the predicted classes' names, then one line
    per true class, its name first."""
    left = max(len(name) for name in names)
    width = max(max(len(name) for name in names), len(str(int(matrix.max()))))
    lines = [" " * (left + 2) + "".join(f"  {name:>{width}}" for name in names)]
    for name, row in zip(names, matrix):
        lines.append(f"  {name:<{left}}" + "".join(f"  {int(count):>{width}}" for count in row))
    return "\n".join(lines)


def report_classification(model, Xs, ys, labels, classes: list, parts: list) -> None:
    """Print each part's accuracy and loss, then the confusion matrix of the last part
    (the validation rows when there are some)."""
    print("accuracy:")
    matrix = None
    for label, rows in parts:
        predicted = predicted_classes(model.predict(Xs[rows]))
        loss = model.evaluate(Xs[rows], ys[rows])[0]
        matrix = confusion_matrix(labels[rows], predicted, len(classes))
        correct = int(np.trace(matrix))
        print(f"  {label:<14}{correct / len(rows):.4f} ({correct} of {len(rows)} rows), "
              f"loss {loss:.4f}")
    print(f"confusion matrix of the {parts[-1][0]} rows (rows: true class, columns: "
          f"predicted class):")
    print(format_confusion([label_text(c) for c in classes], matrix))


def _statistics(a):
    """Column means and standard deviations (constant columns: 1, so they are only
    centred), as in ``fastdense.datasets.standardize``."""
    std = a.std(axis=0)
    return a.mean(axis=0), np.where(std > 0, std, 1.0)


class _BarCallback(Callback):
    """Feeds each epoch's logs to a progress bar."""

    def __init__(self, bar):
        super().__init__()
        self.bar = bar

    def on_epoch_end(self, epoch, logs=None):
        self.bar.update(logs)


def _plot_losses(losses: dict, path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    epochs = np.arange(1, len(losses["loss"]) + 1)
    ax.plot(epochs, losses["loss"], label="training")
    if losses.get("val_loss"):
        ax.plot(epochs, losses["val_loss"], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (standardised target)")
    ax.set_yscale("log")
    ax.legend()
    _save_figure(fig, path)


def _plot_classification(history: dict, path, loss: str) -> None:
    """Two panels side by side: the loss and the accuracy per epoch, training and
    validation."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key, ylabel in ((loss_ax, "loss", loss), (acc_ax, "accuracy", "accuracy")):
        ax.plot(epochs, history[key], label="training")
        if history.get("val_" + key):
            ax.plot(epochs, history["val_" + key], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.legend()
    loss_ax.set_yscale("log")
    acc_ax.set_ylim(0, 1.02)
    _save_figure(fig, path)


def _save_figure(fig, path) -> None:
    try:
        fig.savefig(path)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot write the plot {path}: {exc}") from None


# ---------------------------------------------------------------------------- predict
def run_predict(args) -> int:
    """The ``predict`` subcommand."""
    import fastdense as fd

    if not Path(args.model).is_file():
        raise CommandError(f"no such file: {args.model}")
    side = scaling_path(args.model)
    if not side.is_file():
        raise CommandError(f"{args.model} has no standardisation statistics beside it "
                           f"({side} is missing): was it saved by 'fastdense train'?")
    try:
        scaling = json.loads(side.read_text())
        features, target = list(scaling["features"]), str(scaling["target"])
        x_mean, x_std, y_mean, y_std = (np.asarray(scaling[key], dtype=np.float64)
                                        for key in ("x_mean", "x_std", "y_mean", "y_std"))
        classes = saved_classes(scaling)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CommandError(f"cannot read the standardisation statistics {side}: {exc}") \
            from None
    if args.proba and classes is None:
        raise CommandError(f"--proba needs a classifier; {args.model} is a regression model "
                           f"of {target!r}")
    try:
        model = fd.load_model(args.model)
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if classes is not None:
        n_outputs = 1 if len(classes) == 2 else len(classes)
        if model.layers[-1].units != n_outputs:
            raise CommandError(f"{side} lists {len(classes)} classes, for which the network "
                               f"needs {n_outputs} output(s); {args.model} has "
                               f"{model.layers[-1].units}")
    _, X = read_csv(args.data, columns=features)
    if classes is None:
        predictions = model.predict((X - x_mean) / x_std).astype(np.float64) * y_std + y_mean
        write, what = (lambda f: _write_predictions(f, target, predictions[:, 0])), ""
    else:
        outputs = model.predict((X - x_mean) / x_std)
        labels = [label_text(classes[k]) for k in predicted_classes(outputs)]
        probabilities = class_probabilities(outputs) if args.proba else None
        write = (lambda f: _write_classes(f, target, labels, classes, probabilities))
        what = f" with the probabilities of its {len(classes)} classes" if args.proba else ""

    if args.out is None:
        write(sys.stdout)
        return 0
    try:
        with open(args.out, "w", newline="") as f:
            write(f)
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc.strerror}") from None
    print(f"wrote {len(X)} predictions of {target!r}{what} to {args.out}")
    return 0


def saved_classes(scaling: dict) -> list | None:
    """A classifier's class labels from its statistics, None for a regression model (no
    "task", or "regress"); ValueError when they are not two or more distinct labels."""
    task = scaling.get("task", "regress")
    if task == "regress":
        return None
    if task != "classify":
        raise ValueError(f"unknown task {task!r}")
    classes = scaling["classes"]
    if not isinstance(classes, list) or len(classes) < 2 \
            or any(isinstance(c, bool) or not isinstance(c, (str, int, float)) for c in classes) \
            or len(set(classes)) != len(classes):
        raise ValueError("'classes' must list two or more distinct labels (text or numbers)")
    return classes


def _write_predictions(f, target: str, values) -> None:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow([target])
    writer.writerows([f"{value:.9g}"] for value in values)


def _write_classes(f, target: str, labels: list, classes: list, probabilities) -> None:
    """The predicted labels under the target's name, and with ``probabilities`` (rows ×
    classes) a column ``p_<class>`` per class."""
    writer = csv.writer(f, lineterminator="\n")
    if probabilities is None:
        writer.writerow([target])
        writer.writerows([label] for label in labels)
        return
    writer.writerow([target] + [f"p_{label_text(c)}" for c in classes])
    writer.writerows([label] + [f"{p:.9g}" for p in row]
                     for label, row in zip(labels, probabilities))
