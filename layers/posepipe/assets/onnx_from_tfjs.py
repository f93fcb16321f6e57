"""Converting a TensorFlow.js graph model to ONNX, op by op, for ONNX Runtime.

The graph keeps TensorFlow's layout (NHWC): convolutions, pooling and resizing, which ONNX
defines on NCHW, are wrapped in transposes, and ONNX Runtime's optimiser removes the pairs that
cancel. Integer tensors stay int32 as in TensorFlow (cast where ONNX wants int64). A node whose
inputs are all constants is evaluated here with NumPy (shape arithmetic, padding tables), so
the ONNX graph holds only what depends on the input. ``outputs`` may name inner nodes: the graph
is then cut there (the decoding that follows is done in Python, where it can be read and tuned).

Only the ops the catalogue's graphs use are supported; any other stops the conversion with its
name. Each converted network is checked against outputs of the original graph run by
TensorFlow.js (``tests/fixtures/golden``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from posepipe.assets.tfjs_graph import Graph, Node
from posepipe.errors import ModelError

OPSET = 18
_NCHW = [0, 3, 1, 2]
_NHWC = [0, 2, 3, 1]
_DTYPE_NAMES = {"DT_FLOAT": np.float32, "DT_INT32": np.int32, "DT_BOOL": np.bool_, "DT_INT64": np.int64}


class _Builder:
    """The ONNX nodes, initialisers and names made so far."""

    def __init__(self, graph: Graph) -> None:
        import onnx.helper

        self.helper = onnx.helper
        self.graph = graph
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.constants: dict[str, npt.NDArray[Any]] = {}  # tensor name -> value, folded
        self.names: dict[tuple[str, int], str] = {}  # TF (node, output) -> ONNX tensor name
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}__{self._count}"

    def constant(self, value: npt.NDArray[Any], hint: str = "const") -> str:
        import onnx.numpy_helper

        name = self.fresh(hint)
        self.initializers.append(onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], hint: str, outputs: int = 1, **attrs: Any) -> list[str]:
        names = [self.fresh(hint) for _ in range(outputs)]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), names, **attrs))
        return names

    def one(self, op_type: str, inputs: Sequence[str], hint: str, **attrs: Any) -> str:
        return self.op(op_type, inputs, hint, **attrs)[0]


def convert(graph: Graph, outputs: Sequence[str] | None = None, name: str = "model") -> bytes:
    """The ONNX model (serialised) computing ``outputs`` (node names, default the graph's)."""
    import onnx
    import onnx.helper

    wanted = list(outputs or graph.outputs)
    needed = _needed_nodes(graph, wanted)
    b = _Builder(graph)
    onnx_inputs = []
    for node in graph.nodes:
        if node.name not in needed:
            continue
        if node.op == "Placeholder":
            shape, dtype = graph.inputs[node.name]
            elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(_DTYPE_NAMES[dtype]))
            dims: list[int | str] = [d if d >= 0 else f"{node.name}_{i}" for i, d in enumerate(shape)]
            onnx_inputs.append(onnx.helper.make_tensor_value_info(node.name, elem, dims))
            b.names[(node.name, 0)] = node.name
            continue
        if node.op == "Const":
            value = graph.constants[node.name]
            b.names[(node.name, 0)] = node.name
            b.constants[node.name] = value
            continue
        inputs = [b.names[ref] for ref in node.inputs]
        if all(name in b.constants for name in inputs) and node.op in _FOLD:
            values = _FOLD[node.op](node, [b.constants[name] for name in inputs])
            for index, value in enumerate(values):
                folded = f"{node.name}:{index}" if index else node.name
                b.names[(node.name, index)] = folded
                b.constants[folded] = np.asarray(value)
            continue
        handler = _OPS.get(node.op)
        if handler is None:
            raise ModelError(f"node {node.name}: TensorFlow op {node.op} is not supported by the converter")
        for index, result in enumerate(handler(b, node, inputs)):
            b.names[(node.name, index)] = result
    # Constants that ended up used by ONNX nodes become initialisers.
    used = {name for onnx_node in b.nodes for name in onnx_node.input}
    import onnx.numpy_helper

    for constant_name in sorted(used & set(b.constants)):
        b.initializers.append(
            onnx.numpy_helper.from_array(np.asarray(b.constants[constant_name]), constant_name)
        )
    onnx_outputs = []
    for output in wanted:
        source = b.names[(output, 0)]
        b.nodes.append(onnx.helper.make_node("Identity", [source], [output]))
        onnx_outputs.append(onnx.helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None))
    model_graph = onnx.helper.make_graph(b.nodes, name, onnx_inputs, onnx_outputs, b.initializers)
    model = onnx.helper.make_model(
        model_graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)], producer_name="posepipe"
    )
    model.ir_version = 8
    inferred = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(inferred)
    return bytes(inferred.SerializeToString())


