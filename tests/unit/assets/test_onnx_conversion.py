"""The networks converted from TensorFlow.js graphs compute what the original graphs compute:
their outputs on real pictures match those TensorFlow.js gave (``tests/fixtures/golden``, made by
``tools/golden/make_golden.py``) to 1e-4 of each output's magnitude."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from posepipe.assets.catalogue import CATALOGUE
from posepipe.assets.onnx_from_tfjs import convert
from posepipe.assets.tfjs_graph import Graph, Node
from posepipe.errors import ModelError
from posepipe.media.images import load_image

from tests.support.golden import CASES, GoldenCase, load_fixture

TOLERANCE = 1e-4


@pytest.mark.parametrize("case", CASES, ids=[case.model for case in CASES])
def test_converted_network_matches_tensorflow_js(
    case: GoldenCase, catalogue_models: dict[str, Path], sample: Callable[[str], Path]
) -> None:
    import onnxruntime as ort

    spec = CATALOGUE[case.model]
    assert spec.kind in ("detector", "pose", "detector+pose")
    session = ort.InferenceSession(str(catalogue_models[case.model]), providers=["CPUExecutionProvider"])
    (graph_input,) = session.get_inputs()
    outputs = session.run(
        list(case.outputs), {graph_input.name: case.make_input(load_image(sample(case.image)).rgb)}
    )
    golden = load_fixture(case)
    for name, output in zip(case.outputs, outputs, strict=True):
        shape, indices, expected = golden[name]
        assert output.shape == shape, name
        got = output.reshape(-1)[indices]
        scale = float(np.abs(expected).max())
        assert scale > 0, name
        error = float(np.abs(got - expected).max())
        assert error <= TOLERANCE * scale, (
            f"{case.model} {name}: max error {error:.3g} for magnitude {scale:.3g}"
        )


def test_a_network_with_an_unknown_op_is_refused_by_name() -> None:
    graph = Graph(
        nodes=[
            Node(
                "image",
                "Placeholder",
                (),
                {"shape": {"shape": {"dim": [{"size": "1"}]}}, "dtype": {"type": "DT_FLOAT"}},
            ),
            Node("odd", "FakeQuantWithMinMaxVars", (("image", 0),)),
        ],
        constants={},
        inputs={"image": ([1], "DT_FLOAT")},
        outputs=["odd"],
        signature={},
    )
    with pytest.raises(ModelError, match="node odd: TensorFlow op FakeQuantWithMinMaxVars is not supported"):
        convert(graph)
