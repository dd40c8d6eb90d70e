import pytest
import torch

from hubbub.models.attention import MultiHeadAttention, band_to_dense, local_attention_mask
from hubbub.models.dualpath import chunk, overlap_add
from hubbub.models.transformer import TransformerLayer


def _pair(d=16, h=2, w=5):
    torch.manual_seed(0)
    local = MultiHeadAttention(d, h, window=w).eval()
    glob = MultiHeadAttention(d, h).eval()
    glob.load_state_dict(local.state_dict())
    return local, glob


@pytest.mark.parametrize("length,window", [(1, 3), (2, 1), (7, 3), (31, 7), (64, 16), (65, 16), (100, 33)])
def test_local_equals_masked_global(length, window):
    local, glob = _pair(w=window)
    x = torch.randn(3, length, 16)
    out_local, _ = local(x)
    out_glob, _ = glob(x, attn_mask=local_attention_mask(length, window))
    torch.testing.assert_close(out_local, out_glob, atol=1e-5, rtol=1e-5)


def test_local_with_padding_matches_masked_global_on_valid_frames():
    local, glob = _pair(w=7)
    x = torch.randn(2, 40, 16)
    pad = torch.zeros(2, 40, dtype=torch.bool)
    pad[1, 25:] = True
    out_local, _ = local(x, key_padding_mask=pad)
    out_glob, _ = glob(x, key_padding_mask=pad, attn_mask=local_attention_mask(40, 7))
    torch.testing.assert_close(out_local[0], out_glob[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_local[1, :25], out_glob[1, :25], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(out_local).all()


@pytest.mark.parametrize("window", [None, 9])
def test_weights_on_request_do_not_change_outputs(window):
    torch.manual_seed(1)
    attn = MultiHeadAttention(16, 4, window=window).eval()
    x = torch.randn(2, 50, 16)
    plain, none = attn(x)
    with_w, weights = attn(x, need_weights=True)
    assert none is None
    torch.testing.assert_close(plain, with_w, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=1e-5, rtol=1e-5)


def test_local_weights_band_expands_to_masked_global_weights():
    local, glob = _pair(w=5)
    x = torch.randn(1, 23, 16)
    _, band = local(x, need_weights=True)
    _, dense = glob(x, attn_mask=local_attention_mask(23, 5), need_weights=True)
    assert band.shape == (1, 2, 23, 5)
    torch.testing.assert_close(band_to_dense(band, 23), dense, atol=1e-6, rtol=1e-5)


def test_local_attention_runs_where_global_would_need_gigabytes():
    # 60k frames: a T x T score matrix would be 14 GB per head; the banded path is O(T * W)
    attn = MultiHeadAttention(8, 1, window=16).eval()
    with torch.inference_mode():
        out, _ = attn(torch.randn(1, 60_000, 8))
    assert out.shape == (1, 60_000, 8)


def test_gradients_flow_through_local_attention():
    layer = TransformerLayer(16, 2, 32, window=5)
    x = torch.randn(2, 30, 16, requires_grad=True)
    out, _ = layer(x)
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("length,size", [(1, 4), (5, 4), (50, 10), (51, 10), (99, 12)])
def test_chunk_overlap_add_round_trip(length, size):
    x = torch.randn(2, 3, length)
    chunks = chunk(x, size)
    assert chunks.shape[:3] == (2, 3, size)
    torch.testing.assert_close(overlap_add(chunks, length), 2 * x)  # every frame is in two chunks


def test_bad_attention_arguments():
    with pytest.raises(ValueError):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError):
        MultiHeadAttention(8, 2, window=0)


def test_local_attention_in_groups_of_blocks_matches(monkeypatch):
    import hubbub.models.attention as attention

    local, glob = _pair(w=7)
    x = torch.randn(2, 200, 16)
    whole, _ = local(x)
    monkeypatch.setattr(attention, "LOCAL_SCORE_BUDGET", 1)  # one block at a time
    grouped, _ = local(x)
    torch.testing.assert_close(grouped, whole, atol=1e-6, rtol=1e-5)
    ref, _ = glob(x, attn_mask=local_attention_mask(200, 7))
    torch.testing.assert_close(grouped, ref, atol=1e-5, rtol=1e-5)
