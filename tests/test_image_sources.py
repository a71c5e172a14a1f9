"""The sides of ``ganscape fid``: which texts name a generator (opened by hub) and which name images (opened by
metrics.compare, which imports no model loader)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from ganscape import hub
from ganscape.errors import ConfigError


def test_which_texts_name_a_model(tmp_path, monkeypatch):
    """By hand: folders holding config.json, config.yaml or checkpoints/ and Hub ids that are no local path are
    models; an image folder, a data set split and an existing owner/name path are not."""
    monkeypatch.chdir(tmp_path)
    for name, entry in (("exported", "config.json"), ("run", "config.yaml")):
        (tmp_path / name).mkdir()
        (tmp_path / name / entry).write_text("{}")
    (tmp_path / "early_run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "pictures").mkdir()
    (tmp_path / "owner" / "local").mkdir(parents=True)
    assert [hub.names_model(text) for text in ("exported", "run", "early_run", "owner/name")] == [True] * 4
    assert [hub.names_model(text) for text in ("pictures", "owner/local", "cifar10:test", "nope")] == [False] * 4


class FakeGenerator:
    """Samples of a fixed value: the 2 x 3 x 4 x 4 images are all 0.5, i.e. uint8 191."""

    spec = SimpleNamespace(shape=(3, 4, 4))

    def sample(self, n, seed=0, truncation=None):
        return torch.full((n, 3, 4, 4), 0.5)


def test_a_hub_id_is_sampled_and_images_are_opened_by_compare(tmp_path, monkeypatch):
    loaded = []
    monkeypatch.setattr(hub, "load_generator", lambda text, device: loaded.append((text, device)) or FakeGenerator())
    side = hub.open_images("owner/name", 2, seed=7, device="cpu")
    assert loaded == [("owner/name", "cpu")] and not side.cached
    assert side.description == "2 samples of owner/name (seed 7)"
    assert side.data.images.shape == (2, 3, 4, 4) and int(side.data.images.max()) == round(255 * 0.75)
    with pytest.raises(ConfigError, match="is not a set of images I can open"):
        hub.open_images(str(tmp_path / "nope"), 2)
    assert len(loaded) == 1  # a missing path is not taken for a model
