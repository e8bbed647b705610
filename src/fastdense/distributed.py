"""Data-parallel training over MPI: ``model.fit(X, y, distributed=fd.distributed.MPI())``.

Launch one process per rank (``mpiexec -n 4 python train.py``); each rank passes `fit`
its own samples (``MPI().shard(X, y)`` cuts a rank's contiguous share out of arrays every
rank holds, or each rank reads its own file). Needs `mpi4py` (``pip install
"fastdense[mpi]"``, which brings MPICH's wheel; a system MPI works too) and is imported
only here.

What one update does on every rank:

1. the rank's next `batch_size` rows of its shuffled shard (fewer, or none, once its
   shard is used up) go through the compiled forward and backward pass, into one flat
   buffer: the gradient of their mean loss times nᵣ/N (nᵣ the rank's rows in this step,
   N the step's rows over all ranks), then the loss times nᵣ/N, then the metrics' sums;
2. one in-place ``Allreduce`` (sum, the GIL released by mpi4py) of that buffer;
3. the same fused optimizer update from the summed gradient on every rank, or on none
   when it is not finite (the divergence stop, so every rank stops at the same update).

So the summed buffer is the gradient of the mean loss over the step's N rows: N ranks with
batch b each train exactly as one process with batch N·b whose batches are, in turn, rank
0's b rows, rank 1's b rows, … (with `shard`'s balanced shares, the step sizes are one
process's too), up to floating-point rounding: a sum of per-rank partial gradients is not
rounded as one process's single pass is, so the two agree to rounding (within 1e-9
relative in float64 after 54-78 updates of SGD, momentum and Adam: tests/test_distributed.py),
not bitwise; one rank (size 1) is bitwise the ordinary fit. The ranks' weights stay
bitwise identical: they start from rank 0's (broadcast with the optimizer state and the
shuffling generator at the start of each fit) and apply one summed buffer, which MPICH's
reduction gives every rank bit for bit; `fit` checks this at its end (a checksum of the
weights over all ranks) and raises if an MPI library ever breaks it.

Shuffling: each epoch every rank permutes its own rows with a generator of its own, drawn
from the model's generator (the same on every rank) and the rank, so one seed gives one
run for a given number of ranks.

Agreement: the training loss and metrics are the means over all ranks' samples; the
validation loss and metrics are reduced likewise (each rank validates its own validation
rows; `validation_split` holds out the last fraction of each rank's shard); callbacks see
the same logs on every rank, and a stop (a callback's ``model.stop_training``, Ctrl-C,
divergence) is decided by all ranks together at the same update or epoch. A rank that
raises inside `fit` (a callback's exception, for example) aborts the MPI job with its
traceback, rather than leaving the others waiting in a collective; so does any uncaught
exception once an `MPI` object exists (``abort_on_error=False`` turns that hook off).
Invalid input found before training (a wrong shape, labels out of range, a different model
on some rank) raises on every rank: the failing rank its own error, the others a
`RuntimeError` naming it. `model.save` writes from rank 0 only (atomically, as always);
`fd.load_model` works on every rank.
"""
from __future__ import annotations

import math
import sys
import time
import traceback
import zlib
from typing import Any

import numpy as np

_HOOK_INSTALLED: list[bool] = []


def _import_mpi() -> Any:
    try:
        from mpi4py import MPI as mpi
    except ImportError as exc:
        raise ImportError(
            "fastdense.distributed needs mpi4py and an MPI library: "
            "pip install \"fastdense[mpi]\" (mpi4py and MPICH's wheel)") from exc
    return mpi


