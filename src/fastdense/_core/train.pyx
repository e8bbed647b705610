# cython: language_level=3
"""The training loop: forward, loss, backward and update for every batch of an epoch inside
one nogil call, over the model's flat parameter buffer and preallocated workspaces.

Activations, targets and deltas are stored feature-major (features × batch, see dense.pyx):
each batch's rows are gathered from X and y straight into that layout.

`Network` holds a model's layout (widths, activations, offsets into the flat buffers) and
its workspaces; its methods check every array they are handed (dtype, contiguity, shape,
index range) before the unchecked cores run.
"""
from cython cimport floating
from libc.string cimport memcpy
from cpython.exc cimport PyErr_CheckSignals
from cpython.pythread cimport PyThread_get_thread_ident
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport uint32_t, uint64_t
cimport numpy as cnp
import os

import numpy as np

from fastdense._core.dense cimport (all_finite, dense_forward, dense_backward, gather_rows_t,
                                    grads_finite, relu_backward, use_blas)
from fastdense._core.losses cimport mse_forward_backward
from fastdense._core.updates cimport StepConfig, make_config, optimizer_step

cnp.import_array()


ctypedef struct Layout:
    int n_layers
    const Py_ssize_t* sizes     # n_layers + 1 widths: the input, then each layer's units
    const int* relu             # 1 where layer l has a ReLU
    const Py_ssize_t* w_off     # offset of layer l's W (sizes[l] × sizes[l+1]) in the buffer
    const Py_ssize_t* b_off     # offset of layer l's b (sizes[l+1])
    const Py_ssize_t* act_off   # activation l starts at ws + cap·act_off[l]
    Py_ssize_t y_off, d0_off, d1_off   # target rows and the two delta buffers, likewise


cdef inline floating* _act(const Layout* lay, floating* ws, Py_ssize_t cap, int l) noexcept nogil:
    return ws + cap * lay.act_off[l]


cdef double forward_backward(const Layout* lay, const floating* params, floating* grads,
                             floating* ws, Py_ssize_t cap, Py_ssize_t nb) noexcept nogil:
    """Loss of the nb rows in the workspace (inputs in activation 0, targets at y_off) and its
    gradient with respect to every parameter, written into `grads`."""
    cdef int l, L = lay.n_layers
    cdef Py_ssize_t k = lay.sizes[L]
    cdef floating* d = ws + cap * lay.d0_off
    cdef floating* d_prev = ws + cap * lay.d1_off
    cdef floating* tmp
    cdef double loss
    cdef floating* a
    cdef floating* a_next
    cdef bint rows0 = input_rows(lay, nb)
    for l in range(L):
        a = _act(lay, ws, cap, l)
        a_next = _act(lay, ws, cap, l + 1)
        dense_forward(a, params + lay.w_off[l], params + lay.b_off[l], a_next,
                      nb, lay.sizes[l], lay.sizes[l + 1], lay.relu[l] != 0, l == 0 and rows0)
    a = _act(lay, ws, cap, L)
    loss = mse_forward_backward(a, ws + cap * lay.y_off, d, nb, k)
    if lay.relu[L - 1]:
        relu_backward(d, a, nb * k)
    for l in range(L - 1, -1, -1):
        a = _act(lay, ws, cap, l)
        dense_backward(a, params + lay.w_off[l], d,
                       grads + lay.w_off[l], grads + lay.b_off[l],
                       d_prev if l > 0 else NULL,
                       nb, lay.sizes[l], lay.sizes[l + 1], l > 0 and lay.relu[l - 1] != 0,
                       l == 0 and rows0)
        tmp = d
        d = d_prev
        d_prev = tmp
    return loss


cdef inline bint input_rows(const Layout* lay, Py_ssize_t nb) noexcept nogil:
    """Whether a batch of nb samples enters the first layer sample-major (as X's rows are:
    its BLAS path reads them through a transposition flag) rather than feature-major."""
    return use_blas(nb, lay.sizes[0], lay.sizes[1])


cdef void gather_batch(const Layout* lay, floating* ws, Py_ssize_t cap,
                       const floating* x, const floating* y, Py_ssize_t x_rows,
                       const Py_ssize_t* rows, Py_ssize_t nb) noexcept nogil:
    """The batch's inputs (rows `rows` of x, which has x_rows rows) into activation 0, in
    the layout input_rows chooses, and its targets, feature-major, into the target buffer."""
    cdef Py_ssize_t r, n_in = lay.sizes[0]
    cdef floating* a0 = _act(lay, ws, cap, 0)
    if input_rows(lay, nb):
        for r in range(nb):
            memcpy(a0 + r * n_in, x + rows[r] * n_in, n_in * sizeof(floating))
    else:
        gather_rows_t(a0, x, rows, nb, n_in, x_rows)
    gather_rows_t(ws + cap * lay.y_off, y, rows, nb, lay.sizes[lay.n_layers], x_rows)


