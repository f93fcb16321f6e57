"""Read a TFLite flatbuffer into a plain graph description, with constant weights made dense fp32.

:func:`read_tflite` turns a ``.tflite`` file into a :class:`Graph`: every tensor (shape, numpy
dtype, constant data, quantization and sparsity parameters) and every operator of the main
subgraph in execution order, with its builtin options as a plain ``dict`` (snake_case keys, as
in TFLite's ``schema.fbs``). :func:`fold_constants` then evaluates the operators that only
unpack stored weights (``DEQUANTIZE`` of fp16 or int8 constants, ``DENSIFY`` of sparse ones),
so that what remains is the network itself with plain dense fp32 constants.

The flatbuffer is parsed with the TFLite schema module that ``mediapipe`` ships
(``mediapipe/tasks/metadata/schema_py_generated.py``, the one :mod:`posepipe.assets.pose_model` uses). It is
loaded straight from its file, without importing the ``mediapipe`` package (whose import loads
its native library and matplotlib, a third of a second that a GPU worker does not need).

``DENSIFY`` is implemented here from the semantics of ``SparsityParameters`` in TFLite's schema:
a sparse tensor of rank ``n`` with a ``k``-dimensional block is stored as a tree over ``n + k``
levels, visited in ``traversal_order`` (the first ``n`` entries a permutation of the tensor's
dimensions, the last ``k`` a permutation of the block dimensions ``n .. n+k-1``; ``block_map``
says which tensor dimension each block dimension subdivides). ``dim_metadata[i]`` describes
level ``i``: ``DENSE`` (all ``dense_size`` children present) or ``SPARSE_CSR`` (children of
node ``p`` are ``array_indices[array_segments[p]:array_segments[p + 1]]``). The leaves, in
storage order, are the buffer's values. The test suite checks the result against the values
TFLite's own interpreter densifies.

One module over 400 lines on purpose: one reader of one flatbuffer schema, from bytes to a plain
graph, whose steps (tensors, sparsity, quantization, constant folding) all serve that one read.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

_SCHEMA_MODULE = "posepipe.engines.torch._tflite_schema"
_TFLITE_FILE_IDENTIFIER = b"TFL3"

# TFLite TensorType -> numpy dtype (the types a float vision model can hold).
_NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    "FLOAT32": np.dtype(np.float32),
    "FLOAT16": np.dtype(np.float16),
    "FLOAT64": np.dtype(np.float64),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "INT16": np.dtype(np.int16),
    "INT8": np.dtype(np.int8),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "BOOL": np.dtype(np.bool_),
}

DENSE = 0  # DimensionType.DENSE
SPARSE_CSR = 1  # DimensionType.SPARSE_CSR


class TFLiteError(ValueError):
    """The file is not a TFLite model this reader understands."""


@dataclass(frozen=True)
class DimensionMetadata:
    """One level of a sparse tensor's storage tree (``DimensionMetadata`` in schema.fbs)."""

    format: int  # DENSE or SPARSE_CSR
    dense_size: int
    array_segments: np.ndarray | None = None
    array_indices: np.ndarray | None = None


@dataclass(frozen=True)
class Sparsity:
    """A sparse constant's ``SparsityParameters``."""

    traversal_order: tuple[int, ...]
    block_map: tuple[int, ...]
    dim_metadata: tuple[DimensionMetadata, ...]


@dataclass(frozen=True)
class Quantization:
    """Affine quantization: ``real = (q - zero_point) * scale``, per ``axis`` when per-channel."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int


@dataclass(frozen=True)
class Tensor:
    """One tensor of the graph. ``data`` is set for constants: the stored values as they are in
    the file (for a sparse tensor, the flat list of stored values; see :attr:`sparsity`)."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    data: np.ndarray | None = None
    quantization: Quantization | None = None
    sparsity: Sparsity | None = None

    @property
    def is_constant(self) -> bool:
        return self.data is not None


@dataclass(frozen=True)
class Operator:
    """One operator: ``opcode`` is the builtin name (``"CONV_2D"``); ``inputs`` may hold -1 for an
    omitted optional input; ``options`` are its builtin options with snake_case keys."""

    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Graph:
    """The main subgraph: tensors by index, operators in execution order, graph inputs/outputs."""

    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def opcodes(self) -> set[str]:
        return {op.opcode for op in self.operators}


