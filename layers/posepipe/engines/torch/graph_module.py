"""A TFLite graph (as read by :mod:`posepipe.engines.torch.tflite_reader`) run by PyTorch.

:class:`GraphModule` converts the graph operator by operator, generically: no layer list is
hard-coded, so any BlazePose detector or landmark model (lite, full, heavy) converts the same way.
Layouts: TFLite tensors are NHWC; here every rank-4 tensor is held as NCHW (the layout PyTorch's
convolutions want) and every other tensor in TFLite's own layout. The batch is the leading
dimension of every tensor: TFLite fixes it at 1, the module takes any N >= 1.

What each operator maps to, and why it matches TFLite:

- ``CONV_2D``, ``DEPTHWISE_CONV_2D``: weights ``[O, KH, KW, I]`` (depthwise ``[1, KH, KW, C*M]``,
  output channel ``c*M + m`` reading input ``c``, exactly PyTorch's grouped-convolution order)
  become ``[O, I, KH, KW]``. TF ``SAME`` padding is computed per operator from the static input
  size (``total = max((ceil(in/s) - 1)*s + (k - 1)*d + 1 - in, 0)``, the odd pixel after):
  symmetric padding goes to the convolution, asymmetric padding is an explicit ``F.pad``.
- ``MAX_POOL_2D`` pads with -inf (padding never wins), ``AVERAGE_POOL_2D`` divides by the number
  of real (unpadded) pixels in each window, as TFLite does.
- ``RESIZE_BILINEAR``: ``half_pixel_centers`` is ``F.interpolate(align_corners=False)`` (both
  sample at ``(o + 0.5) * in/out - 0.5`` and clamp to the edge), ``align_corners`` is
  ``align_corners=True``; the legacy mode (neither flag, source ``o * in/out``) is computed
  explicitly. ``RESIZE_NEAREST_NEIGHBOR`` gathers precomputed indices with TFLite's rounding.
- ``DEPTH_TO_SPACE`` is TensorFlow's DCR order (input channel ``(i*b + j)*C + c``), not
  ``pixel_shuffle``'s CRD order (``c*b*b + i*b + j``); ``SPACE_TO_DEPTH`` is its inverse.
- ``RESHAPE`` / ``SQUEEZE`` / ``EXPAND_DIMS`` reshape in TFLite's (NHWC) element order: a rank-4
  input is permuted back to NHWC first, a rank-4 result permuted to NCHW after. The batch
  dimension must be kept (TFLite's leading 1 stays the batch).
- ``CONCATENATION``, ``PAD``, ``MEAN`` and the other axis-taking operators map NHWC axes to NCHW.
- Elementwise operators broadcast constants after reshaping them to the NCHW layout.
- Fused activations: ``RELU``, ``RELU6``, ``RELU_N1_TO_1``, ``TANH``.

Constants become parameters (``requires_grad=False``) of the module, so ``.to(device, dtype)``,
``.half()`` and ``channels_last`` inputs work; one parameter per TFLite tensor and layout,
shared by every operator that reads it. An operator or attribute that has no exact mapping is
refused when the module is built (:class:`UnsupportedGraphError`), never approximated.

One module over 400 lines on purpose: it is one table, a converter per TFLite operator, that reads
as a whole against the TFLite op list; split, each part would need the others' layout helpers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual name)
from torch import nn

from posepipe.engines.torch.tflite_reader import Graph, Operator, Tensor

OpFn = Callable[[list[torch.Tensor]], torch.Tensor]
Arg = int | str  # an activation (TFLite tensor index) or a constant (parameter name)
Binary = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Reducer = Callable[[torch.Tensor, list[int]], torch.Tensor]  # reduces over dims, keeping them

_NHWC_TO_NCHW_AXIS = (0, 2, 3, 1)  # where NHWC axis i lives in an NCHW tensor

# TFLite enums (schema.fbs)
_PADDING_SAME, _PADDING_VALID = 0, 1
_ACT_NONE, _ACT_RELU, _ACT_RELU_N1_TO_1, _ACT_RELU6, _ACT_TANH = 0, 1, 2, 3, 4


class UnsupportedGraphError(ValueError):
    """The TFLite graph uses an operator or attribute that this converter does not map."""


@dataclass(frozen=True)
class _Step:
    opcode: str
    fn: OpFn
    args: tuple[Arg, ...]
    output: int
    free: tuple[int, ...] = ()


def _activation(code: int) -> Callable[[torch.Tensor], torch.Tensor] | None:
    if code == _ACT_NONE:
        return None
    if code == _ACT_RELU:
        return F.relu
    if code == _ACT_RELU6:
        return F.relu6
    if code == _ACT_RELU_N1_TO_1:
        return lambda x: torch.clamp(x, -1.0, 1.0)
    if code == _ACT_TANH:
        return torch.tanh
    raise UnsupportedGraphError(f"fused activation function {code}")


def _with_activation(fn: OpFn, op: Operator) -> OpFn:
    act = _activation(int(_option(op, "fused_activation_function", _ACT_NONE)))
    if act is None:
        return fn
    return lambda xs: act(fn(xs))


def _option(op: Operator, key: str, default: Any = None) -> Any:
    """A builtin option by its schema.fbs name. An operator stored without options gets TFLite's
    default; one with options must have the field (a misspelt name is an error, not a default)."""
    if not op.options:
        if default is None:
            raise UnsupportedGraphError(f"operator {op.index} ({op.opcode}) has no options")
        return default
    if key not in op.options:
        raise UnsupportedGraphError(f"operator {op.index} ({op.opcode}) has no option {key!r}")
    return op.options[key]


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF ``SAME`` padding (before, after) of one spatial dimension."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _nhwc_to_nchw(value: np.ndarray) -> np.ndarray:
    """A constant broadcast against rank-4 tensors: right-aligned to rank 4, then NCHW."""
    if value.ndim > 4:
        raise UnsupportedGraphError(f"constant of rank {value.ndim} against a rank-4 tensor")
    return value.reshape((1,) * (4 - value.ndim) + value.shape).transpose(0, 3, 1, 2)


def _to_tflite_layout(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1) if x.dim() == 4 else x


def _from_tflite_layout(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2) if x.dim() == 4 else x


def _axis(axis: int, rank: int) -> int:
    """A TFLite axis of a rank-``rank`` tensor, as an axis of the tensor held here."""
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        raise UnsupportedGraphError(f"axis {axis} of a rank-{rank} tensor")
    return _NHWC_TO_NCHW_AXIS[axis] if rank == 4 else axis


class GraphModule(nn.Module):
    """A TFLite graph as a PyTorch module: ``forward(*inputs)`` returns the graph's outputs.

    Inputs and outputs of rank 4 are NCHW (``[N, C, H, W]`` for TFLite's ``[1, H, W, C]``), the
    others keep TFLite's layout with the batch first. Inputs are cast to the module's dtype.
    """

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.consts = nn.ParameterDict()
        self.graph_inputs = graph.inputs
        self.graph_outputs = graph.outputs
        self.tflite_shapes = {t.index: t.shape for t in graph.tensors}
        self.tflite_names = {t.index: t.name for t in graph.tensors}
        for index in graph.inputs:
            if graph.tensor(index).is_constant or not graph.tensor(index).shape:
                raise UnsupportedGraphError(f"graph input {index} is a constant or has no shape")
        builder = _Builder(graph, self)
        steps = [builder.step(op) for op in graph.operators]
        self._steps = _with_frees(steps, graph.outputs)
        produced = set(graph.inputs) | {s.output for s in steps}
        missing = [i for i in graph.outputs if i not in produced]
        if missing:
            raise UnsupportedGraphError(f"graph outputs {missing} are not computed by any operator")

    @property
    def opcodes(self) -> list[str]:
        return [s.opcode for s in self._steps]

    def input_shape(self, position: int = 0) -> tuple[int, ...]:
        """The shape one input takes here, without the batch (NCHW for an image input)."""
        return _held_shape(self.tflite_shapes[self.graph_inputs[position]])[1:]

    def output_tflite_shapes(self) -> list[tuple[int, ...]]:
        """The outputs' shapes as TFLite declares them (NHWC, batch 1), in output order."""
        return [self.tflite_shapes[i] for i in self.graph_outputs]

    def _dtype(self) -> torch.dtype:
        for value in self.consts.values():
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                return value.dtype
        return torch.float32

    def _prepare(self, inputs: Sequence[torch.Tensor]) -> dict[int, torch.Tensor]:
        if len(inputs) != len(self.graph_inputs):
            raise ValueError(f"expected {len(self.graph_inputs)} input(s), got {len(inputs)}")
        dtype = self._dtype()
        env = {}
        for position, (index, x) in enumerate(zip(self.graph_inputs, inputs, strict=True)):
            expected = self.input_shape(position)
            if x.dim() != len(expected) + 1 or tuple(x.shape[1:]) != expected:
                raise ValueError(
                    f"input {position}: expected [N, {', '.join(map(str, expected))}], got {list(x.shape)}"
                )
            env[index] = x.to(dtype) if x.is_floating_point() else x
        return env

    def _run(self, env: dict[int, torch.Tensor], keep: bool) -> dict[int, torch.Tensor]:
        consts = self.consts
        for step in self._steps:
            args = [env[a] if isinstance(a, int) else consts[a] for a in step.args]
            env[step.output] = step.fn(args)
            if not keep:
                for index in step.free:
                    del env[index]
        return env

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        env = self._run(self._prepare(inputs), keep=False)
        return tuple(env[i] for i in self.graph_outputs)

    def run_all(self, *inputs: torch.Tensor) -> dict[int, torch.Tensor]:
        """Every tensor the graph computes, by TFLite tensor index, in TFLite's layout (NHWC):
        for comparing intermediate results with TFLite's."""
        env = self._run(self._prepare(inputs), keep=True)
        return {index: _to_tflite_layout(x) for index, x in env.items()}

    def run_each_operator(self, values: Mapping[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """Each operator applied on its own to given values of its activation inputs (TFLite
        layout, e.g. TFLite's own intermediate tensors): its output by tensor index, in TFLite's
        layout. Checks every operator's mapping without errors carried from earlier operators."""
        consts = self.consts
        dtype = self._dtype()
        results = {}
        for step in self._steps:
            args = [
                _from_tflite_layout(values[a].to(dtype)) if isinstance(a, int) else consts[a]
                for a in step.args
            ]
            results[step.output] = _to_tflite_layout(step.fn(args))
        return results


def _held_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """The shape of a TFLite-shaped tensor as held here (rank 4: NHWC -> NCHW)."""
    shape = tuple(int(d) for d in shape)
    return (shape[0], shape[3], shape[1], shape[2]) if len(shape) == 4 else shape


def _with_frees(steps: list[_Step], outputs: Sequence[int]) -> list[_Step]:
    """Each step with the activations it is the last reader of (freed after it runs)."""
    last: dict[int, int] = {}
    for position, step in enumerate(steps):
        for a in step.args:
            if isinstance(a, int):
                last[a] = position
    keep = set(outputs)
    done: list[_Step] = []
    for position, step in enumerate(steps):
        free = tuple(sorted({a for a in step.args if isinstance(a, int) and last[a] == position} - keep))
        done.append(_Step(step.opcode, step.fn, step.args, step.output, free))
    return done


class _Builder:
    """Turns each TFLite operator into a :class:`_Step`, registering its constants."""

    def __init__(self, graph: Graph, module: GraphModule) -> None:
        self.graph = graph
        self.module = module

    # -- constants -----------------------------------------------------------------------------

    def tensor(self, index: int) -> Tensor:
        return self.graph.tensor(index)

    def const(self, index: int) -> np.ndarray:
        t = self.tensor(index)
        if t.data is None:
            raise UnsupportedGraphError(f"tensor {index} ({t.name}) must be a constant")
        return t.data

    def register(self, index: int, value: np.ndarray, layout: str = "") -> str:
        """A constant as a module parameter (float) or buffer-like parameter; its name."""
        key = f"t{index}{'_' + layout if layout else ''}"
        if key not in self.module.consts:
            array = np.ascontiguousarray(value)
            if np.issubdtype(array.dtype, np.floating):
                array = array.astype(np.float32)
            self.module.consts[key] = nn.Parameter(torch.from_numpy(array), requires_grad=False)
        return key

    def operand(self, index: int, out_rank: int) -> Arg:
        """An elementwise operand: an activation of the output's rank, or a constant reshaped to
        broadcast in the held layout."""
        t = self.tensor(index)
        if t.data is None:
            if len(t.shape) != out_rank:
                raise UnsupportedGraphError(
                    f"broadcast of activation {index} of rank {len(t.shape)} to rank {out_rank}"
                )
            return index
        if out_rank == 4:
            return self.register(index, _nhwc_to_nchw(t.data), "nchw")
        return self.register(index, t.data)

    def activation(self, index: int) -> int:
        if self.tensor(index).data is not None:
            raise UnsupportedGraphError(f"tensor {index} is a constant where an activation is expected")
        return index

    # -- dispatch ------------------------------------------------------------------------------

    def step(self, op: Operator) -> _Step:
        if len(op.outputs) != 1:
            raise UnsupportedGraphError(f"operator {op.index} ({op.opcode}) has {len(op.outputs)} outputs")
        handler = getattr(self, "op_" + op.opcode.lower(), None)
        if handler is None:
            raise UnsupportedGraphError(f"operator {op.index}: {op.opcode} is not supported")
        fn, args = handler(op)
        return _Step(op.opcode, fn, tuple(args), op.outputs[0])

    def out_shape(self, op: Operator) -> tuple[int, ...]:
        return self.tensor(op.outputs[0]).shape

    def in_shape(self, op: Operator, position: int = 0) -> tuple[int, ...]:
        return self.tensor(op.inputs[position]).shape

    def spatial_padding(
        self, op: Operator, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]
    ) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) for the operator's padding mode, output size checked."""
        _, height, width, _ = self.in_shape(op)
        mode = int(_option(op, "padding", _PADDING_SAME))
        if mode == _PADDING_SAME:
            pads = (
                *same_padding(height, kernel[0], stride[0], dilation[0]),
                *same_padding(width, kernel[1], stride[1], dilation[1]),
            )
        elif mode == _PADDING_VALID:
            pads = (0, 0, 0, 0)
        else:
            raise UnsupportedGraphError(f"operator {op.index}: padding mode {mode}")
        out_h = (height + pads[0] + pads[1] - (kernel[0] - 1) * dilation[0] - 1) // stride[0] + 1
        out_w = (width + pads[2] + pads[3] - (kernel[1] - 1) * dilation[1] - 1) // stride[1] + 1
        if (out_h, out_w) != tuple(self.out_shape(op)[1:3]):
            raise UnsupportedGraphError(
                f"operator {op.index} ({op.opcode}): output {out_h}x{out_w}, TFLite says {self.out_shape(op)}"
            )
        return pads

    # -- convolutions and pooling --------------------------------------------------------------

    def _conv(self, op: Operator, weight: np.ndarray, groups: int, key_layout: str) -> tuple[OpFn, list[Arg]]:
        stride = (int(_option(op, "stride_h", 1)), int(_option(op, "stride_w", 1)))
        dilation = (int(_option(op, "dilation_h_factor", 1)), int(_option(op, "dilation_w_factor", 1)))
        kernel = (weight.shape[2], weight.shape[3])
        top, bottom, left, right = self.spatial_padding(op, kernel, stride, dilation)
        args: list[Arg] = [self.activation(op.inputs[0]), self.register(op.inputs[1], weight, key_layout)]
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            args.append(self.register(op.inputs[2], self.const(op.inputs[2])))
        if top == bottom and left == right:
            padding, pre_pad = (top, left), None
        else:
            padding, pre_pad = (0, 0), (left, right, top, bottom)

        def conv(xs: list[torch.Tensor]) -> torch.Tensor:
            x = xs[0] if pre_pad is None else F.pad(xs[0], pre_pad)
            bias = xs[2] if len(xs) > 2 else None
            return F.conv2d(x, xs[1], bias, stride, padding, dilation, groups)

        return _with_activation(conv, op), args

    def op_conv_2d(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        weight = self.const(op.inputs[1])  # [O, KH, KW, I]
        in_channels = self.in_shape(op)[3]
        if weight.ndim != 4 or in_channels % weight.shape[3]:
            raise UnsupportedGraphError(
                f"operator {op.index}: CONV_2D weight {weight.shape} for {in_channels} channels"
            )
        return self._conv(op, weight.transpose(0, 3, 1, 2), in_channels // weight.shape[3], "oihw")

    def op_depthwise_conv_2d(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        weight = self.const(op.inputs[1])  # [1, KH, KW, C * M]
        in_channels = self.in_shape(op)[3]
        if weight.ndim != 4 or weight.shape[0] != 1 or weight.shape[3] % in_channels:
            raise UnsupportedGraphError(
                f"operator {op.index}: depthwise weight {weight.shape} for {in_channels} channels"
            )
        if weight.shape[3] != self.out_shape(op)[3]:
            raise UnsupportedGraphError(
                f"operator {op.index}: depthwise output channels differ from the weight's"
            )
        return self._conv(op, weight.transpose(3, 0, 1, 2), in_channels, "dw")

    def _pool_setup(self, op: Operator) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int, int, int]]:
        kernel = (int(_option(op, "filter_height")), int(_option(op, "filter_width")))
        stride = (int(_option(op, "stride_h")), int(_option(op, "stride_w")))
        return kernel, stride, self.spatial_padding(op, kernel, stride, (1, 1))

    def op_max_pool_2d(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        kernel, stride, (top, bottom, left, right) = self._pool_setup(op)
        padded = top or bottom or left or right

        def pool(xs: list[torch.Tensor]) -> torch.Tensor:
            x = F.pad(xs[0], (left, right, top, bottom), value=-math.inf) if padded else xs[0]
            return F.max_pool2d(x, kernel, stride)

        return _with_activation(pool, op), [self.activation(op.inputs[0])]

    def op_average_pool_2d(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        kernel, stride, (top, bottom, left, right) = self._pool_setup(op)
        area = kernel[0] * kernel[1]
        args: list[Arg] = [self.activation(op.inputs[0])]
        if top or bottom or left or right:
            # TFLite averages over the window's real pixels only: divide by their count.
            _, height, width, _ = self.in_shape(op)
            ones = F.pad(torch.ones(1, 1, height, width, dtype=torch.float64), (left, right, top, bottom))
            counts = F.avg_pool2d(ones, kernel, stride) * area
            args.append(self.register(op.outputs[0], counts.numpy(), "count"))

        def pool(xs: list[torch.Tensor]) -> torch.Tensor:
            if len(xs) == 1:
                return F.avg_pool2d(xs[0], kernel, stride)
            return F.avg_pool2d(F.pad(xs[0], (left, right, top, bottom)), kernel, stride) * area / xs[1]

        return _with_activation(pool, op), args

    def op_fully_connected(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        weight = self.const(op.inputs[1])  # [O, I]
        if int(_option(op, "weights_format", 0)) != 0 or weight.ndim != 2:
            raise UnsupportedGraphError(f"operator {op.index}: FULLY_CONNECTED weights format")
        out_shape = self.out_shape(op)
        if out_shape[0] != 1:
            raise UnsupportedGraphError(f"operator {op.index}: FULLY_CONNECTED folds the batch ({out_shape})")
        args: list[Arg] = [self.activation(op.inputs[0]), self.register(op.inputs[1], weight)]
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            args.append(self.register(op.inputs[2], self.const(op.inputs[2])))
        inner = (*out_shape[1:-1], weight.shape[1])

        def linear(xs: list[torch.Tensor]) -> torch.Tensor:
            x = _to_tflite_layout(xs[0])
            y = F.linear(x.reshape(x.shape[0], *inner), xs[1], xs[2] if len(xs) > 2 else None)
            return _from_tflite_layout(y)

        return _with_activation(linear, op), args

    # -- elementwise ---------------------------------------------------------------------------

    def _binary(self, op: Operator, fn: Binary) -> tuple[OpFn, list[Arg]]:
        rank = len(self.out_shape(op))
        args = [self.operand(i, rank) for i in op.inputs[:2]]
        if all(isinstance(a, str) for a in args):
            raise UnsupportedGraphError(f"operator {op.index}: {op.opcode} of constants only")
        return _with_activation(lambda xs: fn(xs[0], xs[1]), op), args

    def op_add(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._binary(op, torch.add)

    def op_sub(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._binary(op, torch.sub)

    def op_mul(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._binary(op, torch.mul)

    def op_div(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._binary(op, torch.div)

    def op_maximum(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._binary(op, torch.maximum)

    def op_minimum(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._binary(op, torch.minimum)

    def op_squared_difference(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._binary(op, lambda a, b: (a - b) * (a - b))

    def op_prelu(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._binary(op, lambda x, alpha: torch.where(x >= 0, x, x * alpha))

    def _unary(self, op: Operator, fn: Callable[[torch.Tensor], torch.Tensor]) -> tuple[OpFn, list[Arg]]:
        return (lambda xs: fn(xs[0])), [self.activation(op.inputs[0])]

    def op_logistic(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._unary(op, torch.sigmoid)

    def op_tanh(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._unary(op, torch.tanh)

    def op_relu(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._unary(op, F.relu)

    def op_relu6(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._unary(op, F.relu6)

    def op_relu_n1_to_1(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._unary(op, lambda x: torch.clamp(x, -1.0, 1.0))

    def op_hard_swish(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._unary(op, lambda x: x * F.relu6(x + 3.0) / 6.0)

    def op_leaky_relu(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        alpha = float(_option(op, "alpha", 0.0))
        return self._unary(op, lambda x: torch.where(x >= 0, x, x * alpha))

    def op_elu(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._unary(op, F.elu)

    def op_abs(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._unary(op, torch.abs)

    def op_exp(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._unary(op, torch.exp)

    def op_dequantize(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        # of an activation (constants were folded): float16 -> float32, i.e. the module's dtype
        if not np.issubdtype(self.tensor(op.inputs[0]).dtype, np.floating):
            raise UnsupportedGraphError(f"operator {op.index}: DEQUANTIZE of a quantized activation")
        return self._unary(op, lambda x: x)

    def op_softmax(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        beta = float(_option(op, "beta", 1.0))
        dim = _axis(-1, len(self.out_shape(op)))
        return self._unary(op, lambda x: F.softmax(x * beta, dim=dim))

    # -- shapes and layout ---------------------------------------------------------------------

    def _reshape(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        in_shape, out_shape = self.in_shape(op), self.out_shape(op)
        if not in_shape or not out_shape or in_shape[0] != 1 or out_shape[0] != 1:
            raise UnsupportedGraphError(
                f"operator {op.index}: {op.opcode} {in_shape} -> {out_shape} moves the batch"
            )
        if math.prod(in_shape) != math.prod(out_shape):
            raise UnsupportedGraphError(f"operator {op.index}: {op.opcode} {in_shape} -> {out_shape}")
        rest = tuple(out_shape[1:])

        def reshape(xs: list[torch.Tensor]) -> torch.Tensor:
            x = _to_tflite_layout(xs[0])
            return _from_tflite_layout(x.reshape(x.shape[0], *rest))

        return reshape, [self.activation(op.inputs[0])]

    op_reshape = _reshape
    op_squeeze = _reshape
    op_expand_dims = _reshape

    def op_concatenation(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        rank = len(self.out_shape(op))
        dim = _axis(int(_option(op, "axis", 0)), rank)
        if dim == 0:
            raise UnsupportedGraphError(f"operator {op.index}: concatenation along the batch")
        args = [self.operand(i, rank) for i in op.inputs]
        return _with_activation(lambda xs: torch.cat(xs, dim=dim), op), args

    def _pad(self, op: Operator, value: float) -> tuple[OpFn, list[Arg]]:
        pads = self.const(op.inputs[1]).astype(np.int64).reshape(-1, 2)
        rank = len(self.in_shape(op))
        if pads.shape[0] != rank or pads[0].any() or (pads < 0).any():
            raise UnsupportedGraphError(f"operator {op.index}: paddings {pads.tolist()} for rank {rank}")
        held = [pads[i] for i in ((0, 3, 1, 2) if rank == 4 else range(rank))]  # in held dim order
        flat: list[int] = []
        for before, after in reversed(held[1:]):  # F.pad: last dimension first
            flat += [int(before), int(after)]
        while flat and not flat[-1] and not flat[-2]:
            flat = flat[:-2]
        pad = tuple(flat)
        return (lambda xs: F.pad(xs[0], pad, value=value) if pad else xs[0]), [self.activation(op.inputs[0])]

    def op_pad(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._pad(op, 0.0)

    def op_padv2(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        value = self.const(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else np.zeros(1)
        if value.size != 1:
            raise UnsupportedGraphError(f"operator {op.index}: PADV2 with a non-scalar value")
        return self._pad(op, float(value.reshape(-1)[0]))

    def op_depth_to_space(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        block = int(_option(op, "block_size"))

        def depth_to_space(xs: list[torch.Tensor]) -> torch.Tensor:
            x = xs[0]
            n, c, h, w = x.shape
            # TF DCR: input channel (i * block + j) * C_out + c goes to pixel (h*b + i, w*b + j)
            x = x.reshape(n, block, block, c // (block * block), h, w).permute(0, 3, 4, 1, 5, 2)
            return x.reshape(n, c // (block * block), h * block, w * block)

        return depth_to_space, [self.activation(op.inputs[0])]

    def op_space_to_depth(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        block = int(_option(op, "block_size"))

        def space_to_depth(xs: list[torch.Tensor]) -> torch.Tensor:
            x = xs[0]
            n, c, h, w = x.shape
            x = x.reshape(n, c, h // block, block, w // block, block).permute(0, 3, 5, 1, 2, 4)
            return x.reshape(n, c * block * block, h // block, w // block)

        return space_to_depth, [self.activation(op.inputs[0])]

    def _reduce(self, op: Operator, fn: Reducer) -> tuple[OpFn, list[Arg]]:
        rank = len(self.in_shape(op))
        axes = sorted({a + rank if a < 0 else a for a in self.const(op.inputs[1]).reshape(-1).tolist()})
        if 0 in axes:
            raise UnsupportedGraphError(f"operator {op.index}: {op.opcode} over the batch")
        dims = [_axis(a, rank) for a in axes]
        keep_dims = bool(_option(op, "keep_dims", False))

        def reduce(xs: list[torch.Tensor]) -> torch.Tensor:
            y = fn(xs[0], dims)  # keeps the reduced dimensions
            if keep_dims:
                return y
            y = _to_tflite_layout(y)
            return y.reshape([s for i, s in enumerate(y.shape) if i not in axes])

        return reduce, [self.activation(op.inputs[0])]

    def op_mean(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._reduce(op, lambda x, dims: x.mean(dim=dims, keepdim=True))

    def op_sum(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._reduce(op, lambda x, dims: x.sum(dim=dims, keepdim=True))

    def op_reduce_max(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        return self._reduce(op, lambda x, dims: x.amax(dim=dims, keepdim=True))

    # -- resizing ------------------------------------------------------------------------------

    def _resize_setup(self, op: Operator) -> tuple[bool, bool, tuple[int, int], tuple[int, int]]:
        align = bool(_option(op, "align_corners", False))
        half = bool(_option(op, "half_pixel_centers", False))
        if align and half:
            raise UnsupportedGraphError(f"operator {op.index}: align_corners with half_pixel_centers")
        _, in_h, in_w, _ = self.in_shape(op)
        _, out_h, out_w, _ = self.out_shape(op)
        return align, half, (in_h, in_w), (out_h, out_w)

    def op_resize_bilinear(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        align, half, size_in, size_out = self._resize_setup(op)
        args: list[Arg] = [self.activation(op.inputs[0])]
        if align or half:

            def interpolate(xs: list[torch.Tensor]) -> torch.Tensor:
                return F.interpolate(xs[0], size=size_out, mode="bilinear", align_corners=align)

            return interpolate, args
        # legacy TF resize: source = o * in/out, no half-pixel offset
        out = op.outputs[0]
        for axis, (n_in, n_out) in enumerate(zip(size_in, size_out, strict=True)):
            source = np.arange(n_out, dtype=np.float64) * (n_in / n_out)
            low = np.floor(source).astype(np.int64)
            args.append(self.register(out, low, f"lo{axis}"))
            args.append(self.register(out, np.minimum(low + 1, n_in - 1), f"hi{axis}"))
            args.append(self.register(out, (source - low).astype(np.float32), f"w{axis}"))

        def resize(xs: list[torch.Tensor]) -> torch.Tensor:
            x, lo_h, hi_h, w_h, lo_w, hi_w, w_w = xs
            wy, wx = w_h.view(-1, 1), w_w.view(1, -1)
            top, bottom = x[:, :, lo_h], x[:, :, hi_h]
            rows = top + (bottom - top) * wy
            left, right = rows[:, :, :, lo_w], rows[:, :, :, hi_w]
            return left + (right - left) * wx

        return resize, args

    def op_resize_nearest_neighbor(self, op: Operator) -> tuple[OpFn, list[Arg]]:
        align, half, size_in, size_out = self._resize_setup(op)
        args: list[Arg] = [self.activation(op.inputs[0])]
        for axis, (n_in, n_out) in enumerate(zip(size_in, size_out, strict=True)):
            scale = (n_in - 1) / (n_out - 1) if align and n_out > 1 else n_in / n_out
            source = (np.arange(n_out, dtype=np.float64) + (0.5 if half else 0.0)) * scale
            index = np.floor(source + 0.5) if align else np.floor(source)
            index = np.clip(index, 0, n_in - 1).astype(np.int64)
            args.append(self.register(op.outputs[0], index, f"idx{axis}"))
        return (lambda xs: xs[0][:, :, xs[1]][:, :, :, xs[2]]), args
