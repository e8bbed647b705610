# BLAS for the kernels: scipy.linalg.cython_blas (the BLAS SciPy ships and links), called
# from nogil code with no Python in between, as scikit-learn's _cython_blas does.
from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm


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