# --- the schema module ------------------------------------------------------------------------


def schema() -> ModuleType:
    """mediapipe's generated TFLite schema module, loaded from its file (see the module docstring)."""
    module = sys.modules.get(_SCHEMA_MODULE)
    if module is not None:
        return module
    spec = importlib.util.find_spec("mediapipe")  # locates the package without importing it
    location = spec.submodule_search_locations if spec is not None else None
    if not location:
        raise TFLiteError("reading TFLite models needs the mediapipe package (its schema module)")
    path = Path(next(iter(location))) / "tasks" / "metadata" / "schema_py_generated.py"
    file_spec = importlib.util.spec_from_file_location(_SCHEMA_MODULE, path)
    if file_spec is None or file_spec.loader is None or not path.is_file():
        raise TFLiteError(f"{path}: mediapipe's TFLite schema module is missing")
    module = importlib.util.module_from_spec(file_spec)
    file_spec.loader.exec_module(module)
    sys.modules[_SCHEMA_MODULE] = module
    return module


def _enum_names(enum_class: Any) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_") and isinstance(v, int)}


_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(name: str) -> str:
    """schema.fbs's field name from flatc's Python one: ``dilationWFactor`` -> ``dilation_w_factor``
    (flatc capitalises the letter after each underscore; this undoes exactly that)."""
    return _SNAKE.sub("_", name).lower()


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    return value


# --- reading ----------------------------------------------------------------------------------


