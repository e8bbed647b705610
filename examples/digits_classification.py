"""Classifying the bundled 8×8 digits: a 64-64 ReLU network with a softmax output, trained
with sparse categorical cross-entropy on the digit labels and Adam; prints the held-out
accuracy and the confusion matrix, and draws the loss and accuracy per epoch.

    python examples/digits_classification.py [--epochs 30] [--plot digits.png]
"""
import argparse

import numpy as np

import fastdense as fd
from fastdense.datasets import load_digits, train_test_split


def confusion_matrix(true, predicted, n_classes):
    """counts[i, j]: samples of class i predicted as j."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (true, predicted), 1)
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--plot", default=None, metavar="PATH",
                        help="draw loss and accuracy per epoch to this image (matplotlib)")
    args = parser.parse_args(argv)

    X, digits = load_digits()
    X = (X / 16.0).astype(np.float32)              # pixels 0..16 → 0..1
    X_train, X_test, y_train, y_test = train_test_split(X, digits, test_size=0.25, seed=0)

    model = fd.Sequential([
        fd.Dense(64, activation="relu", input_dim=64),
        fd.Dense(64, activation="relu"),
        fd.Dense(10, activation="softmax"),
    ], seed=0)
    model.compile(optimizer=fd.optimizers.Adam(learning_rate=1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(X_train, y_train, epochs=args.epochs, batch_size=32,
                        validation_split=0.1, verbose=0)

    loss, accuracy = model.evaluate(X_test, y_test)
    predicted = model.predict(X_test).argmax(axis=1)
    print(f"test accuracy {accuracy:.3f} on {len(X_test)} digits (test loss {loss:.4f})")
    print("confusion matrix (rows: true digit, columns: predicted):")
    print("     " + " ".join(f"{j:4d}" for j in range(10)))
    for i, row in enumerate(confusion_matrix(y_test, predicted, 10)):
        print(f"{i:4d} " + " ".join(f"{c:4d}" for c in row))
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        h = history.history
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
        ax1.plot(h["loss"], label="training")
        ax1.plot(h["val_loss"], label="validation")
        ax1.set(xlabel="epoch", ylabel="cross-entropy")
        ax2.plot(h["accuracy"], label="training")
        ax2.plot(h["val_accuracy"], label="validation")
        ax2.set(xlabel="epoch", ylabel="accuracy")
        ax1.legend()
        fig.tight_layout()
        fig.savefig(args.plot)
        print(f"plot: {args.plot}")
    return accuracy


if __name__ == "__main__":
    main()
