# Dense layer kernels over feature-major activations: a block of n samples with f features
# is stored f × n (feature j of sample i at [j*n + i]); weights W are n_in × n_out row-major.
from cython cimport floating

cdef bint use_blas(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out) noexcept nogil

cdef void dense_forward(const floating* a, const floating* w, const floating* b,
                        floating* z, Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                        int act, double alpha, bint a_rows) noexcept nogil

cdef void dense_backward(const floating* a, const floating* w, const floating* d,
                         floating* dw, floating* db, floating* da,
                         Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                         int act_a, double alpha_a, bint a_rows) noexcept nogil

cdef bint sgd_from_deltas(Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out) noexcept nogil

cdef void dense_backward_nodw(const floating* a, const floating* w, const floating* d,
                              floating* db, floating* da, Py_ssize_t n, Py_ssize_t n_in,
                              Py_ssize_t n_out, int act_a, double alpha_a) noexcept nogil

cdef void sgd_weights(floating* w, const floating* a, const floating* d, double lr,
                      Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out, bint a_rows) noexcept nogil

cdef void weight_product_blas(const floating* a, const floating* d, floating* c,
                              double alpha, double beta, Py_ssize_t n, Py_ssize_t n_in,
                              Py_ssize_t n_out, bint a_rows) noexcept nogil

cdef void dense_backward1(const floating* a, const floating* w, const floating* d,
                          floating* db, floating* da, Py_ssize_t n_in, Py_ssize_t n_out,
                          int act_a, double alpha_a) noexcept nogil

cdef void outer1(const floating* a, const floating* d, floating* dw, Py_ssize_t n_in,
                 Py_ssize_t n_out) noexcept nogil

cdef void sgd_outer1(floating* w, floating* b, const floating* a, const floating* d,
                     double lr, Py_ssize_t n_in, Py_ssize_t n_out) noexcept nogil

cdef void gather_rows_t(floating* dst, const floating* src, const Py_ssize_t* rows,
                        Py_ssize_t count, Py_ssize_t width, Py_ssize_t src_rows) noexcept nogil

cdef void relu_backward(floating* d, const floating* a, Py_ssize_t size) noexcept nogil

cdef bint all_finite(const floating* x, Py_ssize_t size) noexcept nogil

cdef bint grads_finite(const floating* x, Py_ssize_t size) noexcept nogil

cdef double abs_sum(const floating* x, Py_ssize_t size) noexcept nogil

cdef void act_backward(floating* d, const floating* y, Py_ssize_t size, int act,
                       double alpha) noexcept nogil

cdef void act_forward(floating* z, Py_ssize_t size, int act, double alpha) noexcept nogil

cdef void gelu_backward(floating* d, const floating* z, Py_ssize_t size,
                        bint approximate) noexcept nogil

cdef void softmax_columns(floating* z, Py_ssize_t k, Py_ssize_t n,
                          floating* scratch) noexcept nogil

cdef double head_loss(int loss, int act, double alpha, double delta, const floating* z,
                      floating* a, const floating* y, const floating* sw, floating* dz,
                      floating* scratch, Py_ssize_t n, Py_ssize_t k,
                      double scale) noexcept nogil

cdef void metric_sums(const int* ids, int count, const floating* a, const floating* y,
                      Py_ssize_t n, Py_ssize_t k, double threshold,
                      double* sums) noexcept nogil

cdef double regularize(const floating* w, floating* g, Py_ssize_t m, double l1,
                       double l2) noexcept nogil
