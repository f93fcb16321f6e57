"""Reading a TensorFlow.js graph model (``model.json`` and its weight files) into plain data:
its nodes (a TensorFlow ``GraphDef`` in JSON) and its constants as NumPy arrays.

The format (tensorflow/tfjs-converter): ``modelTopology.node`` lists the graph's nodes in
topological order, each with its ``op``, ``input`` names (``name:k`` for a node's k-th output,
``^name`` for a control dependency) and ``attr`` (lists, base64 strings, types, shapes);
``weightsManifest`` lists groups of weight files whose concatenated bytes hold the ``Const``
nodes' values in order, each stored as its dtype or quantized (``float16``; ``uint8`` and
``uint16`` with a scale and a minimum).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from posepipe.errors import ModelError

_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "uint8": np.uint8}
_QUANTIZED = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}


@dataclass(frozen=True)
class Node:
    """A graph node: ``inputs`` are ``(node name, output index)``; control inputs are dropped."""

    name: str
    op: str
    inputs: tuple[tuple[str, int], ...]
    attr: Mapping[str, Any] = field(default_factory=dict)

    def list_ints(self, key: str) -> list[int]:
        return [int(v) for v in self.attr.get(key, {}).get("list", {}).get("i", [])]

    def string(self, key: str, default: str = "") -> str:
        value = self.attr.get(key, {}).get("s")
        return base64.b64decode(value).decode() if value is not None else default

    def strings(self, key: str) -> list[str]:
        return [base64.b64decode(v).decode() for v in self.attr.get(key, {}).get("list", {}).get("s", [])]

    def flag(self, key: str, default: bool = False) -> bool:
        return bool(self.attr.get(key, {}).get("b", default))

    def integer(self, key: str, default: int = 0) -> int:
        return int(self.attr.get(key, {}).get("i", default))

    def number(self, key: str, default: float = 0.0) -> float:
        return float(self.attr.get(key, {}).get("f", default))

    def dtype(self, key: str) -> str:
        return str(self.attr.get(key, {}).get("type", ""))


@dataclass
class Graph:
    """A graph model's nodes in topological order, its constants, inputs and outputs."""

    nodes: list[Node]
    constants: dict[str, npt.NDArray[Any]]
    inputs: dict[str, tuple[list[int], str]]  # placeholder name -> (shape, dtype)
    outputs: list[str]
    signature: dict[str, Any]


def _input_ref(text: str) -> tuple[str, int] | None:
    if text.startswith("^"):
        return None
    name, _, index = text.partition(":")
    return name, int(index) if index else 0


def read_graph_model(model_json: bytes, read_weights: Callable[[str], bytes]) -> Graph:
    """The graph of a ``model.json``; ``read_weights(path)`` returns a weight file's bytes."""
    try:
        model = json.loads(model_json)
        if model.get("format") != "graph-model":
            raise ModelError(f"not a TensorFlow.js graph model (format {model.get('format')!r})")
        raw_nodes = model["modelTopology"]["node"]
        manifest = model["weightsManifest"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"not a TensorFlow.js graph model: {exc}") from exc
    constants = _read_weights(manifest, read_weights)
    nodes: list[Node] = []
    inputs: dict[str, tuple[list[int], str]] = {}
    for raw in raw_nodes:
        refs = tuple(ref for ref in map(_input_ref, raw.get("input", [])) if ref is not None)
        node = Node(name=raw["name"], op=raw["op"], inputs=refs, attr=raw.get("attr", {}))
        if node.op == "Placeholder":
            dims = node.attr.get("shape", {}).get("shape", {}).get("dim", [])
            inputs[node.name] = ([int(d.get("size", -1)) for d in dims], node.dtype("dtype"))
        if node.op == "Const" and node.name not in constants:
            constants[node.name] = _inline_constant(node)
        nodes.append(node)
    signature = model.get("signature", {})
    outputs = [spec["name"].partition(":")[0] for spec in signature.get("outputs", {}).values()]
    return Graph(nodes=nodes, constants=constants, inputs=inputs, outputs=outputs, signature=signature)


def read_graph_files(model_json: Path) -> Graph:
    """The graph of a ``model.json`` on disk, with its weight files beside it."""
    return read_graph_model(model_json.read_bytes(), lambda path: (model_json.parent / path).read_bytes())


def _read_weights(
    manifest: list[dict[str, Any]], read: Callable[[str], bytes]
) -> dict[str, npt.NDArray[Any]]:
    constants: dict[str, npt.NDArray[Any]] = {}
    for group in manifest:
        data = b"".join(read(path) for path in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = [int(d) for d in spec["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quantization = spec.get("quantization")
            dtype = _DTYPES.get(spec["dtype"])
            if dtype is None:
                raise ModelError(f"weight {spec['name']}: dtype {spec['dtype']} is not supported")
            if quantization is not None:
                stored = np.dtype(_QUANTIZED[quantization["dtype"]])
                raw = np.frombuffer(data, dtype=stored, count=count, offset=offset)
                values: npt.NDArray[Any] = raw.astype(np.float32)
                if quantization["dtype"] != "float16":
                    values = values * np.float32(quantization["scale"]) + np.float32(quantization["min"])
                offset += count * stored.itemsize
            else:
                stored = np.dtype(dtype)
                values = np.frombuffer(data, dtype=stored, count=count, offset=offset).copy()
                offset += count * stored.itemsize
            constants[spec["name"]] = values.astype(dtype).reshape(shape)
        if offset != len(data):
            raise ModelError(f"weights {group['paths']}: {len(data)} bytes, the manifest describes {offset}")
    return constants


def _inline_constant(node: Node) -> npt.NDArray[Any]:
    """A ``Const`` whose value is in the node itself (small scalars and shapes), not the weights."""
    tensor = node.attr.get("value", {}).get("tensor", {})
    dtype = tensor.get("dtype", "DT_FLOAT")
    dims = [int(d.get("size", 0)) for d in tensor.get("tensorShape", {}).get("dim", [])]
    if dtype == "DT_INT32":
        values: list[Any] = [int(v) for v in tensor.get("intVal", [])]
        array: npt.NDArray[Any] = np.array(values, dtype=np.int32)
    elif dtype == "DT_FLOAT":
        array = np.array([float(v) for v in tensor.get("floatVal", [])], dtype=np.float32)
    else:
        raise ModelError(f"constant {node.name}: inline {dtype} values are not supported")
    count = int(np.prod(dims)) if dims else 1
    if array.size == 1 and count > 1:
        array = np.full(count, array[0], dtype=array.dtype)
    if array.size != count:
        raise ModelError(f"constant {node.name}: {array.size} values for shape {dims}")
    return array.reshape(dims)
