"""BigGAN's sampling aids: standing statistics (batch-norm statistics re-estimated from forward passes of
the final G) and one class per row in the sample pictures of conditional runs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganscape.cli import main
from ganscape.config import load_config
from ganscape.errors import ConfigError
from ganscape.hub import load_generator
from ganscape.nets.standing import standing_statistics
from ganscape.training.loop import train
from ganscape.runs import RunDir
from test_hub import TINY, write_class_folder


class LinearBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 4)
        self.norm = nn.BatchNorm1d(4, momentum=0.3)

    def forward(self, z, y=None):
        return self.norm(self.linear(z) + (0 if y is None else y[:, None].float()))


@pytest.mark.usefixtures("float64")  # a formula: checked in float64
def test_the_statistics_are_the_plain_averages_of_the_batch_statistics():
    """Independent value: the mean over passes of each batch's mean and unbiased variance of the norm's input,
    recorded by a hook; the generator keeps its eval mode and its momentum."""
    torch.manual_seed(0)
    G = LinearBN().eval()
    with torch.no_grad():  # statistics of an earlier training, to be forgotten
        G.norm.running_mean.fill_(5.0), G.norm.running_var.fill_(9.0), G.norm.num_batches_tracked.fill_(7)
    seen = []
    G.norm.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach().clone()))
    z, y = torch.randn(5 * 8, 3), torch.randint(3, (40,))
    assert standing_statistics(G, z, y, passes=5) == 1
    assert len(seen) == 5 and all(len(x) == 8 for x in seen)
    torch.testing.assert_close(G.norm.running_mean, torch.stack([x.mean(0) for x in seen]).mean(0))
    torch.testing.assert_close(G.norm.running_var, torch.stack([x.var(0, correction=1) for x in seen]).mean(0))
    assert not G.training and G.norm.momentum == 0.3 and G.norm.num_batches_tracked == 5
    assert torch.equal(seen[2], G.linear(z[16:24]) + y[16:24, None].float())  # the passes take the batches in order


def test_a_model_resampled_after_standing_statistics(tmp_path):
    data = write_class_folder(tmp_path / "data")
    cfg = load_config(None, TINY + ["g.norm=batch", "data.name=class_folder", f"data.root={data}",
                                    "data.conditional=true", f"run.root={tmp_path}", "run.name=run"])
    run = RunDir.create(cfg)
    train(cfg, run, progress=False)
    model = load_generator(run.path)
    before = model.sample(8, seed=3)
    after = model.standing_statistics(passes=4, batch_size=16, seed=1).sample(8, seed=3)
    assert not torch.equal(before, after)
    again = load_generator(run.path).standing_statistics(passes=4, batch_size=16, seed=1).sample(8, seed=3)
    assert torch.equal(after, again)  # the same latents give the same statistics
    assert main(["sample", str(run), "--n", "8", "--standing-stats", "4", "--batch-size", "16",
                 "--out", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").stat().st_size > 1000


def test_a_generator_without_batch_norm_is_refused(tiny):
    cfg = load_config(None, tiny + ["train.steps=2", "eval.every=2"])
    run = RunDir.create(cfg)
    train(cfg, run, progress=False)
    with pytest.raises(ConfigError, match="this generator has no batch norm"):
        load_generator(run.path).standing_statistics(passes=2, batch_size=8)


def test_a_conditional_run_draws_one_class_per_row_of_its_sample_picture(tmp_path, monkeypatch):
    from ganscape.training import sampling

    drawn = []
    generate = sampling.generate
    monkeypatch.setattr(sampling, "generate", lambda *a, **k: drawn.append(k.get("labels")) or generate(*a, **k))
    data = write_class_folder(tmp_path / "data")
    cfg = load_config(None, TINY + ["data.name=class_folder", f"data.root={data}", "data.conditional=true",
                                    f"run.root={tmp_path}", "run.name=run", "log.samples_every=6"])
    run = RunDir.create(cfg)
    train(cfg, run, progress=False)
    assert torch.equal(drawn[-1], torch.tensor([0] * 8 + [1] * 8 + [2] * 8))
    assert (run.samples / "step_00000006.png").stat().st_size > 1000
    assert sampling.grid_classes(1000).tolist() == [0, 111, 222, 333, 444, 555, 666, 777, 888, 999]
    assert sampling.grid_classes(10).tolist() == list(range(10))