cdef void transpose(floating* dst, const floating* src, Py_ssize_t rows,
                    Py_ssize_t cols) noexcept nogil:
    """dst (cols × rows) = srcᵀ, src rows × cols, both C-contiguous."""
    cdef Py_ssize_t r, c
    if rows == 1 or cols == 1:
        memcpy(dst, src, rows * cols * sizeof(floating))
        return
    for r in range(rows):
        for c in range(cols):
            dst[c * rows + r] = src[r * cols + c]


cdef enum:
    # How train_epoch_core ended.
    EPOCH_DONE = 0          # every batch trained
    EPOCH_DIVERGED = 1      # batch `done` had a non-finite loss or gradient; not applied
    EPOCH_INTERRUPTED = 2   # a signal handler raised (Ctrl-C) after `done` updates
    EPOCH_REFUSED = 3       # the optimizer refused its configuration; nothing applied
    # Between two looks for signals (Ctrl-C), at least this much work (samples ×
    # parameters) is done: about a millisecond, so a look (taking the GIL) costs nothing.
    POLL_WORK = 2000000

# The exception a signal handler raised during an epoch (only the main thread runs
# signal handlers, so one slot is enough).
_pending_signal = []
# Set by request_stop(): a deferred Ctrl-C (see fastdense.models' fit), seen by the loop.
cdef int _stop_requested = 0


def request_stop():
    """Ask the running epoch loop to stop after its current update (a deferred Ctrl-C)."""
    global _stop_requested
    _stop_requested = 1


def clear_stop():
    global _stop_requested
    _stop_requested = 0


def stop_requested():
    return _stop_requested != 0


cdef int poll_signals() noexcept with gil:
    """Run Python's signal handlers now; 1 when one raised (the exception is kept in
    _pending_signal), as Ctrl-C's does, or when request_stop() was called."""
    try:
        PyErr_CheckSignals()
    except BaseException as exc:
        _pending_signal.append(exc)
        return 1
    return _stop_requested != 0


cdef Py_ssize_t train_epoch_core(const Layout* lay, floating* params, floating* grads,
                                 Py_ssize_t n_params, const Py_ssize_t* seg, Py_ssize_t nseg,
                                 floating* ws, Py_ssize_t cap,
                                 const floating* x, const floating* y,
                                 const Py_ssize_t* order, Py_ssize_t n, Py_ssize_t batch_size,
                                 StepConfig* cfg, floating** state, const double* lrs,
                                 Py_ssize_t lr_stride, long long t_first, double* losses,
                                 double* mean_loss, int* status) noexcept nogil:
    """For each batch of `order` (the last may be partial): gather its rows, forward, loss,
    backward, one optimizer update. losses[b] = batch b's loss before its update.

    Batch b's learning rate is lrs[b·lr_stride] (stride 0: one rate for all); *mean_loss
    is the mean over the trained samples of each batch's loss.

    Returns the number of updates applied, and in *status how the epoch ended (EPOCH_*):
    a non-finite loss or gradient stops it before that batch's update, so the weights are
    those after the last finite one; a signal handler that raises (Ctrl-C) stops it
    between two updates."""
    cdef Py_ssize_t b, start, nb, work = 0
    cdef double loss, total = 0
    b = 0
    start = 0
    status[0] = EPOCH_DONE
    mean_loss[0] = 0
    while start < n:
        nb = batch_size if n - start > batch_size else n - start
        gather_batch(lay, ws, cap, x, y, n, order + start, nb)
        loss = forward_backward(lay, params, grads, ws, cap, nb)
        losses[b] = loss
        # Diverged: stop before the update (one cheap vectorised pass over the gradient).
        if loss - loss != 0 or not grads_finite(grads, n_params):
            status[0] = EPOCH_DIVERGED
            return b
        cfg.lr = lrs[b * lr_stride]
        cfg.t = t_first + b
        if optimizer_step(cfg, params, grads, state, n_params, seg, nseg) != 0:
            status[0] = EPOCH_REFUSED
            return b
        total += loss * nb
        b += 1
        start += nb
        mean_loss[0] = total / start
        work += nb * n_params
        if work >= POLL_WORK and start < n:
            work = 0
            if poll_signals():
                status[0] = EPOCH_INTERRUPTED
                return b
    return b


