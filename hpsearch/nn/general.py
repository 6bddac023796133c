"""The general forward/backward of `MLP`, built from the layer functions of `hpsearch.nn.layers`.

Any activation, batchnorm, dropout and loss. Per hidden layer i (1-based):

    affine (or maxout) -> batchnorm (optional) -> activation -> dropout (train mode)

and an affine output layer. `forward` returns the scores and one cache per
layer; `backward` writes every gradient into the model's `grads` views.
Batchnorm's running statistics are updated in the model's `buffers` in train
mode. `hpsearch.nn.fused` gives the same numbers faster for ReLU networks
without batchnorm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hpsearch.nn import layers

if TYPE_CHECKING:
    from hpsearch.nn.model import MLP

__all__ = ["backward", "forward", "forward_with_activations", "hidden_forward"]


def forward(
    model: MLP, X: np.ndarray, mode: str, rng: np.random.Generator | None
) -> tuple[np.ndarray, list[Any]]:
    """Scores (N, num_scores) of X (N, D) in `mode` ("train" | "test") and per-layer caches."""
    caches: list[Any] = []
    out = X
    for i in range(1, model.num_layers):
        out, cache = hidden_forward(model, i, out, mode, rng)
        caches.append(cache)
    last = model.num_layers
    scores, cache = layers.affine_forward(out, model.params[f"W{last}"], model.params[f"b{last}"])
    caches.append(cache)
    return scores, caches


def forward_with_activations(model: MLP, X: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Test-mode scores (N, num_scores) and every hidden output: {"layer{i}": (N, H_i)}."""
    activations: dict[str, np.ndarray] = {}
    out = X
    for i in range(1, model.num_layers):
        out, _ = hidden_forward(model, i, out, "test", None)
        activations[f"layer{i}"] = out
    last = model.num_layers
    scores, _ = layers.affine_forward(out, model.params[f"W{last}"], model.params[f"b{last}"])
    return scores, activations


def hidden_forward(
    model: MLP, i: int, x: np.ndarray, mode: str, rng: np.random.Generator | None
) -> tuple[np.ndarray, Any]:
    """Hidden layer i of x (N, fan_in): output (N, H_i) and its cache
    (affine cache, batchnorm cache or None, activation cache, dropout cache or None)."""
    config, params = model.config, model.params
    activation = config.activation
    if activation == "maxout":
        z, affine_cache = layers.maxout_forward(
            x, params[f"W{i}"], params[f"b{i}"], config.maxout_pieces
        )
    else:
        z, affine_cache = layers.affine_forward(x, params[f"W{i}"], params[f"b{i}"])
    bn_cache = None
    if config.batchnorm:
        z, bn_cache = _batchnorm_forward(model, i, z, mode)
    act_cache: Any = None
    if activation in ("relu", "tanh", "sigmoid"):
        z, act_cache = getattr(layers, f"{activation}_forward")(z)
    elif activation == "leaky_relu":
        z, act_cache = layers.leaky_relu_forward(z, config.leaky_alpha)
    elif activation == "prelu":
        z, act_cache = layers.prelu_forward(z, params[f"alpha{i}"])
    drop_cache = None
    if mode == "train" and config.keep_prob < 1.0:
        assert rng is not None
        z, drop_cache = layers.dropout_forward(z, config.keep_prob, "train", rng)
    return z, (affine_cache, bn_cache, act_cache, drop_cache)


def _batchnorm_forward(model: MLP, i: int, z: np.ndarray, mode: str) -> tuple[np.ndarray, Any]:
    running_mean = model.buffers[f"running_mean{i}"]
    running_var = model.buffers[f"running_var{i}"]
    bn_param = {"mode": mode, "running_mean": running_mean, "running_var": running_var}
    out, cache = layers.batchnorm_forward(
        z, model.params[f"gamma{i}"], model.params[f"beta{i}"], bn_param
    )
    if mode == "train":
        running_mean[...] = bn_param["running_mean"]
        running_var[...] = bn_param["running_var"]
    return out, cache


def backward(model: MLP, dscores: np.ndarray, caches: list[Any]) -> None:
    """Back-propagate dscores (N, num_scores) through `caches`; write all of `model.grads`."""
    grads, activation = model.grads, model.config.activation
    last = model.num_layers
    dx: Any
    dx, grads[f"W{last}"][...], grads[f"b{last}"][...] = layers.affine_backward(
        dscores, caches[-1], need_dx=last > 1
    )
    for i in range(last - 1, 0, -1):
        affine_cache, bn_cache, act_cache, drop_cache = caches[i - 1]
        if drop_cache is not None:
            dx = layers.dropout_backward(dx, drop_cache)
        if activation == "prelu":
            dx, grads[f"alpha{i}"][...] = layers.prelu_backward(dx, act_cache)
        elif activation != "maxout":
            dx = getattr(layers, f"{activation}_backward")(dx, act_cache)
        if bn_cache is not None:
            dx, grads[f"gamma{i}"][...], grads[f"beta{i}"][...] = layers.batchnorm_backward(
                dx, bn_cache
            )
        if activation == "maxout":
            dx, grads[f"W{i}"][...], grads[f"b{i}"][...] = layers.maxout_backward(dx, affine_cache)
        else:
            dx, grads[f"W{i}"][...], grads[f"b{i}"][...] = layers.affine_backward(
                dx, affine_cache, need_dx=i > 1
            )
