"""A tiny SCRFD-shaped ONNX detector with random weights, for tests and the benchmark.

It has the interface insightface's ``SCRFD`` reads from ``det_10g.onnx`` (the SCRFD-10G of
insightface's ``buffalo_l`` pack): one input ``input.1`` of shape [1, 3, ?, ?] and nine
rank-2 outputs, in the order insightface decodes them: the scores of strides 8, 16, 32
([h*w*2, 1]: two anchors per position, position-major), then their box distances
([h*w*2, 4], in units of the stride), then their five keypoints ([h*w*2, 10]).

Each stride's heads are one convolution of kernel and step the stride over the input
(random weights). The score head also carries a planted detector, so that tests know
where faces are: the mean of (red - blue) over the cell, times ``gain``, plus ``bias``
(the input is insightface's blob: RGB, (x - 127.5) / 128). A saturated red patch scores
near 1, grey, black and white (the detector's padding) near sigmoid(bias).

``trunk`` > 0 puts that many random 3x3 convolutions (``width`` channels) before the heads
instead, as a stand-in for the real network's cost; the benchmark uses it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

STRIDES = (8, 16, 32)
ANCHORS = 2


def _init(name: str, array: np.ndarray):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name)


def tiny_scrfd(path: Path, seed: int = 0, gain: float = 6.0, bias: float = -4.0,
               noise: float = 0.002, trunk: int = 0, width: int = 32) -> Path:
    """Write the model to ``path`` (see the module doc) and return ``path``."""
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    feat, cin = "input.1", 3
    if trunk:
        for i in range(trunk):  # strides 2, 2, 2 then 1: a stride-8 feature map
            step = 2 if i < 3 else 1
            w = rng.normal(0, (2.0 / (9 * cin)) ** 0.5, (width, cin, 3, 3))
            inits.append(_init(f"trunk{i}.w", w))
            nodes += [helper.make_node("Conv", [feat, f"trunk{i}.w"], [f"trunk{i}.c"],
                                       kernel_shape=[3, 3], strides=[step, step],
                                       pads=[1, 1, 1, 1]),
                      helper.make_node("Relu", [f"trunk{i}.c"], [f"trunk{i}"])]
            feat, cin = f"trunk{i}", width
    outs = {"score": [], "bbox": [], "kps": []}
    for s in STRIDES:
        k = s if not trunk else max(1, s // 8)  # the heads' kernel and step over ``feat``
        for head, ch in (("score", 1), ("bbox", 4), ("kps", 10)):
            w = rng.normal(0, noise if head == "score" else 0.05, (ANCHORS * ch, cin, k, k))
            b = np.zeros(ANCHORS * ch)
            if head == "score":
                b[:] = bias if not trunk else -10.0  # the stand-in finds no face
                if not trunk:
                    w[:, 0] += gain / (k * k)
                    w[:, 2] -= gain / (k * k)
            name = f"{head}{s}"
            inits += [_init(f"{name}.w", w), _init(f"{name}.b", b)]
            nodes.append(helper.make_node("Conv", [feat, f"{name}.w", f"{name}.b"],
                                          [f"{name}.conv"], kernel_shape=[k, k],
                                          strides=[k, k]))
            x = f"{name}.conv"
            if head == "score":
                nodes.append(helper.make_node("Sigmoid", [x], [f"{name}.sig"]))
                x = f"{name}.sig"
            elif head == "bbox":  # distances of 1.5 to 2.5 strides from the anchor
                inits += [_init(f"{name}.half", np.array(0.5)), _init(f"{name}.two",
                                                                      np.array(2.0))]
                nodes += [helper.make_node("Tanh", [x], [f"{name}.tanh"]),
                          helper.make_node("Mul", [f"{name}.tanh", f"{name}.half"],
                                           [f"{name}.mul"]),
                          helper.make_node("Add", [f"{name}.mul", f"{name}.two"],
                                           [f"{name}.add"])]
                x = f"{name}.add"
            inits.append(helper.make_tensor(f"{name}.shape", TensorProto.INT64, [2], [-1, ch]))
            nodes += [helper.make_node("Transpose", [x], [f"{name}.t"], perm=[0, 2, 3, 1]),
                      helper.make_node("Reshape", [f"{name}.t", f"{name}.shape"], [name])]
            outs[head].append(helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                                            ["n", ch]))
    graph = helper.make_graph(
        nodes, "tiny_scrfd",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "?", "?"])],
        outs["score"] + outs["bbox"] + outs["kps"], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="datacomp-sci tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