cdef void forward_core(const Layout* lay, const floating* params, const floating* x,
                       floating* out, Py_ssize_t n, floating* ws, Py_ssize_t cap,
                       Py_ssize_t widest) noexcept nogil:
    """out (n × outputs, row-major) = the network's output for the rows of x, cap rows at a
    time: each chunk is transposed into ws, then passes through two ping-pong buffers of
    widest × cap values (ws must hold cap × (inputs + 2·widest) values)."""
    cdef int l, L = lay.n_layers
    cdef Py_ssize_t start, nb, n_in = lay.sizes[0], k = lay.sizes[L]
    cdef floating* buf0 = ws + cap * n_in
    cdef floating* buf1 = buf0 + cap * widest
    cdef const floating* src
    cdef floating* dst
    cdef bint rows0
    start = 0
    while start < n:
        nb = cap if n - start > cap else n - start
        rows0 = input_rows(lay, nb)
        if rows0:
            src = x + start * n_in
        else:
            gather_rows_t(ws, x + start * n_in, NULL, nb, n_in, n - start)
            src = ws
        for l in range(L):
            dst = buf0 if l % 2 == 0 else buf1
            dense_forward(src, params + lay.w_off[l], params + lay.b_off[l], dst,
                          nb, lay.sizes[l], lay.sizes[l + 1], lay.relu[l] != 0,
                          l == 0 and rows0)
            src = dst
        transpose(out + start * k, src, k, nb)
        start += nb


cdef enum:
    # Rows per chunk of `forward`: bounds its workspace while keeping BLAS calls large.
    DEF_PREDICT_ROWS = 1024
    # A `forward` workspace up to this many doubles lives on the stack.
    STACK_WS = 2048
    # Below this many multiply-adds (rows × parameters) `forward` keeps the GIL: releasing
    # and taking it back costs more than the work.
    NOGIL_MIN_WORK = 100000


cdef extern from "numpy/random/bitgen.h":
    # NumPy's C interface to a bit generator (BitGenerator.capsule), numpy/random/bitgen.h
    ctypedef struct bitgen_t:
        void* state
        uint64_t (*next_uint64)(void* st) noexcept nogil
        uint32_t (*next_uint32)(void* st) noexcept nogil


cdef inline uint64_t draw_interval(bitgen_t* bg, uint64_t top) noexcept nogil:
    """A uniform integer in [0, top], drawn as NumPy's Generator draws the indices of its
    shuffle (random_interval): the smallest all-ones mask covering top, then rejection of
    masked draws above top; 32-bit draws while top fits in 32 bits."""
    cdef uint64_t mask = top, value
    if top == 0:
        return 0
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    mask |= mask >> 32
    if top <= 0xffffffffUL:
        while True:
            value = bg.next_uint32(bg.state) & mask
            if value <= top:
                return value
    while True:
        value = bg.next_uint64(bg.state) & mask
        if value <= top:
            return value


def shuffled_range(cnp.ndarray order not None, rng not None):
    """order[:] = a permutation of 0 … len(order) − 1 drawn from the NumPy Generator `rng`,
    equal to what rng.permutation(len(order)) returns and leaving rng in the same state:
    Fisher–Yates from the last position down, each index drawn as NumPy draws it, straight
    from the bit generator (under its lock, as NumPy's own methods take it).

    fastdense.models checks once per process that this matches the installed NumPy
    (`shuffle_matches_numpy`) and otherwise uses rng.shuffle."""
    if not (cnp.PyArray_NDIM(order) == 1 and cnp.PyArray_TYPE(order) == cnp.NPY_INTP
            and cnp.PyArray_IS_C_CONTIGUOUS(order) and cnp.PyArray_ISWRITEABLE(order)):
        raise ValueError("order must be a writable contiguous 1-D intp array")
    bit_generator = rng.bit_generator
    capsule = bit_generator.capsule
    cdef bitgen_t* bg = <bitgen_t*>PyCapsule_GetPointer(capsule, "BitGenerator")
    cdef Py_ssize_t n = cnp.PyArray_DIM(order, 0), i, j, t
    cdef Py_ssize_t* p = <Py_ssize_t*>cnp.PyArray_DATA(order)
    with bit_generator.lock:
        with nogil:
            for i in range(n):
                p[i] = i
            for i in range(n - 1, 0, -1):
                j = <Py_ssize_t>draw_interval(bg, <uint64_t>i)
                t = p[i]
                p[i] = p[j]
                p[j] = t


def _physical_memory():
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _human(nbytes):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{nbytes} B"
        nbytes /= 1024


def check_fits(nbytes, what):
    """MemoryError, before anything is allocated, when `what` needs more bytes than the
    machine has (allocating first could 'succeed' under overcommit and fail on touch)."""
    total = _physical_memory()
    if total is not None and nbytes > total:
        raise MemoryError(f"{what} needs {_human(nbytes)}, more than this machine's "
                          f"{_human(total)} of memory")


