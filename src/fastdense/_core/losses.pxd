from cython cimport floating

cdef double mse_forward_backward(const floating* yhat, const floating* y, floating* grad,
                                 Py_ssize_t n, Py_ssize_t k) noexcept nogil

cdef double mse_value(const floating* yhat, const floating* y, Py_ssize_t size) noexcept nogil
