"""Regression on the bundled diabetes data: split, standardise with the training part's
statistics, train with Adam while watching the validation loss, report the test error in
the target's units next to the predict-the-mean baseline.

    python examples/diabetes_regression.py [--epochs 40]
"""
import argparse

import numpy as np

import fastdense as fd
from fastdense.datasets import load_diabetes, train_test_split


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args(argv)

    X, y = load_diabetes()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0)
    x_mean, x_std = X_train.mean(axis=0), X_train.std(axis=0)
    y_mean, y_std = y_train.mean(), y_train.std()

    def scale_x(a):
        return (a - x_mean) / x_std

    model = fd.Sequential([
        fd.Dense(32, activation="relu", input_dim=X.shape[1]),
        fd.Dense(16, activation="relu"),
        fd.Dense(1),
    ], seed=0)
    model.compile(optimizer=fd.optimizers.Adam(learning_rate=1e-3), loss="mse")
    history = model.fit(scale_x(X_train), (y_train - y_mean) / y_std, epochs=args.epochs,
                        batch_size=32, verbose=0,
                        validation_data=(scale_x(X_test), (y_test - y_mean) / y_std))
    best = int(np.argmin(history.history["val_loss"]))
    print(f"lowest validation loss {history.history['val_loss'][best]:.4f} "
          f"(standardised) after {best + 1} of {args.epochs} epochs")

    # predictions back in the target's units
    pred = model.predict(scale_x(X_test))[:, 0] * y_std + y_mean
    test_mse = float(np.mean((pred - y_test) ** 2))
    baseline = float(np.mean((y_train.mean() - y_test) ** 2))
    print(f"test MSE {test_mse:.1f}; predicting the training mean: {baseline:.1f}")
    return test_mse, baseline


if __name__ == "__main__":
    main()