cdef object aligned_empty(Py_ssize_t count, dtype):
    """An uninitialised 1-D array of `count` elements of dtype whose data start on a 64-byte
    boundary: blocks of a feature-major buffer whose offsets are whole vectors then load
    and store without splitting cache lines (numpy itself only promises 16 bytes, so
    where a buffer fell varied from run to run, and so did the speed of the kernels)."""
    cdef Py_ssize_t itemsize = np.dtype(dtype).itemsize
    raw = np.empty(count * itemsize + 64, dtype=np.uint8)
    cdef size_t addr = <size_t>cnp.PyArray_DATA(<cnp.ndarray>raw)
    cdef Py_ssize_t off = <Py_ssize_t>((64 - addr % 64) % 64)
    return raw[off:off + count * itemsize].view(dtype)


cdef inline bint _is_matrix(obj, int typenum, Py_ssize_t width):
    """obj is an exact ndarray of typenum, C-contiguous, 2-D, with `width` columns."""
    if not cnp.PyArray_CheckExact(obj):
        return False
    cdef cnp.ndarray a = <cnp.ndarray>obj
    return (cnp.PyArray_NDIM(a) == 2 and cnp.PyArray_TYPE(a) == typenum
            and cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_DIM(a, 1) == width)


cdef bint indices_below(const Py_ssize_t* idx, Py_ssize_t count,
                        Py_ssize_t bound) noexcept nogil:
    """Every idx[i] in [0, bound) (one unsigned compare each)."""
    cdef Py_ssize_t i
    cdef int bad = 0
    for i in range(count):
        bad |= <size_t>idx[i] >= <size_t>bound
    return not bad


