from cython cimport floating

cdef bint use_blas(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k) noexcept nogil

cdef void dense_forward(const floating* x, const floating* w, const floating* b,
                        floating* y, Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                        bint relu) noexcept nogil

cdef void dense_backward(const floating* x, const floating* w, const floating* dy,
                         floating* dw, floating* db, floating* dx,
                         Py_ssize_t n, Py_ssize_t n_in, Py_ssize_t n_out,
                         bint relu_x) noexcept nogil

cdef void relu_backward(floating* d, const floating* a, Py_ssize_t size) noexcept nogil