class MPI:
    """Data-parallel training over an MPI communicator (COMM_WORLD by default).

    ``rank`` and ``size`` are the communicator's; `shard` cuts this rank's share out of
    arrays; pass the object to ``fit(..., distributed=...)``."""

    def __init__(self, comm: Any = None, abort_on_error: bool = True) -> None:
        mpi = _import_mpi()
        self._mpi = mpi
        self.comm = mpi.COMM_WORLD if comm is None else comm
        if not isinstance(self.comm, mpi.Comm):
            raise TypeError(f"comm must be an mpi4py communicator, got {type(comm).__name__}")
        self.rank: int = self.comm.Get_rank()
        self.size: int = self.comm.Get_size()
        if abort_on_error and self.size > 1 and not _HOOK_INSTALLED:
            _install_abort_hook(mpi)
            _HOOK_INSTALLED.append(True)

    def __repr__(self) -> str:
        return f"fastdense.distributed.MPI(rank={self.rank}, size={self.size})"

    # ------------------------------------------------------------------ data
    def shard_range(self, n: int) -> tuple[int, int]:
        """[start, stop) of this rank's rows among n: contiguous shares whose sizes differ
        by at most one (the first n mod size ranks take one more), as np.array_split."""
        n = int(n)
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        q, r = divmod(n, self.size)
        start = self.rank * q + min(self.rank, r)
        return start, start + q + (self.rank < r)

    def shard(self, *arrays: Any) -> Any:
        """This rank's rows of each array (equal lengths), as views where the array allows:
        ``X_local, y_local = mpi.shard(X, y)``. One array gives one array back."""
        if not arrays:
            raise ValueError("shard needs at least one array")
        arrs = [np.asarray(a) for a in arrays]
        for i, a in enumerate(arrs):
            if a.ndim == 0:
                raise ValueError(f"array {i} is a scalar; shard takes arrays of samples")
        lengths = {a.shape[0] for a in arrs}
        if len(lengths) != 1:
            raise ValueError(f"the arrays differ in length: {[a.shape[0] for a in arrs]}")
        start, stop = self.shard_range(arrs[0].shape[0])
        parts = [a[start:stop] for a in arrs]
        return parts[0] if len(parts) == 1 else tuple(parts)

    def barrier(self) -> None:
        self.comm.Barrier()

    # ------------------------------------------------------------------ fit's side
    def _agree(self, error: BaseException | None, signature: tuple[Any, ...]) -> None:
        """Every rank learns whether some rank failed its checks, or holds another model:
        the failing rank raises its own error, the others a RuntimeError naming it."""
        mine = None if error is None else f"{type(error).__name__}: {error}"
        everyone = self.comm.allgather((mine, signature))
        if error is not None:
            raise error
        for rank, (message, _) in enumerate(everyone):
            if message is not None:
                raise RuntimeError(f"distributed fit: rank {rank} refused its input "
                                   f"({message})")
        for rank, (_, theirs) in enumerate(everyone):
            if theirs != signature:
                raise ValueError(
                    f"distributed fit: rank {rank} trains a different model or setting "
                    f"than rank {self.rank}: {theirs} != {signature}")

    def _plan(self, model: Any, n_local: int, batch_size: int,
              has_val: bool) -> _Plan:
        return _Plan(self, model, n_local, batch_size, has_val)

    def _abort(self, exc: BaseException) -> None:
        """Print exc with this rank's number and abort the job (the other ranks may be
        waiting in a collective that this rank will never enter)."""
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        sys.stderr.write(f"fastdense.distributed: rank {self.rank} of {self.size} raised; "
                         f"aborting every rank\n{text}")
        sys.stderr.flush()
        _let_output_through()
        self.comm.Abort(1)


def _let_output_through() -> None:
    """A moment before MPI_Abort, so that the launcher forwards what this rank has just
    written to stderr before it tears the job down: the traceback is the point of the
    abort, and on a loaded machine Hydra could end the job first and lose it."""
    time.sleep(0.25)


def _install_abort_hook(mpi: Any) -> None:
    """An uncaught exception on any rank aborts the job, instead of leaving the other
    ranks blocked in their next collective (mpi4py's ``python -m mpi4py`` does the same)."""
    previous = sys.excepthook

    def hook(kind: Any, value: Any, tb: Any) -> None:
        previous(kind, value, tb)
        try:
            rank = mpi.COMM_WORLD.Get_rank()
            sys.stderr.write(f"fastdense.distributed: uncaught exception on rank {rank}; "
                             f"aborting every rank\n")
            sys.stderr.flush()
            _let_output_through()
        finally:
            mpi.COMM_WORLD.Abort(1)

    sys.excepthook = hook