def _needed_nodes(graph: Graph, outputs: Sequence[str]) -> set[str]:
    by_name = {node.name: node for node in graph.nodes}
    needed: set[str] = set()
    stack = list(outputs)
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        if name not in by_name:
            raise ModelError(f"the graph has no node {name!r}")
        needed.add(name)
        stack.extend(ref for ref, _ in by_name[name].inputs)
    return needed


# --- constant folding ------------------------------------------------------------------------


def _np_dtype(node: Node, key: str) -> Any:
    return _DTYPE_NAMES[node.dtype(key)]


def _fold_strided_slice(node: Node, values: list[npt.NDArray[Any]]) -> list[Any]:
    return [_strided_slice_np(values[0], node, values[1], values[2], values[3])]


def _strided_slice_np(x: npt.NDArray[Any], node: Node, begin: Any, end: Any, strides: Any) -> Any:
    index = _strided_slice_index(node, begin, end, strides, x.ndim)
    return x[tuple(index)]


def _strided_slice_index(node: Node, begin: Any, end: Any, strides: Any, ndim: int) -> list[Any]:
    """NumPy's index for a StridedSlice: an int (a shrunk axis), a slice, or None (a new axis)."""
    if node.integer("ellipsis_mask"):
        raise ModelError(f"node {node.name}: StridedSlice with an ellipsis is not supported")
    index: list[Any] = []
    for axis in range(len(begin)):
        bit = 1 << axis
        if node.integer("new_axis_mask") & bit:
            index.append(None)
            continue
        if node.integer("shrink_axis_mask") & bit:
            index.append(int(begin[axis]))
            continue
        start = None if node.integer("begin_mask") & bit else int(begin[axis])
        stop = None if node.integer("end_mask") & bit else int(end[axis])
        index.append(slice(start, stop, int(strides[axis])))
    return index


def _sparse_to_dense(node: Node, values: list[npt.NDArray[Any]]) -> list[Any]:
    indices, shape, sparse, default = values
    dense = np.full(np.asarray(shape).astype(np.int64), default, dtype=np.asarray(sparse).dtype)
    indices = np.asarray(indices)
    if indices.size == 0:
        return [dense]
    rows = indices.reshape(indices.shape[0], -1) if indices.ndim > 1 else indices[:, None]
    for row, value in zip(rows, np.broadcast_to(sparse, len(rows)), strict=True):
        dense[tuple(row)] = value
    return [dense]


