"""Fast inference copies of trained Keras models: batch normalization folded into the layer before it, and
arithmetic in bfloat16 on CPUs that compute it natively.

At inference a ``BatchNormalization`` layer is a fixed per-channel affine map, ``y = gamma * (x - mean) /
sqrt(var + eps) + beta`` (Ioffe & Szegedy 2015, eq. in Alg. 1 with the moving statistics). When it directly
follows a convolution or dense layer whose output nothing else reads, the map can be folded into that layer's
kernel and bias (Jacob et al. 2018, "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-
Only Inference", section 3.2): ``kernel' = kernel * s``, ``bias' = (bias - mean) * s + beta`` with
``s = gamma / sqrt(var + eps)``. The folded model computes the same function (up to float rounding) with one
pass over each activation map fewer per folded layer, which on a CPU is a large share of a small CNN's time.
"""

from __future__ import annotations

import numpy as np

#: Layers whose kernel's last axis is the output channel axis (Keras Conv1D/2D/3D and Dense).
_FOLDABLE = ("Conv1D", "Conv2D", "Conv3D", "Dense")


def _history(value) -> list[str]:
    """Names of the layers that made the tensors in ``value``, part of a functional model's config (nested
    lists/dicts of ``__keras_tensor__`` entries whose ``keras_history`` is ``[layer name, node, tensor]``)."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [value["config"]["keras_history"][0]]
        return [name for item in value.values() for name in _history(item)]
    if isinstance(value, list | tuple):
        return [name for item in value for name in _history(item)]
    return []


def _output_layers(model, config: dict | None = None) -> set[str]:
    """Names of the layers whose outputs are ``model``'s outputs (functional or Sequential); ``config`` is the
    functional model's ``get_config()`` when the caller has it already."""
    if type(model).__name__ == "Sequential":
        return {model.layers[-1].name}
    outputs = (config or model.get_config())["output_layers"]
    entries = outputs if outputs and isinstance(outputs[0], list) else [outputs]
    return {entry[0] for entry in entries}


def _foldable_pairs(model) -> dict:
    """``{batch-norm layer name: the layer it folds into}`` for every foldable pair of the functional ``model``'s own
    layers, read from its config (each layer's calls and the tensors each call reads)."""
    config = model.get_config()
    calls = {layer["name"]: [_history(node) for node in layer["inbound_nodes"]] for layer in config["layers"]}
    readers: dict[str, int] = {}  # calls that read each layer's output, plus one if it is a model output
    for nodes in calls.values():
        for sources in nodes:
            for name in set(sources):
                readers[name] = readers.get(name, 0) + 1
    for name in _output_layers(model, config):
        readers[name] = readers.get(name, 0) + 1
    pairs = {}
    for layer in model.layers:
        if type(layer).__name__ != "BatchNormalization" or layer.axis not in (-1, len(layer.input.shape) - 1):
            continue
        nodes = calls[layer.name]
        if len(nodes) != 1 or len(nodes[0]) != 1:  # reused, or reading several tensors
            continue
        source = model.get_layer(nodes[0][0])
        if (
            type(source).__name__ in _FOLDABLE
            and len(calls[source.name]) == 1
            and readers.get(source.name) == 1
            and source.get_config().get("activation") == "linear"
        ):
            pairs[layer.name] = source
    return pairs


def has_layer_graph(model) -> bool:
    """Whether ``model`` is functional or Sequential: its layers and their connections are known (a subclassed
    model's are not), so :func:`fold_batch_norms` can work on it."""
    return type(model).__name__ in ("Functional", "Sequential")


def fold_batch_norms(model):
    """A copy of the functional or Sequential Keras ``model`` for inference, each ``BatchNormalization`` that
    directly follows a ``Conv1D``/``Conv2D``/``Conv3D``/``Dense`` layer (linear activation, output read by the
    batch norm only) folded into that layer's kernel and bias and left out.

    The copy takes and returns what ``model`` does (same input and output shapes and dtypes; predictions equal to
    float32 rounding, ~1e-6) and keeps every other layer and its weights. Batch norms that cannot be folded (after
    a pooling or an addition, on a channel axis other than the last) stay as they are. Do not train the copy: its
    folded layers no longer normalize with batch statistics.

    Raises:
        ValueError: ``model`` is a subclassed model (its graph of layers is not known).
    """
    import keras

    if not has_layer_graph(model):
        raise ValueError(f"fold_batch_norms needs a functional or Sequential Keras model, got {type(model).__name__}")
    if type(model).__name__ == "Sequential":  # the same layers as a functional graph, so that layers can be skipped
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    pairs = _foldable_pairs(model)
    folded_into = {source.name: model.get_layer(bn) for bn, source in pairs.items()}

    def clone(layer):
        config = layer.get_config()
        if layer.name in folded_into:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    def call(layer, *args, **kwargs):
        return args[0] if layer.name in pairs else layer(*args, **kwargs)  # a folded batch norm: skipped

    copy = keras.models.clone_model(model, clone_function=clone, call_function=call)
    for layer in model.layers:
        if layer.name in pairs or not layer.weights:
            continue
        target = copy.get_layer(layer.name)
        if layer.name not in folded_into:
            target.set_weights(layer.get_weights())
            continue
        bn = folded_into[layer.name]
        kernel = np.asarray(layer.kernel, dtype=np.float64)
        channels = kernel.shape[-1]
        bias = np.asarray(layer.bias, dtype=np.float64) if layer.use_bias else np.zeros(channels)
        gamma = np.asarray(bn.gamma, dtype=np.float64) if bn.scale else np.ones(channels)
        beta = np.asarray(bn.beta, dtype=np.float64) if bn.center else np.zeros(channels)
        scale = gamma / np.sqrt(np.asarray(bn.moving_variance, dtype=np.float64) + bn.epsilon)
        new_bias = (bias - np.asarray(bn.moving_mean, dtype=np.float64)) * scale + beta
        dtype = layer.kernel.dtype
        target.set_weights([(kernel * scale).astype(dtype), new_bias.astype(dtype)])
    return copy


def in_bfloat16(model):
    """A copy of the functional or Sequential Keras ``model`` whose layers compute in bfloat16 (Keras's
    ``"mixed_bfloat16"`` policy: bfloat16 arithmetic, the same float32 weights), its output layer in float32, for
    fast inference on a CPU for which :func:`course.cpu.cpu_has_bfloat16` is true. Use it on such a CPU only:
    elsewhere bfloat16 is emulated (slower than float32) or, where oneDNN has no bfloat16 convolution, prediction
    fails.

    The copy takes and returns what ``model`` does (the same shapes; float32 output). bfloat16 keeps float32's
    exponent and 8 of its 24 significand bits (Kalamkar et al. 2019, "A Study of BFLOAT16 for Deep Learning
    Training"), so predicted probabilities differ by up to about 1e-2 and an argmax flips only where two classes
    are that close. Keep it for inference: save and grade the float32 model, which loads on any CPU.

    Raises:
        ValueError: ``model`` is a subclassed model (its graph of layers is not known).
    """
    import keras

    if not has_layer_graph(model):
        raise ValueError(f"in_bfloat16 needs a functional or Sequential Keras model, got {type(model).__name__}")
    outputs = _output_layers(model)

    def clone(layer):
        config = layer.get_config()
        if layer.name not in outputs and "dtype" in config:
            config["dtype"] = "mixed_bfloat16"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
