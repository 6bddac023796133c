"""Training throughput of hpsearch's NumPy MLP against PyTorch, measured in one run.

For 3072-512-512-10 (batch 256) and 64-100-10 (batch 64), float32 random data,
BLAS pinned to one thread (threadpoolctl for numpy, torch.set_num_threads(1)):
samples/s of one `hpsearch.nn.trainer.train` call of one epoch (input
validation, shuffle, batch gather, forward, softmax loss, backward, L2 on the
weights, SGD-momentum update, the per-iteration loss and divergence check, the
end-of-epoch validation loss and accuracy on VALIDATION examples, and the
trainer's other once-per-epoch statistics) and of the same loop in PyTorch
(nn.Sequential of Linear/ReLU, CrossEntropyLoss, torch.optim.SGD with momentum
and weight_decay = l2, loss.item() every iteration, validation loss and
accuracy under no_grad at the end of the epoch). The PyTorch loop computes no
histograms, update ratios or training-accuracy subsample; the trainer does.

Epoch sizes: the big net is CIFAR-10-shaped, so its epoch is the notes'
CIFAR-10 training split (49,000 examples, 1,000 for validation); the small
one trains 800 batches of 64. The trainer's once-per-call and once-per-epoch
work is amortized over such an epoch as in a real run.
REPEATS interleaved repeats (hpsearch, then torch, then hpsearch...): median
samples/s of each, the median of the per-repeat ratios (each pair ran back to
back, so it shares the machine's load), their range, the ratio of the best
rates, and the share of the machine's float32 GEMM peak (a large np.matmul,
measured in the same run) reached by the median hpsearch rate.

Run: python bench/train_throughput.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from hpsearch.nn.model import MLP, MLPConfig
from hpsearch.nn.trainer import TrainerConfig, train

try:
    import torch
except ImportError:  # the torch column is skipped
    torch = None

CASES = (((3072, 512, 512, 10), 256, 49_000), ((64, 100, 10), 64, 51_200))  # dims, batch, examples
VALIDATION = 1_000
L2 = 1e-4
LEARNING_RATE = 1e-3
MOMENTUM = 0.9


def gemm_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of a size x size x size np.matmul."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)
    best = min(_timed(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(function) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def flops_per_sample(dims: tuple[int, ...]) -> int:
    """Forward 2*D*M per layer, backward 2*D*M for dW plus 2*D*M for dx except layer 1."""
    layers = list(itertools.pairwise(dims))
    return sum(6 * d * m for d, m in layers) - 2 * dims[0] * dims[1]


def make_data(dims: tuple[int, ...], count: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((count, dims[0]), dtype=np.float32)
    y = rng.integers(0, dims[-1], count)
    return X, y


Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # X, y, X_val, y_val


def hpsearch_rate(dims: tuple[int, ...], batch: int, data: Data) -> float:
    config = MLPConfig(input_dim=dims[0], output_dim=dims[-1], hidden_sizes=dims[1:-1], l2=L2)
    model = MLP(config, np.random.default_rng(0))
    trainer_config = TrainerConfig(
        epochs=1, batch_size=batch, rule="momentum", learning_rate=LEARNING_RATE,
        momentum=MOMENTUM, train_accuracy_samples=1, seed=0,
    )  # fmt: skip
    start = time.perf_counter()
    result = train(model, *data, trainer_config)
    elapsed = time.perf_counter() - start
    assert result.status == "completed", result.reason
    return len(data[0]) / elapsed


def torch_rate(dims: tuple[int, ...], batch: int, data: Data) -> float:
    assert torch is not None
    torch.manual_seed(0)
    modules: list = []
    for i, (d, m) in enumerate(itertools.pairwise(dims)):
        modules.append(torch.nn.Linear(d, m))
        if i < len(dims) - 2:
            modules.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*modules)
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(
        net.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM, weight_decay=L2
    )
    X_t, y_t, X_val, y_val = map(torch.from_numpy, data)

    def epoch() -> tuple[float, float, float]:
        """Mean training loss, validation loss and accuracy (like the trainer's record)."""
        order = torch.randperm(len(X_t))
        total, starts = 0.0, range(0, len(X_t), batch)
        for start in starts:
            index = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(X_t[index]), y_t[index])
            loss.backward()
            optimizer.step()
            total += loss.item()
        with torch.no_grad():
            scores = net(X_val)
            accuracy = (scores.argmax(dim=1) == y_val).float().mean().item()
            return total / len(starts), loss_fn(scores, y_val).item(), accuracy

    return len(X_t) / _timed(epoch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if torch is not None:
        torch.set_num_threads(1)
    else:
        print("torch is not importable: the PyTorch column is skipped")
    with threadpool_limits(limits=1):
        peak = gemm_peak_gflops()
        print(f"float32 GEMM peak (1 thread, 2048^3 np.matmul): {peak:.1f} GFLOP/s")
        header = (
            f"{'network':<18}{'batch':>6}{'hpsearch/s':>12}{'torch/s':>10}"
            f"{'ratio':>7}{'range':>12}{'best':>6}{'% peak':>8}"
        )
        print(header)
        for dims, batch, examples in CASES:
            print(_case_row(dims, batch, examples, args.repeats, peak))


def _case_row(dims: tuple[int, ...], batch: int, examples: int, repeats: int, peak: float) -> str:
    X, y = make_data(dims, examples + VALIDATION)
    data = (X[:examples], y[:examples], X[examples:], y[examples:])
    warm_up = (X[: batch * 2], y[: batch * 2], X[examples:], y[examples:])
    ours, theirs = [], []
    hpsearch_rate(dims, batch, warm_up)
    if torch is not None:
        torch_rate(dims, batch, warm_up)
    for _ in range(repeats):
        ours.append(hpsearch_rate(dims, batch, data))
        if torch is not None:
            theirs.append(torch_rate(dims, batch, data))
    rate = statistics.median(ours)
    share = 100 * rate * flops_per_sample(dims) / (peak * 1e9)
    name = "-".join(map(str, dims))
    if not theirs:
        return f"{name:<18}{batch:>6}{rate:>12.0f}{'-':>10}{'-':>7}{'-':>12}{'-':>6}{share:>7.1f}%"
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    spread, best = f"{min(ratios):.2f}-{max(ratios):.2f}", max(ours) / max(theirs)
    return (
        f"{name:<18}{batch:>6}{rate:>12.0f}{statistics.median(theirs):>10.0f}"
        f"{statistics.median(ratios):>7.2f}{spread:>12}{best:>6.2f}{share:>7.1f}%"
    )


if __name__ == "__main__":
    main()