_FOLD: dict[str, Callable[[Node, list[npt.NDArray[Any]]], list[Any]]] = {
    "Identity": lambda n, v: [v[0]],
    "Cast": lambda n, v: [v[0].astype(_np_dtype(n, "DstT"))],
    "Shape": lambda n, v: [np.array(v[0].shape, dtype=np.int32)],
    "Where": lambda n, v: [np.argwhere(v[0]).astype(np.int64)],
    "GatherV2": lambda n, v: [np.take(v[0], v[1], axis=int(v[2]))],
    "SparseToDense": _sparse_to_dense,
    "StridedSlice": _fold_strided_slice,
    "Pack": lambda n, v: [np.stack(v, axis=n.integer("axis"))],
    "ConcatV2": lambda n, v: [np.concatenate(v[:-1], axis=int(v[-1]))],
    "Reshape": lambda n, v: [v[0].reshape(v[1])],
    "ExpandDims": lambda n, v: [np.expand_dims(v[0], int(v[1]))],
    "Mul": lambda n, v: [v[0] * v[1]],
    "Add": lambda n, v: [v[0] + v[1]],
    "AddV2": lambda n, v: [v[0] + v[1]],
    "Sub": lambda n, v: [v[0] - v[1]],
    "FloorDiv": lambda n, v: [np.floor_divide(v[0], v[1])],
    "Fill": lambda n, v: [np.full(v[0], v[1])],
}


# --- ops ---------------------------------------------------------------------------------------


def _int64(b: _Builder, name: str) -> str:
    if name in b.constants:
        return b.constant(np.asarray(b.constants[name]).astype(np.int64), "i64")
    return b.one("Cast", [name], "i64", to=7)


def _const_value(b: _Builder, node: Node, name: str) -> npt.NDArray[Any]:
    if name not in b.constants:
        raise ModelError(f"node {node.name} ({node.op}): needs a constant input, got a computed one")
    return np.asarray(b.constants[name])


def _conv_pads(node: Node) -> dict[str, Any]:
    padding = node.string("padding", "VALID")
    if padding == "SAME":
        return {"auto_pad": "SAME_UPPER"}
    if padding == "VALID":
        return {"auto_pad": "VALID"}
    explicit = node.list_ints("explicit_paddings")  # NHWC: (before, after) per axis
    return {"pads": [explicit[2], explicit[4], explicit[3], explicit[5]]}


def _nhwc(node: Node) -> None:
    if node.string("data_format", "NHWC") != "NHWC":
        raise ModelError(f"node {node.name}: data format {node.string('data_format')} is not supported")


def _activation(b: _Builder, node: Node, x: str, op: str) -> str:
    if op in ("", "BiasAdd"):
        return x
    if op == "Relu":
        return b.one("Relu", [x], "relu")
    if op == "Relu6":
        return b.one(
            "Clip",
            [x, b.constant(np.array(0, dtype=np.float32)), b.constant(np.array(6, dtype=np.float32))],
            "relu6",
        )
    if op == "LeakyRelu":
        return b.one("LeakyRelu", [x], "leaky", alpha=node.number("leakyrelu_alpha", 0.2))
    if op == "Sigmoid":
        return b.one("Sigmoid", [x], "sigmoid")
    raise ModelError(f"node {node.name}: fused activation {op} is not supported")


def _conv(b: _Builder, node: Node, inputs: list[str], depthwise: bool) -> list[str]:
    _nhwc(node)
    x, weights = inputs[0], _const_value(b, node, inputs[1])
    if depthwise:  # [h, w, in, multiplier] -> [in * multiplier, 1, h, w], group = in
        h, w, channels, multiplier = weights.shape
        kernel = weights.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, h, w)
        group = channels
    else:  # [h, w, in, out] -> [out, in, h, w]
        kernel = weights.transpose(3, 2, 0, 1)
        group = 1
    fused = node.strings("fused_ops")
    conv_inputs = [
        b.one("Transpose", [x], "nchw", perm=_NCHW),
        b.constant(kernel.astype(np.float32), "kernel"),
    ]
    if fused:
        if fused[0] != "BiasAdd" or node.integer("num_args") != 1:
            raise ModelError(f"node {node.name}: fused ops {fused} are not supported")
        conv_inputs.append(b.constant(_const_value(b, node, inputs[2]).astype(np.float32), "bias"))
    strides = node.list_ints("strides")[1:3]
    dilations = node.list_ints("dilations")[1:3] or [1, 1]
    y = b.one(
        "Conv", conv_inputs, "conv", strides=strides, dilations=dilations, group=group, **_conv_pads(node)
    )
    for op in fused[1:]:
        y = _activation(b, node, y, op)
    return [b.one("Transpose", [y], "nhwc", perm=_NHWC)]


