"""Attention on images: the digits split, patches, the Vision Transformer and
its training loop.

References: patches against torch's ``F.unfold``; the split against
scikit-learn's stratified ``train_test_split``; the whole model against a
ViT assembled from ``torch.nn.TransformerEncoder`` with copied weights;
the class token's first-layer attention against softmax(q·kᵀ/√D) by hand.
"""

import doctest
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from annotated.models.vit import (
    VisionTransformer,
    cnn_baseline,
    mlp_baseline,
)
from annotated.tasks import digits
from annotated.tasks.digits import (
    DigitsData,
    ImageSplit,
    load_digits_data,
    patch_map,
    patches,
    stratified_order,
    unpatches,
)
from annotated.training.images import (
    random_shift,
    train_classifier,
    warmup_cosine,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    return load_digits_data(test_size=360, val_size=180, seed=0)


def tiny_vit(**kw):
    torch.manual_seed(0)
    options = dict(patch_size=2, d_model=16, n_layers=2, n_heads=2)
    return VisionTransformer(**{**options, **kw}).eval()


def images(b=3, seed=0):
    return torch.rand(b, 8, 8, generator=torch.Generator().manual_seed(seed))


def permute_patches(x, perm, size):
    return unpatches(patches(x, size)[:, perm], size)


# --- the data ----------------------------------------------------------------


def test_split_is_seeded_stratified_disjoint_and_complete(data):
    from sklearn.model_selection import train_test_split

    rows = [data.train.rows, data.val.rows, data.test.rows]
    assert [len(r) for r in rows] == [1797 - 540, 180, 360]
    assert torch.cat(rows).sort().values.equal(torch.arange(1797))
    everything = torch.cat(
        [data.train.labels, data.val.labels, data.test.labels]
    )
    share = everything.bincount() / len(everything)
    # scikit-learn's stratified split as the reference: per class within 1
    _, ref = train_test_split(
        everything.numpy(),
        test_size=360,
        stratify=everything.numpy(),
        random_state=0,
    )
    ref_counts = torch.as_tensor(ref).bincount()
    for split in (data.test, data.val):
        counts = split.labels.bincount(minlength=10)
        assert (counts - share * len(split)).abs().max() <= 1
    assert (data.test.labels.bincount() - ref_counts).abs().max() <= 1
    # pixels scaled to [0, 1], the labels where load_digits has them
    assert data.train.images.min() == 0 and data.train.images.max() == 1
    assert data.test.images.shape == (360, 8, 8)
    again = load_digits_data(test_size=360, val_size=180, seed=0)
    other = load_digits_data(test_size=360, val_size=180, seed=1)
    assert again.test.rows.equal(data.test.rows)
    assert not other.test.rows.equal(data.test.rows)


def test_module_doctests():
    assert doctest.testmod(digits).failed == 0


def test_stratified_order_prefixes_hold_each_class_share():
    labels = torch.tensor([0] * 6 + [1] * 3 + [2] * 3)
    order = stratified_order(labels, 3)
    assert order.sort().values.equal(torch.arange(12))
    for k in range(1, 13):
        counts = labels[order[:k]].bincount(minlength=3).float()
        assert (counts - k * torch.tensor([0.5, 0.25, 0.25])).abs().max() <= 1


# --- patches -----------------------------------------------------------------


def test_patches_hand_checked_order_on_a_4x4_image():
    # 0  1 | 2  3
    # 4  5 | 6  7
    # -----+-----
    # 8  9 |10 11
    # 12 13|14 15
    x = torch.arange(16.0).reshape(1, 4, 4)
    expected = torch.tensor(
        [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]
    )
    assert patches(x, 2)[0].equal(expected.float())
    assert patches(x, 1)[0, :, 0].equal(torch.arange(16.0))
    assert patches(x, 4)[0, 0].equal(torch.arange(16.0))
    # one value per patch painted over its pixels
    painted = patch_map(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), 2)[0]
    assert painted.equal(
        torch.tensor(
            [[1.0, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
        )
    )


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_patches_equal_unfold_and_round_trip(size):
    x = images()
    # F.unfold: (B, 1·P·P, N), patches in the same row-major order
    ref = F.unfold(x[:, None], kernel_size=size, stride=size).transpose(1, 2)
    assert patches(x, size).equal(ref)
    assert unpatches(patches(x, size), size).equal(x)


# --- the model ---------------------------------------------------------------


@pytest.mark.parametrize("positions", ["learned", "2d", "none"])
def test_output_shapes_and_class_attention_rows_sum_to_one(positions):
    model = tiny_vit(positions=positions)
    out = model(images(5), need_weights=True)
    assert out.logits.shape == (5, 10)
    assert len(out.attentions) == 2
    assert all(a.shape == (5, 2, 17, 17) for a in out.attentions)
    for a in out.attentions:
        torch.testing.assert_close(a[:, :, 0].sum(-1), torch.ones(5, 2))
    over_patches = model.class_attention(images(5))
    assert over_patches.shape == (5, 2, 16)
    assert (over_patches.sum(-1) < 1).all()
    assert model(images(5)).attentions is None


def test_class_token_first_layer_attention_by_hand():
    model = tiny_vit()
    x = images(2)
    tokens = model.patch_embedding(patches(x, 2)) + model.patch_positions
    z0 = torch.cat(
        [model.class_token.expand(2, 1, -1), tokens], 1
    )  # (B, 17, C)
    attn = model.encoder.blocks[0].self_attn
    h = attn.norm(z0)
    q = attn.sublayer.q_proj(h).view(2, 17, 2, 8).transpose(1, 2)
    k = attn.sublayer.k_proj(h).view(2, 17, 2, 8).transpose(1, 2)
    ref = torch.softmax(q[:, :, :1] @ k.transpose(-1, -2) / math.sqrt(8), -1)
    got = model(x, need_weights=True).attentions[0][:, :, :1]
    torch.testing.assert_close(got, ref)


def test_model_equals_a_vit_built_from_torch_transformer_encoder():
    model = tiny_vit()
    c = 16
    layers = []
    for block in model.encoder.blocks:
        ref = nn.TransformerEncoderLayer(
            c,
            2,
            4 * c,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        a, ff = block.self_attn, block.ff
        with torch.no_grad():
            s = a.sublayer
            ref.self_attn.in_proj_weight.copy_(
                torch.cat([s.q_proj.weight, s.k_proj.weight, s.v_proj.weight])
            )
            ref.self_attn.in_proj_bias.copy_(
                torch.cat([s.q_proj.bias, s.k_proj.bias, s.v_proj.bias])
            )
            ref.self_attn.out_proj.load_state_dict(s.out_proj.state_dict())
            ref.norm1.load_state_dict(a.norm.state_dict())
            ref.norm2.load_state_dict(ff.norm.state_dict())
            ref.linear1.load_state_dict(ff.sublayer.up.state_dict())
            ref.linear2.load_state_dict(ff.sublayer.down.state_dict())
        layers.append(ref.eval())
    x = images(4)
    with torch.no_grad():
        tokens = F.unfold(x[:, None], 2, stride=2).transpose(
            1, 2
        )  # (B, 16, 4)
        z = model.patch_embedding(tokens) + model.patch_positions
        z = torch.cat([model.class_token.expand(4, 1, c), z], 1)
        for layer in layers:
            z = layer(z)
        expected = model.head(model.encoder.final_norm(z)[:, 0])
        torch.testing.assert_close(
            model(x).logits, expected, atol=1e-5, rtol=1e-4
        )


@pytest.mark.parametrize("positions", ["learned", "2d"])
def test_without_positions_shuffling_patches_changes_nothing(positions):
    model = tiny_vit(positions=positions)
    with torch.no_grad():  # weights of order 1, so every input matters
        for p in model.parameters():
            nn.init.normal_(p, std=0.5)
    x, perm = (
        images(4),
        torch.randperm(16, generator=torch.Generator().manual_seed(0)),
    )
    shuffled = permute_patches(x, perm, 2)
    assert not shuffled.equal(x)
    # with positions, the order of the patches matters (float rounding alone
    # moves these logits by ~1e-6)
    assert (model(x).logits - model(shuffled).logits).abs().max() > 1e-3
    with torch.no_grad():  # positions removed: attention is a set operation
        for p in (
            model.patch_positions,
            model.row_positions,
            model.col_positions,
        ):
            if p is not None:
                p.zero_()
    torch.testing.assert_close(
        model(x).logits, model(shuffled).logits, atol=1e-4, rtol=1e-4
    )
    nope = tiny_vit(positions="none")
    torch.testing.assert_close(nope(x).logits, nope(shuffled).logits)


def test_2d_positions_add_a_row_and_a_column_vector():
    model = tiny_vit(positions="2d")
    table = model.position_table()  # (16, C), patches row by row
    assert table.shape == (16, 16)
    row, col = model.row_positions, model.col_positions
    torch.testing.assert_close(table[1 * 4 + 2], row[1] + col[2])
    assert (
        model.position_table() is not None
        and tiny_vit(positions="none").position_table() is None
    )


# --- training ----------------------------------------------------------------


def test_training_a_tiny_vit_lowers_the_loss(data):
    small = DigitsData(
        train=ImageSplit(
            data.train.images[:256],
            data.train.labels[:256],
            data.train.rows[:256],
        ),
        test=ImageSplit(
            data.test.images[:64], data.test.labels[:64], data.test.rows[:64]
        ),
    )
    torch.manual_seed(0)
    model = VisionTransformer(patch_size=4, d_model=16, n_layers=1, n_heads=2)
    state = torch.random.get_rng_state()
    history = train_classifier(
        model, small, epochs=4, lr=1e-2, batch_size=32, seed=0
    )
    assert torch.random.get_rng_state().equal(state)  # caller's RNG kept
    losses = history.series("loss")
    assert losses[-1] < losses[0] - 0.3
    assert 0 <= history.final["accuracy"] <= 1
    assert history.meta["n_eval"] == 64 and len(history.epochs) == 4
    # a bare-logits model trains through the same loop, with shifts
    torch.manual_seed(0)
    mlp = mlp_baseline()
    h = train_classifier(
        mlp, small, epochs=3, lr=1e-2, batch_size=32, shift=1
    )
    assert h.series("loss")[-1] < h.series("loss")[0]
    assert cnn_baseline()(images(2)).shape == (2, 10)


def test_random_shift_moves_whole_images_and_fills_zeros():
    x = torch.zeros(50, 8, 8)
    x[:, 3, 4] = 1.0  # one lit pixel
    moved = random_shift(x, 1, torch.Generator().manual_seed(0))
    lit = moved.flatten(1).argmax(1)
    dy, dx = lit // 8 - 3, lit % 8 - 4
    assert moved.sum() == 50 and dy.abs().max() == 1 and dx.abs().max() == 1
    assert len(set(zip(dy.tolist(), dx.tolist()))) == 9


def test_warmup_then_cosine():
    assert warmup_cosine(0, 100, 10) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, 10) == pytest.approx(0.5)
    assert warmup_cosine(100, 100, 10) == pytest.approx(0.0)


# --- readable errors ---------------------------------------------------------


def test_bad_inputs_say_what_to_change(data):
    with pytest.raises(
        ValueError,
        match=r"does not tile 8×8 images; choose one of \[1, 2, 4, 8\]",
    ):
        patches(images(), 3)
    with pytest.raises(ValueError, match="does not tile"):
        VisionTransformer(patch_size=3)
    with pytest.raises(ValueError, match="add a batch axis"):
        patches(torch.zeros(8, 8), 2)
    with pytest.raises(ValueError, match="unknown positions"):
        VisionTransformer(positions="3d")
    with pytest.raises(ValueError, match="leave them out"):
        VisionTransformer(arch="decoder")
    with pytest.raises(ValueError, match=r"images must be \(B, 8, 8\)"):
        tiny_vit()(torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="do not tile a square"):
        unpatches(torch.zeros(1, 3, 4), 2)
    with pytest.raises(ValueError, match="test_size"):
        load_digits_data(test_size=1700, val_size=200)
    no_val = DigitsData(train=data.train, test=data.test)
    with pytest.raises(ValueError, match="val_size > 0"):
        train_classifier(tiny_vit(), no_val, epochs=1, eval_split="val")
