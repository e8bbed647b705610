# BLAS for the kernels: scipy.linalg.cython_blas (the BLAS SciPy ships and links), called
# from nogil code with no Python in between, as scikit-learn's _cython_blas does.
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm, saxpy, daxpy, sasum, dasum


cdef inline void gemm_rm(bint trans_a, bint trans_b, int m, int n, int k,
                         floating alpha, const floating* a, int lda,
                         const floating* b, int ldb,
                         floating beta, floating* c, int ldc) noexcept nogil:
    """C := alpha * op(A)·op(B) + beta * C, all row-major; C is m×n, op(A) m×k, op(B) k×n.

    A row-major product is the column-major product of the transposes (Cᵀ = op(B)ᵀ·op(A)ᵀ),
    so the operands are passed to the Fortran routine swapped and no data is copied.
    """
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>b, &ldb, <float*>a, &lda,
              &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double*>b, &ldb, <double*>a, &lda,
              &beta, c, &ldc)


cdef inline void axpy(Py_ssize_t n, floating alpha, const floating* x,
                      floating* y) noexcept nogil:
    """y := alpha·x + y over n values (in pieces of at most 2^30: BLAS counts are ints).
    OpenBLAS spreads a long one over its threads, which a fit's GEMMs have just woken."""
    cdef int m, one = 1
    cdef Py_ssize_t done = 0
    while done < n:
        m = <int>(n - done if n - done < (1 << 30) else (1 << 30))
        if floating is float:
            saxpy(&m, &alpha, <float*>(x + done), &one, y + done, &one)
        else:
            daxpy(&m, &alpha, <double*>(x + done), &one, y + done, &one)
        done += m


cdef inline double asum(Py_ssize_t n, const floating* x) noexcept nogil:
    """Σ|x_i| over n values (BLAS ?asum, in pieces of at most 2^30, the pieces summed in
    double)."""
    cdef int m, one = 1
    cdef Py_ssize_t done = 0
    cdef double total = 0
    while done < n:
        m = <int>(n - done if n - done < (1 << 30) else (1 << 30))
        if floating is float:
            total += sasum(&m, <float*>(x + done), &one)
        else:
            total += dasum(&m, <double*>(x + done), &one)
        done += m
    return total
