"""The classic network: 10 inputs → 10 ReLU → 10 ReLU → 1 linear, MSE, SGD, on random data.

    python examples/classic.py [--epochs 100]
"""
import argparse

import numpy as np

import fastdense as fd


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.random((1000, 10), dtype=np.float32)
    y = rng.random((1000, 1), dtype=np.float32)

    model = fd.Sequential([
        fd.Dense(10, activation="relu", input_dim=10),
        fd.Dense(10, activation="relu"),
        fd.Dense(1),
    ], dtype="float32", seed=0)
    model.compile(optimizer=fd.optimizers.SGD(learning_rate=0.01), loss="mse")
    history = model.fit(X, y, epochs=args.epochs, batch_size=32, verbose=0)

    # y is random and unrelated to X: what a network can learn is y's mean, whose MSE
    # is y's variance (less only by memorising the training samples)
    print(f"final training loss {history.history['loss'][-1]:.4f}, "
          f"evaluate {model.evaluate(X, y):.4f}; variance of y {y.var():.4f}")
    return history


if __name__ == "__main__":
    main()
