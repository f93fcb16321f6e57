"""An ONNX graph (the catalogue's person detectors and MoveNet) run by PyTorch, batched.

:class:`OnnxGraphModule` interprets the graph node by node with torch operators: nothing about a
particular network is hard-coded, so every ONNX model the top-down engine uses (CenterNet,
NanoDet, MoveNet Lightning and Thunder, as :mod:`posepipe.assets.onnx_from_tfjs` converts them)
runs the same way. Why not a converter package: ``onnx2torch`` needs torchvision, whose wheels
pin other torch versions than the one this project runs.

How it runs:

- **Static values are folded when the module is built.** The graphs fix their input shape, so
  every ``Shape`` node, and everything computed only from shapes and initializers (the sizes of a
  ``Resize``, the targets of a ``Reshape``, slice bounds), is computed once on the CPU by the same
  operator code. What a run-time node reads from them as an attribute (axes, sizes, pads, bounds)
  it reads from the folded NumPy value; what it reads as data (weights, offsets, index tables)
  is a buffer of the module, so ``.to(device, dtype)`` moves them and converts the floating ones.
- **Any batch.** The converted graphs fix their batch at 1 and bake that 1 into reshape targets;
  the module runs the batch-1 graph under :func:`torch.func.vmap`, which turns it into batched
  torch operators (one convolution over the whole batch, not one per image).
- **Data types follow the module.** ``Cast`` to float casts to the module's floating type (after
  ``.half()``, float16), so a float16 module computes in float16 throughout.
- **Exact operator semantics where ONNX and torch differ**: ``SAME_UPPER``/``SAME_LOWER``
  padding computed from the input size (an odd pixel padded explicitly), ``Resize`` computed per
  axis from ONNX's coordinate transformations (``asymmetric``, ``half_pixel``,
  ``pytorch_half_pixel``, ``align_corners``; linear with source coordinates clamped to the edge,
  nearest with ONNX's rounding modes), integer ``Div`` truncating, ``ArgMax`` taking the first
  maximum, ``GatherND`` as advanced indexing.

An operator or attribute without an exact mapping is refused when the module is built
(:class:`UnsupportedGraphError`), never approximated. One table, a function per ONNX operator,
read against the ONNX operator list.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F  # noqa: N812 (the usual name)
from onnx import helper, numpy_helper
from torch import nn

Inputs = list[torch.Tensor | None]
Statics = list[np.ndarray | None]


class UnsupportedGraphError(ValueError):
    """The ONNX graph uses an operator or attribute that this module does not map exactly."""


@dataclass
class _Node:
    """One node: its operator, attributes, and where its inputs come from."""

    op: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]
    cache: dict[Any, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Context:
    float_dtype: torch.dtype


OpFn = Callable[[_Node, _Context, Inputs, Statics], list[torch.Tensor]]

_ONNX_TO_TORCH_DTYPE: dict[int, torch.dtype] = {
    onnx.TensorProto.FLOAT16: torch.float16,
    onnx.TensorProto.DOUBLE: torch.float64,
    onnx.TensorProto.INT8: torch.int8,
    onnx.TensorProto.UINT8: torch.uint8,
    onnx.TensorProto.INT16: torch.int16,
    onnx.TensorProto.INT32: torch.int32,
    onnx.TensorProto.INT64: torch.int64,
    onnx.TensorProto.BOOL: torch.bool,
}


def _ints(value: np.ndarray | None, what: str, node: _Node) -> list[int]:
    if value is None:
        raise UnsupportedGraphError(f"{node.op} {node.name!r}: {what} must be a constant of the graph")
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _tensor(xs: Inputs, i: int, node: _Node) -> torch.Tensor:
    value = xs[i] if i < len(xs) else None
    if value is None:
        raise UnsupportedGraphError(f"{node.op} {node.name!r}: input {i} is missing")
    return value


def _static(cs: Statics, i: int) -> np.ndarray | None:
    return cs[i] if i < len(cs) else None


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


# -- elementwise ---------------------------------------------------------------------------------


def _unary(fn: Callable[[torch.Tensor], torch.Tensor]) -> OpFn:
    def op(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
        return [fn(_tensor(xs, 0, node))]

    return op


def _binary(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> OpFn:
    def op(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
        return [fn(_tensor(xs, 0, node), _tensor(xs, 1, node))]

    return op


def _div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.is_floating_point() or b.is_floating_point():
        return a / b
    return torch.div(a, b, rounding_mode="trunc")  # ONNX integer Div truncates


def _clip(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    x = _tensor(xs, 0, node)
    low, high = _static(cs, 1), _static(cs, 2)
    if (len(xs) > 1 and xs[1] is not None and low is None) or (
        len(xs) > 2 and xs[2] is not None and high is None
    ):
        raise UnsupportedGraphError(f"Clip {node.name!r}: bounds must be constants of the graph")
    return [
        torch.clamp(
            x,
            min=None if low is None else float(low),
            max=None if high is None else float(high),
        )
    ]


def _leaky_relu(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    return [F.leaky_relu(_tensor(xs, 0, node), float(node.attrs.get("alpha", 0.01)))]


def _cast(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    to = int(node.attrs["to"])
    if to == onnx.TensorProto.FLOAT:
        dtype = ctx.float_dtype  # the module's floating type (see the module docstring)
    elif to in _ONNX_TO_TORCH_DTYPE:
        dtype = _ONNX_TO_TORCH_DTYPE[to]
    else:
        raise UnsupportedGraphError(f"Cast {node.name!r}: unsupported target type {to}")
    return [_tensor(xs, 0, node).to(dtype)]


# -- shapes and layout -----------------------------------------------------------------------------


def _shape(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    x = _tensor(xs, 0, node)
    dims = list(x.shape)
    start, end = int(node.attrs.get("start", 0)), node.attrs.get("end")
    return [torch.tensor(dims[start : None if end is None else int(end)], dtype=torch.int64)]


def _transpose(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    x = _tensor(xs, 0, node)
    perm = node.attrs.get("perm") or list(reversed(range(x.dim())))
    return [x.permute(*[int(p) for p in perm])]


def _reshape(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    x = _tensor(xs, 0, node)
    target = _ints(_static(cs, 1), "the shape", node)
    if node.attrs.get("allowzero", 0):
        raise UnsupportedGraphError(f"Reshape {node.name!r}: allowzero is not supported")
    dims = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
    return [x.reshape(dims)]


def _squeeze(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    x = _tensor(xs, 0, node)
    axes = node.attrs.get("axes")
    if axes is None and _static(cs, 1) is not None:
        axes = _ints(_static(cs, 1), "the axes", node)
    if axes is None:
        return [x.squeeze()]
    return [x.squeeze(tuple(_axis(int(a), x.dim()) for a in axes))]


def _unsqueeze(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    x = _tensor(xs, 0, node)
    axes = node.attrs.get("axes")
    if axes is None:
        axes = _ints(_static(cs, 1), "the axes", node)
    rank = x.dim() + len(axes)
    for axis in sorted(_axis(int(a), rank) for a in axes):
        x = x.unsqueeze(axis)
    return [x]


def _concat(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    parts = [x for x in xs if x is not None]
    return [torch.cat(parts, dim=_axis(int(node.attrs["axis"]), parts[0].dim()))]


def _split(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    x = _tensor(xs, 0, node)
    axis = _axis(int(node.attrs.get("axis", 0)), x.dim())
    sizes = node.attrs.get("split")
    if sizes is None and _static(cs, 1) is not None:
        sizes = _ints(_static(cs, 1), "the split", node)
    if sizes is None:
        count = int(node.attrs.get("num_outputs", len(node.outputs)))
        size = math.ceil(x.shape[axis] / count)
        sizes = [min(size, x.shape[axis] - i * size) for i in range(count)]
    return list(torch.split(x, [int(s) for s in sizes], dim=axis))


def _slice(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    x = _tensor(xs, 0, node)
    starts = _ints(_static(cs, 1), "the starts", node)
    ends = _ints(_static(cs, 2), "the ends", node)
    axes = _ints(_static(cs, 3), "the axes", node) if _static(cs, 3) is not None else None
    steps = _ints(_static(cs, 4), "the steps", node) if _static(cs, 4) is not None else None
    index: list[slice] = [slice(None)] * x.dim()
    for k, (start, end) in enumerate(zip(starts, ends, strict=True)):
        axis = _axis(axes[k], x.dim()) if axes is not None else k
        step = steps[k] if steps is not None else 1
        if step <= 0:
            raise UnsupportedGraphError(f"Slice {node.name!r}: step {step} is not supported")
        length = x.shape[axis]
        start = min(max(start + length if start < 0 else start, 0), length)
        end = min(max(end + length if end < 0 else end, 0), length)
        index[axis] = slice(start, end, step)
    return [x[tuple(index)]]


def _pad(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    x = _tensor(xs, 0, node)
    pads = _ints(_static(cs, 1), "the pads", node)
    value_array = _static(cs, 2)
    value = 0.0 if value_array is None or np.asarray(value_array).size == 0 else float(value_array)
    axes = (
        [_axis(a, x.dim()) for a in _ints(_static(cs, 3), "the axes", node)]
        if _static(cs, 3) is not None
        else list(range(x.dim()))
    )
    begins, ends = pads[: len(axes)], pads[len(axes) :]
    per_axis = {axis: (begins[k], ends[k]) for k, axis in enumerate(axes)}
    torch_pads: list[int] = []
    for axis in reversed(range(x.dim())):  # F.pad lists the last axis first
        torch_pads += list(per_axis.get(axis, (0, 0)))
    mode = node.attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode == "constant":
        return [F.pad(x, torch_pads, mode="constant", value=value)]
    if mode in ("edge", "reflect"):
        return [F.pad(x, torch_pads, mode="replicate" if mode == "edge" else "reflect")]
    raise UnsupportedGraphError(f"Pad {node.name!r}: mode {mode!r} is not supported")


# -- reductions and indexing -------------------------------------------------------------------------


def _reduce_mean(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    x = _tensor(xs, 0, node)
    axes = node.attrs.get("axes")
    if axes is None and _static(cs, 1) is not None:
        axes = _ints(_static(cs, 1), "the axes", node)
    keep = bool(node.attrs.get("keepdims", 1))
    if not axes:
        if node.attrs.get("noop_with_empty_axes", 0):
            return [x]
        axes = list(range(x.dim()))
    return [x.mean(dim=tuple(_axis(int(a), x.dim()) for a in axes), keepdim=keep)]


def _arg_max(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    if node.attrs.get("select_last_index", 0):
        raise UnsupportedGraphError(f"ArgMax {node.name!r}: select_last_index is not supported")
    x = _tensor(xs, 0, node)
    axis = _axis(int(node.attrs.get("axis", 0)), x.dim())
    return [torch.argmax(x, dim=axis, keepdim=bool(node.attrs.get("keepdims", 1)))]


def _gather_nd(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    if node.attrs.get("batch_dims", 0):
        raise UnsupportedGraphError(f"GatherND {node.name!r}: batch_dims is not supported")
    data, indices = _tensor(xs, 0, node), _tensor(xs, 1, node).long()
    depth = indices.shape[-1]
    return [data[tuple(indices[..., j] for j in range(depth))]]


# -- convolution, pooling, resizing ----------------------------------------------------------------


def _auto_padding(
    node: _Node, spatial: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
    dilations: Sequence[int],
) -> list[tuple[int, int]]:  # fmt: skip
    """Each spatial axis's (begin, end) padding, ONNX's ``auto_pad`` or explicit ``pads``."""
    auto = node.attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    rank = len(spatial)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small = total // 2
            out.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
        return out
    if auto == "VALID":
        return [(0, 0)] * rank
    if auto != "NOTSET":
        raise UnsupportedGraphError(f"{node.op} {node.name!r}: auto_pad {auto!r} is not supported")
    pads = [int(p) for p in node.attrs.get("pads", [0] * (2 * rank))]
    return [(pads[i], pads[i + rank]) for i in range(rank)]


def _explicit_pad(x: torch.Tensor, padding: list[tuple[int, int]], value: float) -> torch.Tensor:
    flat: list[int] = []
    for begin, end in reversed(padding):
        flat += [begin, end]
    return F.pad(x, flat, mode="constant", value=value) if any(flat) else x


def _conv(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    x, weight = _tensor(xs, 0, node), _tensor(xs, 1, node)
    bias = xs[2] if len(xs) > 2 else None
    if x.dim() != 4:
        raise UnsupportedGraphError(f"Conv {node.name!r}: only 2-D convolutions are supported")
    kernel = [int(k) for k in weight.shape[2:]]
    strides = [int(s) for s in node.attrs.get("strides", [1, 1])]
    dilations = [int(d) for d in node.attrs.get("dilations", [1, 1])]
    padding = _auto_padding(node, [int(s) for s in x.shape[2:]], kernel, strides, dilations)
    symmetric = all(b == e for b, e in padding)
    if not symmetric:
        x = _explicit_pad(x, padding, 0.0)
    return [
        F.conv2d(
            x, weight, bias, stride=strides, dilation=dilations,
            padding=[b for b, _ in padding] if symmetric else 0, groups=int(node.attrs.get("group", 1)),
        )
    ]  # fmt: skip


def _max_pool(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    x = _tensor(xs, 0, node)
    kernel = [int(k) for k in node.attrs["kernel_shape"]]
    strides = [int(s) for s in node.attrs.get("strides", [1] * len(kernel))]
    dilations = [int(d) for d in node.attrs.get("dilations", [1] * len(kernel))]
    if x.dim() != 4 or node.attrs.get("storage_order", 0):
        raise UnsupportedGraphError(f"MaxPool {node.name!r}: only 2-D, row-major pooling is supported")
    padding = _auto_padding(node, [int(s) for s in x.shape[2:]], kernel, strides, dilations)
    x = _explicit_pad(x, padding, -math.inf)  # padding never wins
    return [
        F.max_pool2d(x, kernel, strides, dilation=dilations, ceil_mode=bool(node.attrs.get("ceil_mode", 0)))
    ]


def _source_coordinates(mode: str, out_len: int, in_len: int, scale: float) -> np.ndarray:
    o = np.arange(out_len, dtype=np.float64)
    if mode == "asymmetric":
        return o / scale
    if mode == "half_pixel":
        return (o + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (o + 0.5) / scale - 0.5 if out_len > 1 else np.zeros(out_len)
    if mode == "align_corners":
        return o * (in_len - 1) / (out_len - 1) if out_len > 1 else np.zeros(out_len)
    raise ValueError(mode)


_NEAREST: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "round_prefer_floor": lambda c: np.ceil(c - 0.5),
    "round_prefer_ceil": lambda c: np.floor(c + 0.5),
    "floor": np.floor,
    "ceil": np.ceil,
}


def _resize(node: _Node, ctx: _Context, xs: Inputs, cs: Statics) -> list[torch.Tensor]:
    x = _tensor(xs, 0, node)
    attr = {k: v.decode() if isinstance(v, bytes) else v for k, v in node.attrs.items()}
    mode = str(attr.get("mode", "nearest"))
    transform = str(attr.get("coordinate_transformation_mode", "half_pixel"))
    nearest = str(attr.get("nearest_mode", "round_prefer_floor"))
    if (
        mode not in ("linear", "nearest")
        or transform not in ("asymmetric", "half_pixel", "pytorch_half_pixel", "align_corners")
        or nearest not in _NEAREST
        or attr.get("antialias", 0)
        or attr.get("axes") is not None
        or attr.get("keep_aspect_ratio_policy", "stretch") != "stretch"
    ):
        raise UnsupportedGraphError(f"Resize {node.name!r}: attributes {attr} are not supported")
    in_shape = [int(s) for s in x.shape]
    scales_value, sizes_value = _static(cs, 2), _static(cs, 3)
    if sizes_value is not None and np.asarray(sizes_value).size:
        sizes = _ints(sizes_value, "the sizes", node)
        scales = [out / size for out, size in zip(sizes, in_shape, strict=True)]
    elif scales_value is not None and np.asarray(scales_value).size:
        scales = [float(s) for s in np.asarray(scales_value).reshape(-1)]
        sizes = [math.floor(size * s) for size, s in zip(in_shape, scales, strict=True)]
    else:
        raise UnsupportedGraphError(f"Resize {node.name!r}: needs constant scales or sizes")
    for axis, (size, out, scale) in enumerate(zip(in_shape, sizes, scales, strict=True)):
        if out == size and scale == 1.0:
            continue
        key = (axis, size, out, scale, str(x.device))
        if key not in node.cache:
            coords = _source_coordinates(transform, out, size, scale)
            if mode == "nearest":
                picked = np.clip(_NEAREST[nearest](coords), 0, size - 1).astype(np.int64)
                node.cache[key] = (torch.from_numpy(picked).to(x.device),)
            else:
                coords = np.clip(coords, 0.0, size - 1)
                low = np.floor(coords).astype(np.int64)
                high = np.minimum(low + 1, size - 1)
                weight = (coords - low).astype(np.float32)
                node.cache[key] = (
                    torch.from_numpy(low).to(x.device),
                    torch.from_numpy(high).to(x.device),
                    torch.from_numpy(weight).to(x.device),
                )
        tables = node.cache[key]
        if mode == "nearest":
            x = x.index_select(axis, tables[0])
        else:
            low_t, high_t, weight_t = tables
            view = [1] * x.dim()
            view[axis] = out
            w = weight_t.to(x.dtype).reshape(view)
            x = x.index_select(axis, low_t) * (1 - w) + x.index_select(axis, high_t) * w
    return [x]


_OPS: dict[str, OpFn] = {
    "Add": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "Div": _binary(_div),
    "Min": _binary(torch.minimum),
    "Max": _binary(torch.maximum),
    "Relu": _unary(torch.relu),
    "Sigmoid": _unary(torch.sigmoid),
    "Sqrt": _unary(torch.sqrt),
    "Exp": _unary(torch.exp),
    "Abs": _unary(torch.abs),
    "Identity": _unary(lambda x: x),
    "Clip": _clip,
    "LeakyRelu": _leaky_relu,
    "Cast": _cast,
    "Shape": _shape,
    "Transpose": _transpose,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Concat": _concat,
    "Split": _split,
    "Slice": _slice,
    "Pad": _pad,
    "ReduceMean": _reduce_mean,
    "ArgMax": _arg_max,
    "GatherND": _gather_nd,
    "Conv": _conv,
    "MaxPool": _max_pool,
    "Resize": _resize,
}
SUPPORTED_OPS = frozenset(_OPS)


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    return [
        d.dim_param if d.dim_param or not d.dim_value else d.dim_value
        for d in value.type.tensor_type.shape.dim
    ]


@dataclass(frozen=True)
class _Step:
    node: _Node
    fn: OpFn
    free: tuple[str, ...]


class OnnxGraphModule(nn.Module):
    """An ONNX graph as a torch module (see the module docstring): ``forward(*inputs)`` takes the
    graph's inputs with any batch size in place of the graph's fixed 1 and returns its outputs,
    in the graph's order, batched alike."""

    def __init__(self, model: onnx.ModelProto) -> None:
        super().__init__()
        graph = model.graph
        initial: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        graph_inputs = [value for value in graph.input if value.name not in initial]
        self.input_names = tuple(value.name for value in graph_inputs)
        self.input_shapes: tuple[tuple[int, ...], ...] = ()
        self.input_dtypes: tuple[torch.dtype, ...] = ()
        for value in graph_inputs:
            dims = _dims(value)
            if not all(isinstance(d, int) for d in dims):
                raise UnsupportedGraphError(f"input {value.name!r} has a free dimension: {dims}")
            elem = value.type.tensor_type.elem_type
            dtype = torch.float32 if elem == onnx.TensorProto.FLOAT else _ONNX_TO_TORCH_DTYPE.get(elem)
            if dtype is None:
                raise UnsupportedGraphError(f"input {value.name!r} has unsupported type {elem}")
            self.input_shapes += (tuple(int(d) for d in dims),)
            self.input_dtypes += (dtype,)
        self.batch_fixed = all(shape[:1] == (1,) for shape in self.input_shapes)
        self.output_names = tuple(value.name for value in graph.output)
        nodes = [
            _Node(
                op=n.op_type, name=n.name, inputs=tuple(n.input), outputs=tuple(n.output),
                attrs={a.name: helper.get_attribute_value(a) for a in n.attribute},
            )
            for n in graph.node
        ]  # fmt: skip
        for node in nodes:
            if node.op == "Constant":
                continue
            if node.op not in _OPS:
                raise UnsupportedGraphError(f"operator {node.op} ({node.name!r}) is not supported")
        self.register_buffer("_dtype_probe", torch.zeros((), dtype=torch.float32), persistent=False)
        self._buffer_of: dict[str, str] = {}
        self._statics: dict[str, np.ndarray] = {}
        self._steps = self._fold(nodes, initial)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The first input's shape as the graph declares it (batch 1)."""
        return self.input_shapes[0]

    # -- building ----------------------------------------------------------------------------------

    def _fold(self, nodes: list[_Node], initial: dict[str, np.ndarray]) -> list[_Step]:
        """Compute every static value once (a dummy run on the CPU); keep the rest as steps."""
        statics: dict[str, np.ndarray] = dict(initial)
        values: dict[str, torch.Tensor] = {
            name: torch.zeros(shape, dtype=dtype)
            for name, shape, dtype in zip(self.input_names, self.input_shapes, self.input_dtypes, strict=True)
        }
        ctx = _Context(torch.float32)
        kept: list[_Node] = []
        for node in nodes:
            if node.op == "Constant":
                statics[node.outputs[0]] = self._constant(node)
                continue
            static = all(not name or name in statics for name in node.inputs) or node.op == "Shape"
            xs: Inputs = [self._value(name, statics, values) for name in node.inputs]
            cs: Statics = [statics.get(name) if name else None for name in node.inputs]
            with torch.no_grad():
                outs = _OPS[node.op](node, ctx, xs, cs)
            for name, out in zip(node.outputs, outs, strict=False):
                if static:
                    statics[name] = out.numpy().copy()
                else:
                    values[name] = out
            if not static:
                kept.append(node)
        missing = [name for name in self.output_names if name not in values and name not in statics]
        if missing:
            raise UnsupportedGraphError(f"outputs {missing} are never computed")
        # static values read at run time: attributes as NumPy, data as buffers
        for node in kept:
            for name in node.inputs:
                if name in statics and name not in self._buffer_of:
                    self._statics[name] = statics[name]
                    buffer = f"const_{len(self._buffer_of)}"
                    self.register_buffer(buffer, torch.from_numpy(np.array(statics[name])), persistent=False)
                    self._buffer_of[name] = buffer
        for name in self.output_names:
            if name in statics and name not in self._buffer_of:
                buffer = f"const_{len(self._buffer_of)}"
                self.register_buffer(buffer, torch.from_numpy(np.array(statics[name])), persistent=False)
                self._buffer_of[name] = buffer
        last_use: dict[str, int] = {}
        for position, node in enumerate(kept):
            for name in node.inputs:
                last_use[name] = position
        steps = []
        for position, node in enumerate(kept):
            free = tuple(
                name
                for name in set(node.inputs)
                if name and last_use.get(name) == position and name not in self._buffer_of
                and name not in self.output_names
            )  # fmt: skip
            steps.append(_Step(node, _OPS[node.op], free))
        return steps

    @staticmethod
    def _constant(node: _Node) -> np.ndarray:
        if "value" not in node.attrs:
            raise UnsupportedGraphError(f"Constant {node.name!r}: only the 'value' attribute is supported")
        return numpy_helper.to_array(node.attrs["value"])

    @staticmethod
    def _value(
        name: str, statics: dict[str, np.ndarray], values: dict[str, torch.Tensor]
    ) -> torch.Tensor | None:
        if not name:
            return None
        if name in values:
            return values[name]
        return torch.from_numpy(np.array(statics[name]))

    # -- running -----------------------------------------------------------------------------------

    def _run(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        probe = self._dtype_probe
        assert isinstance(probe, torch.Tensor)
        ctx = _Context(probe.dtype)
        values: dict[str, torch.Tensor] = dict(zip(self.input_names, inputs, strict=True))
        buffers = dict(self.named_buffers())
        for name, buffer in self._buffer_of.items():
            values[name] = buffers[buffer]
        for step in self._steps:
            node = step.node
            xs: Inputs = [values[name] if name else None for name in node.inputs]
            cs: Statics = [self._statics.get(name) if name else None for name in node.inputs]
            for name, out in zip(node.outputs, step.fn(node, ctx, xs, cs), strict=False):
                values[name] = out
            for name in step.free:
                values.pop(name, None)
        return tuple(values[name] for name in self.output_names)

    def forward(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        if len(inputs) != len(self.input_names):
            raise ValueError(f"expected {len(self.input_names)} inputs, got {len(inputs)}")
        for x, shape, name in zip(inputs, self.input_shapes, self.input_names, strict=True):
            if tuple(x.shape[1:]) != shape[1:]:
                raise ValueError(
                    f"input {name!r} must be [N, {', '.join(map(str, shape[1:]))}], got {list(x.shape)}"
                )
        if not self.batch_fixed:
            return list(self._run(inputs))

        def one(*sample: torch.Tensor) -> tuple[torch.Tensor, ...]:
            outs = self._run([x.unsqueeze(0) for x in sample])
            return tuple(out.squeeze(0) for out in outs)

        return list(torch.func.vmap(one)(*inputs))


def load_onnx_module(path: str | PathLike[str]) -> OnnxGraphModule:
    """The ONNX model file at ``path`` as an :class:`OnnxGraphModule` (float32, on the CPU)."""
    return OnnxGraphModule(onnx.load(str(path)))
