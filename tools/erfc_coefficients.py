"""Print the Chebyshev coefficients of fastdense.interop.onnx_export's float64 erfc.

ONNX Runtime has no float64 Erf kernel, so a float64 GELU is exported with erfc(t),
t = |x| ≤ 6, built from ONNX arithmetic:

    t in [0, 2]:  erfc(t)              = Σ_k a_k T_k(t − 1)
    t in [2, 6]:  erfc(t) = e^(−t²) · Σ_k b_k T_k((t − 4) / 2)     (the sum is erfcx(t))

The coefficients are the Chebyshev interpolants at N first-kind nodes, computed here with
40-digit mpmath and rounded to float64 once. Run ``python tools/erfc_coefficients.py``
(needs mpmath) to regenerate the two tables and see the float64 evaluation's largest
absolute error against mpmath's erfc on a fine grid (at the level of
float64's rounding of 1, about 2.2e-16, on [0, 2] and far below it on [2, 6]).
"""
import mpmath
import numpy as np

mpmath.mp.dps = 40


def chebyshev(f, lo, hi, n):
    theta = [mpmath.pi * (j + mpmath.mpf(1) / 2) / n for j in range(n)]
    values = [f((mpmath.cos(t) * (hi - lo) + (lo + hi)) / 2) for t in theta]
    coeffs = [sum(values[j] * mpmath.cos(k * theta[j]) for j in range(n)) * 2 / n
              for k in range(n)]
    coeffs[0] /= 2
    return [float(c) for c in coeffs]


def clenshaw(c, u):
    b1 = b2 = 0.0
    for ck in c[:0:-1]:
        b1, b2 = 2 * u * b1 - b2 + ck, b1
    return u * b1 - b2 + c[0]


def main():
    small = chebyshev(mpmath.erfc, 0, 2, 24)
    large = chebyshev(lambda t: mpmath.erfc(t) * mpmath.exp(t * t), 2, 6, 22)
    print("ERFC_0_2 = (" + ",\n            ".join(repr(c) for c in small) + ")")
    print("ERFCX_2_6 = (" + ",\n             ".join(repr(c) for c in large) + ")")
    t = np.linspace(0, 6, 30001)
    exact = np.array([float(mpmath.erfc(v)) for v in t])
    approx = np.where(t < 2, clenshaw(small, t - 1),
                      np.exp(-t * t) * clenshaw(large, (np.maximum(t, 2) - 4) / 2))
    err = np.abs(approx - exact)
    print(f"# largest error: {err[t < 2].max():.3g} on [0, 2), {err[t >= 2].max():.3g} "
          f"on [2, 6]")


if __name__ == "__main__":
    main()
