"""Run by tests/test_distributed.py under ``mpiexec -n N python mpi_worker.py CASE OUT``.

Every rank runs CASE; each writes what the test checks to OUT.rank<r>.npz (or prints it).
The data and models are made here from fixed seeds, so the test can rebuild them.
"""
import os
import signal
import sys

import numpy as np

import fastdense as fd
from fastdense import distributed

OPTIMIZERS = {
    "sgd": lambda: fd.optimizers.SGD(learning_rate=0.05),
    "momentum": lambda: fd.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
    "adam": lambda: fd.optimizers.Adam(learning_rate=0.01),
}
N_SAMPLES, N_FEATURES, BATCH = 101, 6, 4
EPOCHS = 6      # 78 updates on 2 ranks, 54 on 3


def data(dtype, classes=0):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES)).astype(dtype)
    if classes:
        y = (np.abs(X[:, 0] * 3 + X[:, 1]) * 2).astype(np.int64) % classes
    else:
        y = (X @ rng.normal(size=(N_FEATURES, 2)) + 0.1 * rng.normal(size=(N_SAMPLES, 2)))
        y = y.astype(dtype)
    return X, y


def model(optimizer, dtype, classes=0, seed=0):
    out = [fd.Dense(classes, activation="softmax")] if classes else [fd.Dense(2)]
    m = fd.Sequential([fd.Dense(9, activation="tanh", input_dim=N_FEATURES),
                       fd.Dense(7, activation="relu", kernel_regularizer=fd.regularizers.L2(1e-3)),
                       *out], dtype=dtype, seed=seed)
    if classes:
        m.compile(optimizer=OPTIMIZERS[optimizer](), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    else:
        m.compile(optimizer=OPTIMIZERS[optimizer](), loss="mse", metrics=["mae"])
    return m


def save(out, mpi, **arrays):
    np.savez(f"{out}.rank{mpi.rank}.npz", **arrays)


def weights_of(m):
    return {f"w{i}": w for i, w in enumerate(m.get_weights())}


def case_equal(mpi, out):
    """50+ updates of each optimizer and dtype, unshuffled, and one shuffled run."""
    results = {}
    for dtype in ("float32", "float64"):
        for name in OPTIMIZERS:
            X, y = data(dtype)
            # rank 0 draws other initial weights: fit must broadcast rank 0's
            m = model(name, dtype, seed=100 + mpi.rank)
            Xl, yl = mpi.shard(X, y)
            h = m.fit(Xl, yl, epochs=EPOCHS, batch_size=BATCH, shuffle=False, verbose=0,
                      distributed=mpi)
            for i, w in enumerate(m.get_weights()):
                results[f"{dtype}_{name}_w{i}"] = w
            results[f"{dtype}_{name}_loss"] = np.array(h.history["loss"])
            results[f"{dtype}_{name}_mae"] = np.array(h.history["mae"])
            results[f"{dtype}_{name}_iterations"] = np.array(m.optimizer.iterations)
    X, y = data("float64")
    m = model("adam", "float64", seed=100)
    h = m.fit(*mpi.shard(X, y), epochs=3, batch_size=BATCH, verbose=0, distributed=mpi)
    for i, w in enumerate(m.get_weights()):
        results[f"shuffled_w{i}"] = w
    save(out, mpi, **results)


def case_classify(mpi, out):
    """Softmax + sparse cross-entropy with accuracy, validation split, EarlyStopping."""
    X, y = data("float32", classes=3)
    m = model("adam", "float32", classes=3)
    stopper = fd.callbacks.EarlyStopping(monitor="val_loss", patience=0, min_delta=10.0)
    h = m.fit(*mpi.shard(X, y), epochs=20, batch_size=BATCH, verbose=0,
              validation_split=0.25, callbacks=[stopper], distributed=mpi)
    save(out, mpi, epochs=np.array(len(h.history["loss"])),
         **{k: np.array(v) for k, v in h.history.items()}, **weights_of(m))


def case_stop_one_rank(mpi, out):
    """Only the last rank's callback asks to stop, after epoch 1: every rank stops there."""
    class StopOnLastRank(fd.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1 and mpi.rank == mpi.size - 1:
                self.model.stop_training = True

    X, y = data("float64")
    m = model("sgd", "float64")
    h = m.fit(*mpi.shard(X, y), epochs=10, batch_size=BATCH, verbose=0,
              callbacks=[StopOnLastRank()], distributed=mpi)
    save(out, mpi, epochs=np.array(len(h.history["loss"])), **weights_of(m))


def case_diverge(mpi, out):
    """A learning rate that overflows: every rank stops before the same update."""
    X, y = data("float32")
    X = X * 1e3
    m = model("sgd", "float32")
    m.compile(optimizer=fd.optimizers.SGD(learning_rate=1e6), loss="mse")
    try:
        m.fit(*mpi.shard(X, y), epochs=5, batch_size=BATCH, verbose=0, distributed=mpi)
        raise SystemExit("did not diverge")
    except fd.DivergenceError as exc:
        save(out, mpi, iterations=np.array(m.optimizer.iterations),
             finite=np.array(all(np.isfinite(w).all() for w in m.get_weights())),
             message=np.array(str(exc)))


def case_bad_input(mpi, out):
    """The last rank passes labels out of range: each rank raises, nobody waits."""
    X, y = data("float32", classes=3)
    Xl, yl = mpi.shard(X, y)
    if mpi.rank == mpi.size - 1:
        yl = yl.copy()
        yl[0] = 5
    m = model("sgd", "float32", classes=3)
    before = m.get_weights()
    try:
        m.fit(Xl, yl, epochs=2, batch_size=BATCH, verbose=0, distributed=mpi)
        raise SystemExit("no error")
    except (ValueError, RuntimeError) as exc:
        unchanged = all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
        save(out, mpi, kind=np.array(type(exc).__name__), message=np.array(str(exc)),
             unchanged=np.array(unchanged))


def case_save(mpi, out):
    """save from rank 0 only, then load_model on every rank."""
    X, y = data("float32")
    m = model("adam", "float32")
    m.fit(*mpi.shard(X, y), epochs=2, batch_size=BATCH, verbose=0, distributed=mpi)
    path = f"{out}.model.npz"
    m.save(path)
    mpi.barrier()
    loaded = fd.load_model(path)
    same = all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), m.get_weights()))
    save(out, mpi, same=np.array(same), predict=loaded.predict(X))


