"""A damaged model file is named as the model file, whatever reads it first: the loader, or the cache
fingerprint check that training, preprocess and `dataset validate` run before loading anything."""

from __future__ import annotations

import os
import shutil

import pytest

from acetune.data.fingerprint import bundle_fingerprint, require_match, write_fingerprint
from acetune.errors import ModelLoadError
from acetune.model.bundle import resolve_bundle
from acetune.model.weights import find_weight_files


@pytest.fixture()
def damaged_bundle(tiny_bundle, tmp_path):
    """(bundle folder, a cache folder fingerprinted while the bundle was whole, the truncated weight file)."""
    folder = shutil.copytree(tiny_bundle, tmp_path / "checkpoints")
    cache = tmp_path / "cache"
    cache.mkdir()
    write_fingerprint(cache, bundle_fingerprint(resolve_bundle(folder), {}))
    weights = folder / "acestep-v15-turbo" / "model.safetensors"
    os.truncate(weights, weights.stat().st_size // 2)
    return folder, cache, weights


def test_a_truncated_model_is_named_not_blamed_on_the_cache(damaged_bundle):
    folder, cache, weights = damaged_bundle
    with pytest.raises(ModelLoadError, match="the model file model.safetensors is damaged") as err:
        require_match(cache, bundle_fingerprint(resolve_bundle(folder), {}))
    assert str(weights) in str(err.value) and "download model.safetensors again" in err.value.fix


def test_a_truncated_vae_file_is_named_too(tiny_bundle, tmp_path):
    folder = shutil.copytree(tiny_bundle, tmp_path / "checkpoints")
    vae_weights = next((folder / "vae").glob("*.safetensors"))
    vae_weights.write_bytes(vae_weights.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match=f"the model file {vae_weights.name} is damaged"):
        bundle_fingerprint(resolve_bundle(folder), {})


def test_the_loader_names_the_damaged_file_the_same_way(damaged_bundle):
    _, _, weights = damaged_bundle
    with pytest.raises(ModelLoadError, match="the model file model.safetensors is damaged") as err:
        find_weight_files(weights.parent)
    assert str(weights) in str(err.value)
