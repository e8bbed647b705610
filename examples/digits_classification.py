"""Classifying the bundled 8×8 digits with MSE on one-hot targets: ten linear outputs, one
per digit, trained towards 1 for the right digit and 0 for the others; the predicted digit
is the largest output.

    python examples/digits_classification.py [--epochs 30]
"""
import argparse

import numpy as np

import fastdense as fd
from fastdense.datasets import load_digits, train_test_split


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)

    X, digits = load_digits()
    X = X / 16.0                                   # pixels 0..16 → 0..1
    one_hot = np.eye(10)[digits]                   # digit 3 → [0, 0, 0, 1, 0, …, 0]
    X_train, X_test, Y_train, Y_test = train_test_split(X, one_hot, test_size=0.25, seed=0)

    model = fd.Sequential([
        fd.Dense(64, activation="relu", input_dim=64),
        fd.Dense(10),
    ], seed=0)
    model.compile(optimizer=fd.optimizers.Adam(learning_rate=3e-3), loss="mse")
    model.fit(X_train, Y_train, epochs=args.epochs, batch_size=32, verbose=0)

    predicted = model.predict(X_test).argmax(axis=1)
    accuracy = float(np.mean(predicted == Y_test.argmax(axis=1)))
    print(f"test accuracy {accuracy:.3f} on {len(X_test)} digits "
          f"(test MSE {model.evaluate(X_test, Y_test):.4f})")
    return accuracy


if __name__ == "__main__":
    main()
