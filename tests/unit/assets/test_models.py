"""The model asset: built offline from the mediapipe 0.10.21 wheel, found, refused when wrong."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from posepipe.assets import model_build
from posepipe.assets import pose_model as models
from posepipe.errors import ModelError


def test_built_bundle_holds_both_models_with_image_metadata(model_path: Path) -> None:
    from mediapipe.tasks.metadata import metadata_schema_py_generated as meta
    from mediapipe.tasks.metadata import schema_py_generated as schema

    with zipfile.ZipFile(model_path) as bundle:
        assert sorted(bundle.namelist()) == [
            model_build.DETECTOR_BUNDLE_NAME,
            model_build.LANDMARKS_BUNDLE_NAME,
        ]
        for name in bundle.namelist():
            tflite = bundle.read(name)
            model = schema.Model.GetRootAs(tflite, 0)
            entries = {
                model.Metadata(i).Name().decode(): model.Metadata(i).Buffer()
                for i in range(model.MetadataLength())
            }
            assert "TFLITE_METADATA" in entries
            raw = model.Buffers(entries["TFLITE_METADATA"]).DataAsNumpy().tobytes()
            metadata = meta.ModelMetadata.GetRootAs(raw, 0)
            image = metadata.SubgraphMetadata(0).InputTensorMetadata(0)
            unit = image.ProcessUnits(0)
            assert unit.OptionsType() == meta.ProcessUnitOptions.NormalizationOptions
            options = meta.NormalizationOptions()
            options.Init(unit.Options().Bytes, unit.Options().Pos)
            assert (options.Mean(0), options.Std(0)) == (0.0, 255.0)


def test_rebuild_from_the_cached_wheel_gives_the_same_bundle(model_path: Path, tmp_path: Path) -> None:
    rebuilt = model_build.build_model(destination=tmp_path / "again.task", wheel=model_build.source_wheel())
    with zipfile.ZipFile(model_path) as a, zipfile.ZipFile(rebuilt) as b:
        for name in a.namelist():
            assert a.read(name) == b.read(name)


def test_build_refuses_a_wheel_whose_models_differ(tmp_path: Path) -> None:
    fake = tmp_path / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr(model_build.DETECTOR_MEMBER, b"not a model")
        archive.writestr(model_build.LANDMARKS_MEMBER, b"not a model")
    with pytest.raises(ModelError, match="detector model has sha256"):
        model_build.build_model(destination=tmp_path / "x.task", wheel=fake)
    assert not (tmp_path / "x.task").exists()


def test_model_choice_explicit_then_environment_then_cache(
    model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(models.MODEL_ENV, raising=False)
    assert models.resolve_model_path() == models.built_model_path()
    copy = tmp_path / "pose_landmarker_custom.task"
    copy.write_bytes(model_path.read_bytes())
    monkeypatch.setenv(models.MODEL_ENV, str(copy))
    assert models.resolve_model_path() == copy
    assert models.resolve_model_path(model_path) == model_path
    assert models.model_info(copy).name == "pose_landmarker_custom"


def test_missing_or_non_bundle_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="model file not found"):
        models.resolve_model_path(tmp_path / "nope.task")
    text = tmp_path / "model.task"
    text.write_text("hello")
    with pytest.raises(ModelError, match=r"not a MediaPipe \.task bundle"):
        models.resolve_model_path(text)