class _Plan:
    """One distributed fit's schedule and buffers: every rank's sample count, the steps
    per epoch, and the buffer the ranks sum at each update."""

    def __init__(self, dist: MPI, model: Any, n_local: int, batch_size: int,
                 has_val: bool) -> None:
        self.dist = dist
        comm = dist.comm
        net = model._net
        self.net = net
        counts = np.array(comm.allgather(int(n_local)), dtype=np.int64)
        self.counts = counts
        self.n_total = int(counts.sum())
        self.batch_size = batch_size
        self.steps = int(max(math.ceil(c / batch_size) for c in counts))
        self.rank = dist.rank
        self.has_val = bool(comm.allreduce(int(has_val), op=dist._mpi.MAX))
        # step k's rows on each rank, and their sum
        ks = np.arange(self.steps, dtype=np.int64)[:, None]
        rows = np.clip(counts[None, :] - ks * batch_size, 0, batch_size)
        self.step_rows = rows[:, self.rank]
        self.step_totals = rows.sum(axis=1)
        self.n_params = int(net.n_params)
        self.n_metrics = int(net.n_metrics)
        # gradient, loss, metric sums, then the stop flag (Ctrl-C on some rank)
        self.buffer = np.zeros(self.n_params + 2 + self.n_metrics, dtype=net.dtype)
        self.stop_slot = self.n_params + 1 + self.n_metrics
        self._sync(model)

    def _sync(self, model: Any) -> None:
        """Rank 0's weights, optimizer state, iteration count and generator, everywhere."""
        comm = self.dist.comm
        comm.Bcast(self.net.params, root=0)
        opt = model.optimizer
        for s in opt._model_state(self.n_params, model.dtype):
            comm.Bcast(s, root=0)
        opt.iterations = comm.bcast(opt.iterations, root=0)
        state = comm.bcast(model._rng.bit_generator.state, root=0)
        model._rng.bit_generator.state = state

    def shuffler(self, model: Any) -> np.random.Generator:
        """This rank's epoch-shuffling generator for one fit: seeded by a draw from the
        model's generator (the same on every rank) and the rank."""
        seed = int(model._rng.integers(2**63))
        return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(self.rank,)))

    def train_epoch(self, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int,
                    config: Any, state: list[np.ndarray], lrs: Any, t_first: int,
                    losses: np.ndarray, msums: np.ndarray) -> tuple[float, int, Any]:
        """One epoch of `steps` updates, taking and returning what Network.train_epoch
        does: (mean loss over all ranks' samples, updates applied, None / "diverged" /
        KeyboardInterrupt). `order` is this rank's permutation of its rows."""
        if batch_size != self.batch_size:
            raise ValueError(f"the plan is for batches of {self.batch_size}, not {batch_size}")
        from ._core.train import stop_requested
        comm, mpi = self.dist.comm, self.dist._mpi
        net, buf, P = self.net, self.buffer, self.n_params
        bs, total = self.batch_size, 0.0
        step_gradients, apply_gradients = net.step_gradients, net.apply_gradients
        allreduce, in_place, op_sum = comm.Allreduce, mpi.IN_PLACE, mpi.SUM
        metrics = slice(P + 1, P + 1 + self.n_metrics)
        constant = isinstance(lrs, float)
        for k in range(self.steps):
            nb = int(self.step_rows[k])
            n_step = int(self.step_totals[k])
            step_gradients(x, y, order, k * bs, nb, buf, nb / n_step)
            buf[self.stop_slot] = 1 if stop_requested() else 0
            allreduce(in_place, buf, op=op_sum)
            loss = float(buf[P])
            if not math.isfinite(loss) or not apply_gradients(
                    buf, config, state, lrs if constant else float(lrs[k]), t_first + k):
                return total / self.n_total, k, "diverged"
            losses[k] = loss
            total += loss * n_step
            msums += buf[metrics]
            if buf[self.stop_slot] > 0 and k + 1 < self.steps:
                done = int(self.step_totals[:k + 1].sum())
                return total / done, k + 1, KeyboardInterrupt()
        return total / self.n_total, self.steps, None

    def evaluate(self, evaluate: Any, val: tuple[np.ndarray, np.ndarray] | None,
                 n_metrics: int) -> tuple[float, list[float]]:
        """The validation loss and metrics over every rank's validation rows (a rank
        without any contributes nothing)."""
        sums = np.zeros(2 + n_metrics)
        if val is not None:
            n = val[0].shape[0]
            loss, values = evaluate(val[0], val[1])
            sums[0] = n
            sums[1] = loss * n
            sums[2:] = np.asarray(values, dtype=np.float64) * n
        self.dist.comm.Allreduce(self.dist._mpi.IN_PLACE, sums, op=self.dist._mpi.SUM)
        return float(sums[1] / sums[0]), [float(v / sums[0]) for v in sums[2:]]

    def agree_stop(self, stop: bool, interrupted: bool) -> tuple[bool, bool]:
        """(stop, interrupted) reduced over the ranks: any rank's stop stops all."""
        flags = np.array([int(stop), int(interrupted)], dtype=np.int64)
        self.dist.comm.Allreduce(self.dist._mpi.IN_PLACE, flags, op=self.dist._mpi.MAX)
        return bool(flags[0]), bool(flags[1])

    def check_identical(self) -> None:
        """Raise on every rank if the ranks' weights are not bit for bit the same."""
        crc = zlib.crc32(memoryview(self.net.params).cast("B"))
        lo = self.dist.comm.allreduce(crc, op=self.dist._mpi.MIN)
        hi = self.dist.comm.allreduce(crc, op=self.dist._mpi.MAX)
        if lo != hi:
            raise RuntimeError("distributed fit: the ranks' weights differ after training "
                               "(this MPI library's Allreduce did not give every rank the "
                               "same sum)")
