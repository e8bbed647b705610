"""Training in a background thread while the main thread serves predictions.

The trainer owns its model; after every epoch it publishes a copy of the weights. The main
thread serves from a second model of the same shape, loading the newest published weights
before each request, so every answer comes from one complete epoch's weights, never from a
half-updated buffer. fit runs its epoch loop in compiled code without the GIL, so the two
threads run side by side.

    python examples/background_training.py [--epochs 300]
"""
import argparse
import threading
import time

import numpy as np

import fastdense as fd
from fastdense.datasets import load_diabetes, standardize


def build(seed=0):
    return fd.Sequential([fd.Dense(32, activation="relu", input_dim=10),
                          fd.Dense(32, activation="relu"),
                          fd.Dense(1)], seed=seed)


class Published:
    """The newest weights and their epoch, handed from the trainer to the server."""

    def __init__(self, weights):
        self._lock = threading.Lock()
        self.weights, self.epoch = weights, 0

    def put(self, weights, epoch):
        with self._lock:
            self.weights, self.epoch = weights, epoch

    def get(self):
        with self._lock:
            return self.weights, self.epoch


def train(model, X, y, epochs, published, done):
    model.compile(optimizer=fd.optimizers.Adam(learning_rate=1e-3), loss="mse")
    for epoch in range(1, epochs + 1):
        model.fit(X, y, epochs=1, batch_size=32, verbose=0)
        published.put(model.get_weights(), epoch)
    done.set()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300)
    args = parser.parse_args(argv)

    X, y = load_diabetes()
    X, = standardize(X)
    y, = standardize(y.reshape(-1, 1))

    trainer_model, server = build(), build()
    published = Published(trainer_model.get_weights())
    done = threading.Event()
    thread = threading.Thread(target=train, name="trainer", daemon=True,
                              args=(trainer_model, X, y, args.epochs, published, done))
    thread.start()

    served, loaded = [], -1
    rng = np.random.default_rng(1)
    while True:
        finished = done.is_set()                 # read before the last request is served
        weights, epoch = published.get()
        if epoch != loaded:
            server.set_weights(weights)
            loaded = epoch
        request = X[rng.integers(len(X), size=8)]     # a request: 8 patients
        server.predict(request)
        served.append(epoch)
        if finished:
            break
        time.sleep(0.001)
    thread.join()

    epochs_seen = sorted(set(served))
    print(f"served {len(served)} requests while training {args.epochs} epochs, from "
          f"{len(epochs_seen)} different snapshots (epochs {epochs_seen[0]}…{epochs_seen[-1]})")
    print(f"final training MSE (standardised) {server.evaluate(X, y):.4f}")
    return served


if __name__ == "__main__":
    main()