def case_kill(mpi, out):
    """The last rank dies (SIGKILL) in the middle of training."""
    class Die(fd.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1 and mpi.rank == mpi.size - 1:
                os.kill(os.getpid(), signal.SIGKILL)

    X, y = data("float32")
    model("sgd", "float32").fit(*mpi.shard(X, y), epochs=1000, batch_size=BATCH,
                                verbose=0, callbacks=[Die()], distributed=mpi)


def case_raise(mpi, out):
    """The last rank's callback raises in the middle of training."""
    class Fail(fd.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1 and mpi.rank == mpi.size - 1:
                raise ArithmeticError("callback failed on purpose")

    X, y = data("float32")
    model("sgd", "float32").fit(*mpi.shard(X, y), epochs=1000, batch_size=BATCH,
                                verbose=0, callbacks=[Fail()], distributed=mpi)


def case_gil(mpi, out):
    """fit's all-reduce releases the GIL: while rank 0 waits in it for a late rank, another
    Python thread of rank 0 keeps running."""
    import threading
    import time

    X, y = data("float32")
    m = model("sgd", "float32")
    stamps, stop = [], [False]

    def spin():            # a time stamp every 1000 turns of a pure-Python loop
        i = 0
        while not stop[0]:
            i += 1
            if i % 1000 == 0:
                stamps.append(time.perf_counter())

    class Late(fd.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if mpi.rank == 1:
                time.sleep(0.5)    # rank 0 reaches the first all-reduce half a second early

    thread = threading.Thread(target=spin)
    if mpi.rank == 0:
        thread.start()
    t0 = time.perf_counter()
    m.fit(*mpi.shard(X, y), epochs=1, batch_size=BATCH, verbose=0, callbacks=[Late()],
          distributed=mpi)
    elapsed = time.perf_counter() - t0
    stop[0] = True
    if mpi.rank == 0:
        thread.join()
    # stamps while rank 0 waited in the first all-reduce (well inside the half second)
    inside = sum(t0 + 0.1 <= t <= t0 + 0.4 for t in stamps)
    save(out, mpi, inside=np.array(inside), elapsed=np.array(elapsed))


def case_uncaught(mpi, out):
    """An uncaught exception outside fit, on the last rank only, while the others wait in
    a collective."""
    if mpi.rank == mpi.size - 1:
        raise LookupError("uncaught on purpose")
    mpi.barrier()


if __name__ == "__main__":
    case, out = sys.argv[1], sys.argv[2]
    globals()[f"case_{case}"](distributed.MPI(), out)