def _binary(onnx_op: str) -> Callable[[_Builder, Node, list[str]], list[str]]:
    return lambda b, node, inputs: [b.one(onnx_op, inputs[:2], onnx_op.lower())]


def _unary(onnx_op: str) -> Callable[[_Builder, Node, list[str]], list[str]]:
    return lambda b, node, inputs: [b.one(onnx_op, inputs[:1], onnx_op.lower())]


def _floordiv(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    if node.dtype("T") == "DT_FLOAT":
        return [b.one("Floor", [b.one("Div", inputs, "div")], "floor")]
    # Integer division in ONNX truncates; these graphs divide non-negative indices only.
    return [b.one("Div", inputs, "idiv")]


def _squared_difference(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    difference = b.one("Sub", inputs, "sub")
    return [b.one("Mul", [difference, difference], "square")]


def _relu6(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    return [_activation(b, node, inputs[0], "Relu6")]


def _leaky(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    return [b.one("LeakyRelu", inputs[:1], "leaky", alpha=node.number("alpha", 0.2))]


def _reduce(onnx_op: str) -> Callable[[_Builder, Node, list[str]], list[str]]:
    def reduce(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
        axes = _const_value(b, node, inputs[1]).astype(np.int64).reshape(-1)
        keep = int(node.flag("keep_dims"))
        return [b.one(onnx_op, [inputs[0], b.constant(axes, "axes")], onnx_op.lower(), keepdims=keep)]

    return reduce


def _concat(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    axis = int(_const_value(b, node, inputs[-1]))
    return [b.one("Concat", inputs[:-1], "concat", axis=axis)]


def _reshape(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    return [b.one("Reshape", [inputs[0], _int64(b, inputs[1])], "reshape")]


def _squeeze(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    axes = node.list_ints("squeeze_dims")
    if not axes:
        return [b.one("Squeeze", inputs[:1], "squeeze")]
    return [b.one("Squeeze", [inputs[0], b.constant(np.array(axes, dtype=np.int64), "axes")], "squeeze")]


def _expand_dims(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    axis = _const_value(b, node, inputs[1]).astype(np.int64).reshape(1)
    return [b.one("Unsqueeze", [inputs[0], b.constant(axis, "axes")], "unsqueeze")]


def _pack(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    axis = np.array([node.integer("axis")], dtype=np.int64)
    parts = [b.one("Unsqueeze", [name, b.constant(axis, "axes")], "unsqueeze") for name in inputs]
    return [b.one("Concat", parts, "pack", axis=node.integer("axis"))]


def _unpack(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    axis, count = node.integer("axis"), node.integer("num")
    parts = b.op("Split", inputs[:1], "split", outputs=count, axis=axis, num_outputs=count)
    axes = b.constant(np.array([axis], dtype=np.int64), "axes")
    return [b.one("Squeeze", [part, axes], "unstack") for part in parts]


def _split_v(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    sizes = _const_value(b, node, inputs[1]).astype(np.int64)
    axis = int(_const_value(b, node, inputs[2]))
    return b.op("Split", [inputs[0], b.constant(sizes, "sizes")], "splitv", outputs=len(sizes), axis=axis)


def _cast(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    import onnx.helper

    to = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(_np_dtype(node, "DstT")))
    return [b.one("Cast", inputs[:1], "cast", to=to)]


def _strided_slice(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    begin, end, strides = (_const_value(b, node, name) for name in inputs[1:4])
    index = _strided_slice_index(node, begin, end, strides, len(begin))
    starts, ends, axes, steps, squeeze, new_axes = [], [], [], [], [], []
    big = np.iinfo(np.int64).max
    input_axis = output_axis = 0
    for item in index:
        if item is None:  # a new axis of the output: inserted after slicing
            new_axes.append(output_axis)
            output_axis += 1
            continue
        if isinstance(item, int):
            starts.append(item)
            ends.append(item + 1 if item != -1 else big)
            steps.append(1)
            squeeze.append(input_axis)
        else:
            step = item.step or 1
            starts.append(item.start if item.start is not None else (0 if step > 0 else -1))
            ends.append(item.stop if item.stop is not None else (big if step > 0 else -big))
            steps.append(step)
            output_axis += 1
        axes.append(input_axis)
        input_axis += 1
    sliced = inputs[0]
    if axes:
        bounds = [b.constant(np.array(v, dtype=np.int64), "slice") for v in (starts, ends, axes, steps)]
        sliced = b.one("Slice", [sliced, *bounds], "slice")
    if squeeze:
        sliced = b.one("Squeeze", [sliced, b.constant(np.array(squeeze, dtype=np.int64), "axes")], "shrink")
    if new_axes:
        axes_name = b.constant(np.array(new_axes, dtype=np.int64), "axes")
        sliced = b.one("Unsqueeze", [sliced, axes_name], "newaxis")
    return [sliced]


def _gather(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    if node.integer("batch_dims"):
        raise ModelError(f"node {node.name}: GatherV2 with batch_dims is not supported")
    axis = int(_const_value(b, node, inputs[2]))
    return [b.one("Gather", inputs[:2], "gather", axis=axis)]


def _gather_nd(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    return [b.one("GatherND", [inputs[0], _int64(b, inputs[1])], "gathernd")]


def _arg_max(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    axis = int(_const_value(b, node, inputs[1]))
    index = b.one("ArgMax", inputs[:1], "argmax", axis=axis, keepdims=0)
    if node.dtype("output_type") == "DT_INT64":
        return [index]
    return [b.one("Cast", [index], "argmax32", to=6)]


def _top_k(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    k = _int64(b, inputs[1])
    k = b.one("Reshape", [k, b.constant(np.array([1], dtype=np.int64), "shape")], "k")
    values, indices = b.op("TopK", [inputs[0], k], "topk", outputs=2, axis=-1, largest=1, sorted=1)
    return [values, b.one("Cast", [indices], "topk32", to=6)]


def _resize(b: _Builder, node: Node, inputs: list[str], mode: str) -> list[str]:
    x = b.one("Transpose", inputs[:1], "nchw", perm=_NCHW)
    batch_channels = b.one(
        "Slice",
        [b.one("Shape", [x], "shape"), b.constant(np.array([0], dtype=np.int64), "s"),
         b.constant(np.array([2], dtype=np.int64), "e")],
        "nc",
    )  # fmt: skip
    sizes = b.one("Concat", [batch_channels, _int64(b, inputs[1])], "sizes", axis=0)
    if node.flag("align_corners"):
        transform = "align_corners"
    elif node.flag("half_pixel_centers"):
        transform = "half_pixel" if mode == "linear" else "tf_half_pixel_for_nn"
    else:
        transform = "asymmetric"
    attrs: dict[str, Any] = {"mode": mode, "coordinate_transformation_mode": transform}
    if mode == "nearest":
        attrs["nearest_mode"] = "round_prefer_ceil" if node.flag("align_corners") else "floor"
    y = b.one("Resize", [x, "", "", sizes], "resize", **attrs)
    return [b.one("Transpose", [y], "nhwc", perm=_NHWC)]


def _max_pool(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    _nhwc(node)
    x = b.one("Transpose", inputs[:1], "nchw", perm=_NCHW)
    kernel, strides = node.list_ints("ksize")[1:3], node.list_ints("strides")[1:3]
    y = b.one("MaxPool", [x], "maxpool", kernel_shape=kernel, strides=strides, **_conv_pads(node))
    return [b.one("Transpose", [y], "nhwc", perm=_NHWC)]


def _pad(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    table = _const_value(b, node, inputs[1]).astype(np.int64)
    pads = b.constant(np.concatenate([table[:, 0], table[:, 1]]), "pads")
    value = inputs[2] if node.op == "PadV2" else b.constant(np.array(0, dtype=np.float32), "zero")
    return [b.one("Pad", [inputs[0], pads, value], "pad", mode="constant")]


def _transpose(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    perm = [int(v) for v in _const_value(b, node, inputs[1])]
    return [b.one("Transpose", inputs[:1], "transpose", perm=perm)]


def _select(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    return [b.one("Where", inputs[:3], "where")]


def _add_n(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    return [b.one("Sum", inputs, "addn")]


def _shape(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    return [b.one("Cast", [b.one("Shape", inputs[:1], "shape")], "shape32", to=6)]


def _size(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    return [b.one("Cast", [b.one("Size", inputs[:1], "size")], "size32", to=6)]


def _range(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    return [b.one("Range", inputs[:3], "range")]


def _tile(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    return [b.one("Tile", [inputs[0], _int64(b, inputs[1])], "tile")]


def _fill(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    # TensorFlow's Fill(dims, value): the scalar value broadcast to the computed shape.
    return [b.one("Expand", [inputs[1], _int64(b, inputs[0])], "fill")]


def _split(b: _Builder, node: Node, inputs: list[str]) -> list[str]:
    axis, count = int(_const_value(b, node, inputs[0])), node.integer("num_split")
    return b.op("Split", inputs[1:2], "split", outputs=count, axis=axis, num_outputs=count)


_OPS: dict[str, Callable[[_Builder, Node, list[str]], list[str]]] = {
    "Identity": _unary("Identity"),
    "Conv2D": lambda b, n, i: _conv(b, n, i, depthwise=False),
    "_FusedConv2D": lambda b, n, i: _conv(b, n, i, depthwise=False),
    "DepthwiseConv2dNative": lambda b, n, i: _conv(b, n, i, depthwise=True),
    "FusedDepthwiseConv2dNative": lambda b, n, i: _conv(b, n, i, depthwise=True),
    "Add": _binary("Add"),
    "AddV2": _binary("Add"),
    "BiasAdd": _binary("Add"),
    "Sub": _binary("Sub"),
    "Mul": _binary("Mul"),
    "RealDiv": _binary("Div"),
    "Maximum": _binary("Max"),
    "Minimum": _binary("Min"),
    "Equal": _binary("Equal"),
    "Less": _binary("Less"),
    "Greater": _binary("Greater"),
    "GreaterEqual": _binary("GreaterOrEqual"),
    "LogicalAnd": _binary("And"),
    "FloorMod": _binary("Mod"),
    "FloorDiv": _floordiv,
    "SquaredDifference": _squared_difference,
    "Relu": _unary("Relu"),
    "Relu6": _relu6,
    "LeakyRelu": _leaky,
    "Sigmoid": _unary("Sigmoid"),
    "Tanh": _unary("Tanh"),
    "Exp": _unary("Exp"),
    "Sqrt": _unary("Sqrt"),
    "Abs": _unary("Abs"),
    "Reciprocal": _unary("Reciprocal"),
    "Mean": _reduce("ReduceMean"),
    "Sum": _reduce("ReduceSum"),
    "Max": _reduce("ReduceMax"),
    "ConcatV2": _concat,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "ExpandDims": _expand_dims,
    "Pack": _pack,
    "Unpack": _unpack,
    "SplitV": _split_v,
    "Cast": _cast,
    "StridedSlice": _strided_slice,
    "GatherV2": _gather,
    "GatherNd": _gather_nd,
    "ArgMax": _arg_max,
    "TopKV2": _top_k,
    "ResizeBilinear": lambda b, n, i: _resize(b, n, i, "linear"),
    "ResizeNearestNeighbor": lambda b, n, i: _resize(b, n, i, "nearest"),
    "MaxPool": _max_pool,
    "Pad": _pad,
    "PadV2": _pad,
    "Transpose": _transpose,
    "Select": _select,
    "AddN": _add_n,
    "Shape": _shape,
    "Size": _size,
    "Range": _range,
    "Tile": _tile,
    "Fill": _fill,
    "Split": _split,
}