cdef class Network:
    """A dense network's layout, flat parameter and gradient buffers, and workspaces."""

    cdef readonly object params       # all W and b, laid out W0, b0, W1, b1, ...
    cdef readonly object grads        # same layout
    cdef readonly object dtype
    cdef readonly object segments     # 2L + 1 offsets: variable i is params[seg[i]:seg[i+1]]
    cdef readonly Py_ssize_t n_params
    cdef Py_ssize_t[::1] _sizes, _w_off, _b_off, _act_off, _seg
    cdef int[::1] _relu
    cdef Layout _lay
    cdef object _ws
    cdef object _identity      # 0, 1, 2, …: the order of a batch trained as given
    cdef int _busy             # claims held by the training thread (taken with the GIL held)
    cdef long _owner           # that thread's id
    cdef object _config_key    # the optimizer config tuple _cfg was made from
    cdef StepConfig _cfg
    cdef Py_ssize_t _cap, _widest
    cdef int _typenum
    cdef bint _single

    def __init__(self, sizes, relu, dtype):
        sizes = [int(s) for s in sizes]
        relu = [bool(r) for r in relu]
        cdef int L = len(sizes) - 1
        if L < 1 or len(relu) != L or min(sizes) < 1:
            raise ValueError(f"bad layout: sizes {sizes}, relu {relu}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        self._single = self.dtype == np.dtype(np.float32)
        self._typenum = cnp.NPY_FLOAT32 if self._single else cnp.NPY_FLOAT64
        self._widest = max(sizes)
        self._sizes = np.asarray(sizes, dtype=np.intp)
        self._relu = np.asarray(relu, dtype=np.intc)
        w_off, b_off, seg = [], [], [0]
        off = 0
        for l in range(L):
            w_off.append(off)
            off += sizes[l] * sizes[l + 1]
            seg.append(off)
            b_off.append(off)
            off += sizes[l + 1]
            seg.append(off)
        self.n_params = off
        if max(sizes) > 2**31 - 1:
            raise ValueError(f"a layer of {max(sizes)} units is wider than BLAS can index")
        check_fits(2 * off * self.dtype.itemsize,
                   f"a network of {off} parameters ({self.dtype}, with its gradient)")
        self._w_off = np.asarray(w_off, dtype=np.intp)
        self._b_off = np.asarray(b_off, dtype=np.intp)
        self._seg = np.asarray(seg, dtype=np.intp)
        self.segments = np.asarray(self._seg)
        self.segments.flags.writeable = False
        act_off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
        self._act_off = act_off
        widest = max(sizes)
        self._lay.n_layers = L
        self._lay.sizes = &self._sizes[0]
        self._lay.relu = &self._relu[0]
        self._lay.w_off = &self._w_off[0]
        self._lay.b_off = &self._b_off[0]
        self._lay.act_off = &self._act_off[0]
        total = int(act_off[L + 1])   # end of the last activation
        self._lay.y_off = total
        self._lay.d0_off = total + sizes[L]
        self._lay.d1_off = total + sizes[L] + widest
        self.params = aligned_empty(self.n_params, self.dtype)
        self.grads = aligned_empty(self.n_params, self.dtype)
        self.params[...] = 0
        self.grads[...] = 0
        self._ws = None
        self._busy = 0
        self._owner = 0
        self._config_key = None
        self._identity = None
        self._cap = 0

    @property
    def busy(self):
        """Whether a thread is training this network right now."""
        return self._busy > 0

    cdef _claim(self):
        """Mark the network as being trained by this thread; refuse if another thread is.
        Claims nest (fit holds one for all its epochs, each epoch takes another), and are
        checked and taken while holding the GIL, so two threads cannot both succeed."""
        cdef long me = PyThread_get_thread_ident()
        if self._busy and self._owner != me:
            raise RuntimeError(
                "this model is being trained by another thread; train one model per "
                "thread, or wait for the other fit to finish")
        self._owner = me
        self._busy += 1

    cdef _release(self):
        self._busy -= 1

    def busy_elsewhere(self):
        """Whether another thread than this one is training the network."""
        return self._busy > 0 and self._owner != PyThread_get_thread_ident()

    def claim(self):
        """Hold the network for this thread until release() (fit does, across epochs)."""
        self._claim()

    def release(self):
        self._release()

    def views(self, buffer):
        """[W0, b0, W1, b1, ...] as views into `buffer` (params or grads)."""
        out = []
        for l in range(self._lay.n_layers):
            i, o = self._sizes[l], self._sizes[l + 1]
            out.append(buffer[self._w_off[l]:self._w_off[l] + i * o].reshape(i, o))
            out.append(buffer[self._b_off[l]:self._b_off[l] + o])
        return out

    cdef Py_ssize_t _per_row(self):
        return self._lay.d1_off + max(self._sizes)

    cdef void _reserve(self, Py_ssize_t cap) except *:
        """Make the training workspace hold batches of `cap` rows (kept and reused)."""
        if cap > self._cap:
            check_fits(cap * self._per_row() * self.dtype.itemsize,
                       f"the training workspace for batches of {cap}")
            self._ws = aligned_empty(cap * self._per_row(), self.dtype)
            self._cap = cap

    cdef _check_xy(self, x, y):
        """X and y as train_epoch needs them: exact ndarrays of the model's dtype,
        C-contiguous, 2-D, of the model's widths and one non-zero length."""
        cdef Py_ssize_t L = self._lay.n_layers
        if _is_matrix(x, self._typenum, self._sizes[0]) \
                and _is_matrix(y, self._typenum, self._sizes[L]) \
                and cnp.PyArray_DIM(<cnp.ndarray>x, 0) == cnp.PyArray_DIM(<cnp.ndarray>y, 0) \
                and cnp.PyArray_DIM(<cnp.ndarray>x, 0) > 0:
            return
        for name, a, width in (("X", x, self._sizes[0]), ("y", y, self._sizes[L])):
            if not isinstance(a, np.ndarray) or a.dtype != self.dtype or a.ndim != 2 \
                    or not a.flags.c_contiguous:
                raise TypeError(f"{name} must be a C-contiguous 2-D {self.dtype} array")
            if a.shape[1] != width:
                raise ValueError(f"{name} has {a.shape[1]} columns, expected {width}")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"X and y differ in length: {x.shape[0]} != {y.shape[0]}")
        raise ValueError("no samples")

    def train_epoch(self, x, y, order, Py_ssize_t batch_size, config, state, lrs,
                    long long t_first, losses=None):
        """One epoch of minibatch updates in one nogil call. Returns (loss, done, stop):
        the mean over the epoch's samples of each batch's loss before its update, the
        number of updates applied, and why training stopped early: None (it did not),
        "diverged" (batch `done` had a non-finite loss or gradient; its update was not
        applied) or the exception a signal handler raised (Ctrl-C's KeyboardInterrupt)
        after `done` updates, for the caller to re-raise once its own state is up to date.

        `order`: the sample indices in training order (intp, each in [0, n));
        `config`: the optimizer's `_config()` tuple; `state`: its state arrays for the flat
        buffer; `lrs`: one learning rate (a float) or a float64 array of each batch's;
        `t_first`: the first update's t; `losses`: an optional float64 array receiving
        each batch's loss. Everything is checked here, cheaply: this runs once an epoch.
        """
        self._check_xy(x, y)
        cdef Py_ssize_t n = cnp.PyArray_DIM(<cnp.ndarray>x, 0)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        cdef Py_ssize_t n_batches = (n + batch_size - 1) // batch_size
        if not (cnp.PyArray_CheckExact(order) and cnp.PyArray_NDIM(<cnp.ndarray>order) == 1
                and cnp.PyArray_TYPE(<cnp.ndarray>order) == cnp.NPY_INTP
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>order)
                and cnp.PyArray_DIM(<cnp.ndarray>order, 0) == n):
            raise ValueError(f"order must be a contiguous intp array of length {n}")
        cdef Py_ssize_t* op = <Py_ssize_t*>cnp.PyArray_DATA(<cnp.ndarray>order)
        cdef bint in_range
        with nogil:
            in_range = indices_below(op, n, n)
        if not in_range:
            raise ValueError(f"order holds indices outside [0, {n})")
        cdef double lr_value
        cdef double* lp
        cdef Py_ssize_t lr_stride = 1
        if isinstance(lrs, float):
            lr_value = lrs
            lp = &lr_value
            lr_stride = 0
        else:
            if not (cnp.PyArray_CheckExact(lrs) and cnp.PyArray_NDIM(<cnp.ndarray>lrs) == 1
                    and cnp.PyArray_TYPE(<cnp.ndarray>lrs) == cnp.NPY_FLOAT64
                    and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>lrs)
                    and cnp.PyArray_DIM(<cnp.ndarray>lrs, 0) >= n_batches):
                raise ValueError(f"lrs must be a float or a contiguous float64 array of "
                                 f"at least {n_batches} learning rates")
            lp = <double*>cnp.PyArray_DATA(<cnp.ndarray>lrs)
        if losses is None:
            losses = np.empty(n_batches, dtype=np.float64)
        elif not (cnp.PyArray_CheckExact(losses)
                  and cnp.PyArray_NDIM(<cnp.ndarray>losses) == 1
                  and cnp.PyArray_TYPE(<cnp.ndarray>losses) == cnp.NPY_FLOAT64
                  and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>losses)
                  and cnp.PyArray_ISWRITEABLE(<cnp.ndarray>losses)
                  and cnp.PyArray_DIM(<cnp.ndarray>losses, 0) >= n_batches):
            raise ValueError(f"losses must be a writable contiguous float64 array of at "
                             f"least {n_batches} values")
        if config is not self._config_key:
            self._cfg = self._make_config(config)
            self._config_key = config
        cdef StepConfig cfg = self._cfg
        self._check_state(state)
        cdef Py_ssize_t done
        cdef int status, i
        cdef double mean_loss
        cdef void* st[3]
        cdef Py_ssize_t bs = min(batch_size, n)
        cdef void* pp
        cdef void* gp
        cdef void* wp
        cdef void* xp = cnp.PyArray_DATA(<cnp.ndarray>x)
        cdef void* yp = cnp.PyArray_DATA(<cnp.ndarray>y)
        cdef double* outp = <double*>cnp.PyArray_DATA(<cnp.ndarray>losses)
        for i in range(3):
            st[i] = cnp.PyArray_DATA(<cnp.ndarray>state[i]) if i < len(state) else NULL
        self._claim()           # before the workspace may be reallocated
        try:
            self._reserve(bs)
            pp = cnp.PyArray_DATA(self.params)
            gp = cnp.PyArray_DATA(self.grads)
            wp = cnp.PyArray_DATA(self._ws)
            with nogil:
                if self._single:
                    done = train_epoch_core(
                        &self._lay, <float*>pp, <float*>gp, self.n_params, &self._seg[0],
                        2 * self._lay.n_layers, <float*>wp, self._cap, <float*>xp,
                        <float*>yp, op, n, bs, &cfg, <float**>st, lp, lr_stride, t_first,
                        outp, &mean_loss, &status)
                else:
                    done = train_epoch_core(
                        &self._lay, <double*>pp, <double*>gp, self.n_params, &self._seg[0],
                        2 * self._lay.n_layers, <double*>wp, self._cap, <double*>xp,
                        <double*>yp, op, n, bs, &cfg, <double**>st, lp, lr_stride, t_first,
                        outp, &mean_loss, &status)
        finally:
            self._release()
        return mean_loss, done, self._stop_reason(status, cfg.rule)

    cdef object _stop_reason(self, int status, int rule):
        if status == EPOCH_REFUSED:
            raise ValueError(f"the optimizer kernel refused rule {rule}")
        if status == EPOCH_DIVERGED:
            return "diverged"
        if status == EPOCH_INTERRUPTED:
            return _pending_signal.pop() if _pending_signal else KeyboardInterrupt()
        return None

    def train_batch(self, x, y, config, state, double lr, long long t):
        """One update on (x, y) as a single batch: returns (loss, done) as train_epoch does
        for one batch — or None when x or y is not already a finite, C-contiguous array of
        the model's dtype and shape (an ndarray exactly; y may be 1-D for one output): the
        caller then validates and converts, and calls train_epoch."""
        cdef Py_ssize_t L = self._lay.n_layers, n_in = self._sizes[0], k = self._sizes[L]
        if not (cnp.PyArray_CheckExact(x) and cnp.PyArray_CheckExact(y)):
            return None
        cdef cnp.ndarray xa = <cnp.ndarray>x, ya = <cnp.ndarray>y
        if cnp.PyArray_NDIM(xa) != 2 or cnp.PyArray_TYPE(xa) != self._typenum \
                or not cnp.PyArray_IS_C_CONTIGUOUS(xa) or cnp.PyArray_DIM(xa, 1) != n_in:
            return None
        cdef Py_ssize_t n = cnp.PyArray_DIM(xa, 0)
        if n == 0 or cnp.PyArray_TYPE(ya) != self._typenum \
                or not cnp.PyArray_IS_C_CONTIGUOUS(ya) or cnp.PyArray_DIM(ya, 0) != n:
            return None
        if not ((cnp.PyArray_NDIM(ya) == 2 and cnp.PyArray_DIM(ya, 1) == k)
                or (cnp.PyArray_NDIM(ya) == 1 and k == 1)):
            return None
        cdef void* xp = cnp.PyArray_DATA(xa)
        cdef void* yp = cnp.PyArray_DATA(ya)
        cdef bint finite
        if self._single:
            finite = all_finite(<float*>xp, n * n_in) and all_finite(<float*>yp, n * k)
        else:
            finite = all_finite(<double*>xp, n * n_in) and all_finite(<double*>yp, n * k)
        if not finite:
            return None
        if config is not self._config_key:
            self._cfg = self._make_config(config)
            self._config_key = config
        cdef StepConfig cfg = self._cfg
        self._check_state(state)
        cdef void* st[3]
        cdef int i, status
        for i in range(3):
            st[i] = cnp.PyArray_DATA(state[i]) if i < len(state) else NULL
        cdef void* pp
        cdef void* gp
        cdef void* wp
        cdef Py_ssize_t* op
        cdef double loss = 0
        cdef Py_ssize_t done
        self._claim()           # before the workspace may be reallocated
        try:
            self._reserve(n)
            if self._identity is None or self._identity.shape[0] < n:
                self._identity = np.arange(self._cap, dtype=np.intp)
            pp = cnp.PyArray_DATA(self.params)
            gp = cnp.PyArray_DATA(self.grads)
            wp = cnp.PyArray_DATA(self._ws)
            op = <Py_ssize_t*>cnp.PyArray_DATA(self._identity)
            if n * self.n_params < NOGIL_MIN_WORK:     # too little work to repay a GIL release
                done = self._train_batch(pp, gp, wp, xp, yp, op, n, &cfg, st, &lr, t, &loss,
                                         &status)
            else:
                with nogil:
                    done = self._train_batch(pp, gp, wp, xp, yp, op, n, &cfg, st, &lr, t,
                                             &loss, &status)
        finally:
            self._release()
        self._stop_reason(status, cfg.rule)
        return loss, done

    cdef Py_ssize_t _train_batch(self, void* pp, void* gp, void* wp, void* xp, void* yp,
                                 Py_ssize_t* op, Py_ssize_t n, StepConfig* cfg, void** st,
                                 double* lr, long long t, double* loss,
                                 int* status) noexcept nogil:
        cdef double mean
        if self._single:
            return train_epoch_core(&self._lay, <float*>pp, <float*>gp, self.n_params,
                                    &self._seg[0], 2 * self._lay.n_layers, <float*>wp,
                                    self._cap, <float*>xp, <float*>yp, op, n, n, cfg,
                                    <float**>st, lr, 0, t, loss, &mean, status)
        return train_epoch_core(&self._lay, <double*>pp, <double*>gp, self.n_params,
                                &self._seg[0], 2 * self._lay.n_layers, <double*>wp,
                                self._cap, <double*>xp, <double*>yp, op, n, n, cfg,
                                <double**>st, lr, 0, t, loss, &mean, status)

    cdef _check_state(self, state):
        cdef cnp.ndarray a
        if len(state) > 3:
            raise ValueError("at most 3 state buffers")
        for s in state:
            if cnp.PyArray_CheckExact(s):
                a = <cnp.ndarray>s
                if cnp.PyArray_NDIM(a) == 1 and cnp.PyArray_TYPE(a) == self._typenum \
                        and cnp.PyArray_DIM(a, 0) == self.n_params \
                        and cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISWRITEABLE(a):
                    continue
            if not isinstance(s, np.ndarray) or s.dtype != self.dtype \
                    or s.shape != (self.n_params,) or not s.flags.c_contiguous \
                    or not s.flags.writeable:
                raise ValueError(
                    f"optimizer state must be writable contiguous {self.dtype} arrays "
                    f"of {self.n_params} values")

    cdef StepConfig _make_config(self, config) except *:
        """The optimizer's `_config()` tuple as a checked StepConfig (updates.make_config);
        lr and t are set per update by the loop."""
        rule, h, clipnorm, clipvalue, global_clipnorm, weight_decay = config
        return make_config(rule, h, 0.0, 1, clipnorm, clipvalue, global_clipnorm,
                           weight_decay)

    def gradients(self, x, y):
        """(loss, gradient) of (x, y): the gradient a copy of `grads`, taken before another
        thread may train; parameters unchanged."""
        self._check_xy(x, y)
        cdef Py_ssize_t n = x.shape[0]
        order = np.arange(n, dtype=np.intp)
        cdef Py_ssize_t* op = <Py_ssize_t*>cnp.PyArray_DATA(order)
        cdef void* pp = cnp.PyArray_DATA(self.params)
        cdef void* gp = cnp.PyArray_DATA(self.grads)
        cdef void* wp
        cdef void* xp = cnp.PyArray_DATA(x)
        cdef void* yp = cnp.PyArray_DATA(y)
        cdef double loss
        self._claim()           # the workspace and the gradient buffer are shared
        try:
            self._reserve(n)
            wp = cnp.PyArray_DATA(self._ws)
            with nogil:
                if self._single:
                    gather_batch(&self._lay, <float*>wp, self._cap, <float*>xp, <float*>yp,
                                 n, op, n)
                    loss = forward_backward(&self._lay, <float*>pp, <float*>gp, <float*>wp,
                                            self._cap, n)
                else:
                    gather_batch(&self._lay, <double*>wp, self._cap, <double*>xp,
                                 <double*>yp, n, op, n)
                    loss = forward_backward(&self._lay, <double*>pp, <double*>gp,
                                            <double*>wp, self._cap, n)
            grads = self.grads.copy()
        finally:
            self._release()
        return loss, grads

    def forward(self, x):
        """The network's output for the rows of x, as a new n × outputs array; or None when
        x is not already a finite, C-contiguous, 2-D array of the model's dtype and input
        width (an ndarray exactly, not a subclass): the caller then validates and
        converts it. So a well-formed input costs no conversion and no Python-level check.
        """
        if not cnp.PyArray_CheckExact(x):
            return None
        cdef cnp.ndarray arr = <cnp.ndarray>x
        cdef Py_ssize_t L = self._lay.n_layers, n_in = self._sizes[0]
        if cnp.PyArray_NDIM(arr) != 2 or cnp.PyArray_TYPE(arr) != self._typenum \
                or not cnp.PyArray_IS_C_CONTIGUOUS(arr) or cnp.PyArray_DIM(arr, 1) != n_in:
            return None
        cdef Py_ssize_t n = cnp.PyArray_DIM(arr, 0)
        cdef void* xp = cnp.PyArray_DATA(arr)
        cdef bint finite
        if self._single:
            finite = all_finite(<float*>xp, n * n_in)
        else:
            finite = all_finite(<double*>xp, n * n_in)
        if not finite:
            return None
        cdef cnp.npy_intp dims[2]
        dims[0] = n
        dims[1] = self._sizes[L]
        out = cnp.PyArray_EMPTY(2, dims, self._typenum, 0)
        if n == 0:
            return out
        cdef Py_ssize_t cap = min(n, DEF_PREDICT_ROWS), widest = self._widest
        cdef Py_ssize_t ws_size = cap * (n_in + 2 * widest)
        # The workspace is local to the call (on the stack when small), so concurrent
        # predictions on one model share nothing mutable.
        cdef double stack_ws[STACK_WS + 8]        # + 64 bytes to start it on a 64-byte line
        cdef void* wp = <void*>((<size_t>stack_ws + 63) & ~(<size_t>63))
        if ws_size > STACK_WS:
            ws = aligned_empty(ws_size, self.dtype)
            wp = cnp.PyArray_DATA(ws)
        cdef void* pp = cnp.PyArray_DATA(self.params)
        cdef void* op = cnp.PyArray_DATA(out)
        if n * self.n_params < NOGIL_MIN_WORK:     # too little work to repay a GIL release
            self._forward(pp, xp, op, n, wp, cap)
        else:
            with nogil:
                self._forward(pp, xp, op, n, wp, cap)
        return out

    cdef void _forward(self, void* pp, void* xp, void* op, Py_ssize_t n, void* wp,
                       Py_ssize_t cap) noexcept nogil:
        if self._single:
            forward_core(&self._lay, <float*>pp, <float*>xp, <float*>op, n, <float*>wp,
                         cap, self._widest)
        else:
            forward_core(&self._lay, <double*>pp, <double*>xp, <double*>op, n,
                         <double*>wp, cap, self._widest)
