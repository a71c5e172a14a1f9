"""BigGAN's layers against their formulas, in float64: self-attention and conditional batch norm."""

from __future__ import annotations

import pytest
import torch

from ganscape.nets.attention import SelfAttention
from ganscape.nets.conditional_norm import ConditionalBatchNorm2d


pytestmark = pytest.mark.usefixtures("float64")


def test_self_attention_is_the_identity_at_its_initial_gain():
    torch.manual_seed(0)
    layer = SelfAttention(16)
    x = torch.randn(2, 16, 4, 6)
    assert layer.gamma.item() == 0 and torch.equal(layer(x), x)
    # query and key 16 x 2 each, value 16 x 8, out 8 x 16, and the gain
    assert sum(p.numel() for p in layer.parameters()) == 2 * 16 * 2 + 16 * 8 + 8 * 16 + 1


def test_self_attention_equals_the_softmax_formula_written_out():
    """Independent value: per sample and position, the 1x1 convolutions as matrix products, the 2x2 max
    pooling and the softmax written as loops over positions."""
    torch.manual_seed(1)
    c, h, w = 16, 4, 6
    layer = SelfAttention(c)
    with torch.no_grad():
        layer.gamma.fill_(0.7)
    x = torch.randn(2, c, h, w)
    Wq, Wk, Wv, Wo = (m.weight[:, :, 0, 0] for m in (layer.query, layer.key, layer.value, layer.out))
    expected = torch.empty_like(x)
    for b in range(2):
        def pooled(W):  # W x, then the max over each 2x2 window, one column per window
            y = torch.einsum("oc,chw->ohw", W, x[b])
            return torch.stack([y[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2].amax(dim=(1, 2))
                                for i in range(h // 2) for j in range(w // 2)], dim=1)

        keys, values = pooled(Wk), pooled(Wv)
        for i in range(h):
            for j in range(w):
                q = Wq @ x[b, :, i, j]
                scores = torch.exp(q @ keys)
                attended = values @ (scores / scores.sum())
                expected[b, :, i, j] = x[b, :, i, j] + 0.7 * Wo @ attended
    torch.testing.assert_close(layer(x), expected, rtol=1e-12, atol=1e-12)


def test_conditional_batch_norm_equals_its_closed_form_for_an_embedding_and_a_z_chunk():
    """Independent value: (x - batch mean) / sqrt(biased batch variance + eps) * (1 + Wg c) + Wb c per channel,
    with c = [shared class embedding, z chunk]."""
    torch.manual_seed(2)
    embedding, chunk = torch.randn(3, 5), torch.randn(3, 4)
    layer = ConditionalBatchNorm2d(6, condition_dim=9, eps=1e-4)
    x = torch.randn(3, 6, 5, 5)
    c = torch.cat([embedding, chunk], dim=1)
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), correction=0, keepdim=True)
    gain = 1 + c @ layer.gain.weight.T
    bias = c @ layer.bias.weight.T
    expected = (x - mean) / torch.sqrt(var + 1e-4) * gain[:, :, None, None] + bias[:, :, None, None]
    torch.testing.assert_close(layer(x, c), expected, rtol=1e-12, atol=1e-12)
    assert layer.gain.bias is None and layer.bias.bias is None  # BigGAN's maps have no bias terms
    other = chunk.clone()
    other[1] += 1.0  # another z chunk for sample 1 changes its output only
    changed = (layer(x, torch.cat([embedding, other], dim=1)) - layer(x, c)).abs().amax(dim=(1, 2, 3))
    assert changed[1] > 0 and changed[0] == changed[2] == 0


def test_class_conditional_batch_norm_starts_as_plain_batch_norm_and_looks_up_each_class():
    torch.manual_seed(3)
    layer = ConditionalBatchNorm2d(4, num_classes=3)
    plain = torch.nn.BatchNorm2d(4, affine=False)
    x, y = torch.randn(5, 4, 3, 3), torch.tensor([0, 2, 1, 2, 0])
    torch.testing.assert_close(layer(x, y), plain(x), rtol=0, atol=0)
    with torch.no_grad():
        layer.gain.weight.normal_(), layer.bias.weight.normal_()
    expected = plain(x) * (1 + layer.gain.weight[y])[:, :, None, None] + layer.bias.weight[y][:, :, None, None]
    torch.testing.assert_close(layer(x, y), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="either a condition vector"):
        ConditionalBatchNorm2d(4, condition_dim=3, num_classes=3)
