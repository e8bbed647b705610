"""fastdense's optimizers on your own NumPy arrays: ``opt.apply(grads, params)`` updates
the parameters in place with the fused compiled kernel, keeping its state per array.

Here: least-squares fitting of y ≈ X·w + b with hand-written gradients, once with Adam and
once with SGD with momentum, against NumPy's exact solution; then the state is saved and
restored.

    python examples/optimizers_numpy.py [--steps 2000]
"""
import argparse

import numpy as np

import fastdense as fd


def gradients(X, y, w, b):
    """MSE of X·w + b against y, and its gradient with respect to w and b."""
    r = X @ w + b - y
    return float(np.mean(r ** 2)), 2 * X.T @ r / len(y), np.array([2 * r.mean()])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.7 + 0.1 * rng.standard_normal(200)
    exact = np.linalg.lstsq(np.column_stack([X, np.ones(200)]), y, rcond=None)[0]

    results = {}
    for opt in (fd.optimizers.Adam(learning_rate=0.05),
                fd.optimizers.SGD(learning_rate=0.05, momentum=0.9)):
        w, b = np.zeros(5), np.zeros(1)            # float64 arrays, updated in place
        for _ in range(args.steps):
            loss, gw, gb = gradients(X, y, w, b)
            opt.apply([gw, gb], [w, b])
        error = float(np.max(np.abs(np.append(w, b) - exact)))
        results[opt.name] = error
        print(f"{opt.name:<5} after {opt.iterations} steps: loss {loss:.5f}, largest "
              f"distance from the exact solution {error:.2e}")

    # the state is plain arrays: save it, and a fresh optimizer resumes exactly there
    w, b = np.zeros(5), np.zeros(1)
    adam = fd.optimizers.Adam(learning_rate=0.05)
    adam.apply(list(gradients(X, y, w, b)[1:]), [w, b])
    saved = adam.get_state()
    resumed = fd.optimizers.Adam.from_config(adam.get_config())
    resumed.set_state(saved)
    w2, b2 = w.copy(), b.copy()
    grads = list(gradients(X, y, w, b)[1:])
    adam.apply(grads, [w, b])
    resumed.apply(grads, [w2, b2])
    print(f"restored optimizer takes the same step: {np.array_equal(w, w2)}; its state: "
          f"{[v.shape for v in resumed.variables]} (m and v of w, then of b)")
    return results


if __name__ == "__main__":
    main()