def read_tflite(data: bytes) -> Graph:
    """The main subgraph of a ``.tflite`` flatbuffer, constants as stored (not yet folded)."""
    if len(data) < 8 or data[4:8] != _TFLITE_FILE_IDENTIFIER:
        raise TFLiteError("not a TFLite flatbuffer (no TFL3 identifier)")
    s = schema()
    try:
        model = s.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as exc:  # a corrupt flatbuffer raises struct/index errors from deep inside
        raise TFLiteError(f"unreadable TFLite flatbuffer: {exc}") from exc
    if not model.subgraphs:
        raise TFLiteError("the model has no subgraph")
    op_names = _enum_names(s.BuiltinOperator)
    type_names = _enum_names(s.TensorType)
    graph = model.subgraphs[0]

    buffers = model.buffers or []
    tensors = []
    for index, t in enumerate(graph.tensors or []):
        type_name = type_names.get(t.type, str(t.type))
        if type_name not in _NUMPY_DTYPES:
            raise TFLiteError(f"tensor {index}: unsupported type {type_name}")
        dtype = _NUMPY_DTYPES[type_name]
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        raw = _buffer_bytes(buffers, t.buffer, data)
        values: np.ndarray | None = None
        sparsity = _sparsity(t.sparsity) if t.sparsity is not None else None
        if raw is not None:
            values = np.frombuffer(raw, dtype=dtype).copy()
            if sparsity is None:
                values = values.reshape(shape)
        tensors.append(
            Tensor(
                index=index,
                name=_plain(t.name) or f"tensor_{index}",
                shape=shape,
                dtype=dtype,
                data=values,
                quantization=_quantization(t.quantization),
                sparsity=sparsity,
            )
        )

    operators = []
    for index, op in enumerate(graph.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        # builtin codes above 127 live in builtinCode; the old int8 field saturates at 127
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        opcode = op_names.get(builtin, f"BUILTIN_{builtin}")
        if opcode == "CUSTOM":
            opcode = f"CUSTOM:{_plain(code.customCode)}"
        options = {}
        if op.builtinOptions is not None:
            options = {_snake(k): _plain(v) for k, v in vars(op.builtinOptions).items()}
        operators.append(
            Operator(
                index=index,
                opcode=opcode,
                inputs=tuple(int(i) for i in (op.inputs if op.inputs is not None else ())),
                outputs=tuple(int(i) for i in (op.outputs if op.outputs is not None else ())),
                options=options,
            )
        )
    return Graph(
        tensors=tuple(tensors),
        operators=tuple(operators),
        inputs=tuple(int(i) for i in graph.inputs),
        outputs=tuple(int(i) for i in graph.outputs),
    )


def _buffer_bytes(buffers: Sequence[Any], index: int, data: bytes) -> bytes | None:
    """A constant's bytes: in the flatbuffer, or (models over 2 GB) at an offset of the file."""
    if index <= 0 or index >= len(buffers) or buffers[index] is None:
        return None  # buffer 0 is the empty sentinel of non-constant tensors
    buffer = buffers[index]
    if buffer.data is not None and len(buffer.data):
        return bytes(np.asarray(buffer.data, dtype=np.uint8))
    offset, size = int(getattr(buffer, "offset", 0) or 0), int(getattr(buffer, "size", 0) or 0)
    if offset > 1 and size > 0:
        if offset + size > len(data):
            raise TFLiteError(f"buffer {index} lies outside the file")
        return data[offset : offset + size]
    return None


def _index_vector(vector: Any) -> np.ndarray | None:
    if vector is None or vector.values is None:
        return None
    return np.asarray(vector.values, dtype=np.int64)


def _sparsity(params: Any) -> Sparsity:
    return Sparsity(
        traversal_order=tuple(
            int(i) for i in (params.traversalOrder if params.traversalOrder is not None else ())
        ),
        block_map=tuple(int(i) for i in (params.blockMap if params.blockMap is not None else ())),
        dim_metadata=tuple(
            DimensionMetadata(
                format=int(m.format),
                dense_size=int(m.denseSize),
                array_segments=_index_vector(m.arraySegments),
                array_indices=_index_vector(m.arrayIndices),
            )
            for m in (params.dimMetadata or [])
        ),
    )


def _quantization(params: Any) -> Quantization | None:
    if params is None or params.scale is None or len(params.scale) == 0:
        return None
    zero_point = params.zeroPoint if params.zeroPoint is not None else np.zeros(len(params.scale))
    return Quantization(
        scale=np.asarray(params.scale, dtype=np.float64),
        zero_point=np.asarray(zero_point, dtype=np.int64),
        axis=int(params.quantizedDimension),
    )


# --- DENSIFY and DEQUANTIZE -------------------------------------------------------------------


def densify(values: np.ndarray, shape: Sequence[int], sparsity: Sparsity) -> np.ndarray:
    """The dense tensor of ``shape`` whose stored (non-pruned) ``values`` and ``sparsity`` are
    given: TFLite's ``DENSIFY`` (see the module docstring for the storage format)."""
    rank = len(shape)
    order, block_map, levels = sparsity.traversal_order, sparsity.block_map, sparsity.dim_metadata
    depth = rank + len(block_map)
    if len(order) != depth or len(levels) != depth or sorted(order) != list(range(depth)):
        raise TFLiteError(f"inconsistent sparsity parameters for a rank-{rank} tensor")
    if sorted(order[:rank]) != list(range(rank)) or any(not 0 <= d < rank for d in block_map):
        raise TFLiteError("sparsity traversal order or block map out of range")
    # Sizes of the expanded dimensions: 0..rank-1 count blocks, rank.. are positions in a block.
    block_size = {rank + j: levels[order.index(rank + j)].dense_size for j in range(len(block_map))}
    sizes = [int(d) for d in shape]
    for j, dim in enumerate(block_map):
        size = block_size[rank + j]
        if size <= 0 or shape[dim] % size:
            raise TFLiteError(f"block size {size} does not divide dimension {dim} ({shape[dim]})")
        sizes[dim] = shape[dim] // size
    sizes += [block_size[rank + j] for j in range(len(block_map))]

    # Walk the storage tree level by level: `node` is each live node's storage position at the
    # current level, `coords[i]` the coordinate chosen at level i on the path to it.
    node = np.zeros(1, dtype=np.int64)
    coords: list[np.ndarray] = []
    for level, meta in enumerate(levels):
        dim_size = sizes[order[level]]
        if meta.format == DENSE:
            if meta.dense_size != dim_size:
                raise TFLiteError(f"level {level}: dense size {meta.dense_size}, expected {dim_size}")
            child = (node[:, None] * dim_size + np.arange(dim_size)).reshape(-1)
            coords = [np.repeat(c, dim_size) for c in coords]
            coords.append(np.tile(np.arange(dim_size), len(node)))
        elif meta.format == SPARSE_CSR:
            segments, indices = meta.array_segments, meta.array_indices
            if segments is None or indices is None or node.max(initial=0) + 1 >= len(segments):
                raise TFLiteError(f"level {level}: CSR segments do not cover the parent level")
            starts, ends = segments[node], segments[node + 1]
            counts = ends - starts
            if (counts < 0).any() or ends.max(initial=0) > len(indices):
                raise TFLiteError(f"level {level}: malformed CSR segments")
            # positions starts[p] .. ends[p]-1 for every parent p, concatenated
            offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
            child = np.repeat(starts, counts) + offsets
            coords = [np.repeat(c, counts) for c in coords]
            coords.append(indices[child])
            if (coords[-1] >= dim_size).any() or (coords[-1] < 0).any():
                raise TFLiteError(f"level {level}: sparse index out of range")
        else:
            raise TFLiteError(f"level {level}: unknown dimension format {meta.format}")
        node = child
    if len(node) != len(values):
        raise TFLiteError(f"sparse tensor stores {len(values)} values, its indices address {len(node)}")

    by_dim = {order[level]: coords[level] for level in range(depth)}
    index = []
    for dim in range(rank):
        position = by_dim[dim]
        if dim in block_map:
            inner = rank + block_map.index(dim)
            position = position * block_size[inner] + by_dim[inner]
        index.append(position)
    dense = np.zeros(tuple(int(d) for d in shape), dtype=values.dtype)
    dense[tuple(index)] = values[node]
    return dense


def dequantize(values: np.ndarray, quantization: Quantization | None) -> np.ndarray:
    """TFLite's ``DEQUANTIZE`` of a constant: fp16 widened, integers ``(q - zero_point) * scale``."""
    if np.issubdtype(values.dtype, np.floating):
        return values.astype(np.float32)
    if quantization is None:
        raise TFLiteError("DEQUANTIZE of an integer tensor without quantization parameters")
    scale, zero_point = quantization.scale, quantization.zero_point
    if scale.size > 1:  # per channel along quantization.axis
        shape = [1] * values.ndim
        shape[quantization.axis] = scale.size
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    real: np.ndarray = ((values.astype(np.float64) - zero_point) * scale).astype(np.float32)
    return real


_FOLDABLE = {"DEQUANTIZE", "DENSIFY"}


def constant_value(tensor: Tensor) -> np.ndarray:
    """A constant's dense value (densified when stored sparse)."""
    if tensor.data is None:
        raise TFLiteError(f"tensor {tensor.index} ({tensor.name}) is not a constant")
    if tensor.sparsity is not None:
        return densify(tensor.data, tensor.shape, tensor.sparsity)
    return tensor.data


def fold_constants(graph: Graph) -> Graph:
    """``graph`` with every ``DEQUANTIZE``/``DENSIFY`` of a constant evaluated and removed: their
    outputs become dense constants (fp32 after DEQUANTIZE) and the operators disappear."""
    tensors = list(graph.tensors)
    kept = []
    for op in graph.operators:
        source = tensors[op.inputs[0]] if op.inputs and op.inputs[0] >= 0 else None
        if op.opcode in _FOLDABLE and source is not None and source.is_constant and len(op.outputs) == 1:
            value = constant_value(source)
            if op.opcode == "DEQUANTIZE":
                value = dequantize(value, source.quantization)
            out = tensors[op.outputs[0]]
            if tuple(value.shape) != out.shape:
                raise TFLiteError(f"operator {op.index} ({op.opcode}): {value.shape} != {out.shape}")
            tensors[out.index] = replace(out, data=value.astype(out.dtype, copy=False), sparsity=None)
        else:
            kept.append(op)
    for tensor in tensors:  # constants used directly, without a DENSIFY in front
        if tensor.sparsity is not None and tensor.data is not None:
            tensors[tensor.index] = replace(tensor, data=constant_value(tensor), sparsity=None)
    return replace(graph, tensors=tuple(tensors), operators=tuple(kept))


def load_graph(data: bytes) -> Graph:
    """:func:`read_tflite` then :func:`fold_constants`."""
    return fold_constants(read_tflite(data))
