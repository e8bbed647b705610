# Dense layer kernels over feature-major activations: a block of n samples with f features
# is stored f × n (feature j of sample i at [j*n + i]); weights W are n_in × n_out row-major.
from cython cimport floating

cdef bint use_blas(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out) noexcept nogil

cdef void dense_forward(const floating* a, const floating* w, const floating* b,
                        floating* z, Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                        bint relu, bint a_rows) noexcept nogil

cdef void dense_backward(const floating* a, const floating* w, const floating* d,
                         floating* dw, floating* db, floating* da,
                         Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                         bint relu_a, bint a_rows) noexcept nogil

cdef void gather_rows_t(floating* dst, const floating* src, const Py_ssize_t* rows,
                        Py_ssize_t count, Py_ssize_t width, Py_ssize_t src_rows) noexcept nogil

cdef void relu_backward(floating* d, const floating* a, Py_ssize_t size) noexcept nogil

cdef bint all_finite(const floating* x, Py_ssize_t size) noexcept nogil

cdef bint grads_finite(const floating* x, Py_ssize_t size) noexcept nogil
