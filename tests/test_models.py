"""Models: each architecture learns a tiny batch by heart; GPT and the T5 decoder are causal,
encoders see both ways, cross-attention reads the whole source; cached generation equals
recomputation for every positional encoding; save/load round-trips; bad configs and bad
checkpoints fail with errors that say what is wrong."""

import json
import time
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from conftest import random_ids, tiny_model

from annotated.models.config import ARCHITECTURES, ModelConfig
from annotated.models.generate import generate, sample_next
from annotated.models.summary import count_parameters, summary
from annotated.models.transformer import (
    DecoderOnly,
    EncoderDecoder,
    EncoderOnly,
    build_model,
    load_model,
)
from annotated.positional import POSITIONAL_ENCODINGS
from annotated.tasks import get_task

V, C, H = 13, 32, 4
ENCODINGS = sorted(POSITIONAL_ENCODINGS)
pytestmark = pytest.mark.usefixtures("one_thread")
ids = partial(random_ids, high=V)  # ids(*shape, seed=0)


def make(arch="decoder", seed=0, **kw):
    return tiny_model(
        seed, arch=arch, vocab_size=V, d_model=C, n_heads=H, **kw
    ).eval()


def logits_of(model, a, b=None):
    return (
        model(a, b).logits
        if isinstance(model, EncoderDecoder)
        else model(a).logits
    )


def changed_positions(before, after):
    return (
        (after - before).abs().amax(dim=(0, 2)) > 1e-6
    ).tolist()  # per position


# --- learning ----------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_overfits_a_tiny_fixed_batch(arch, norm):
    model = make(arch, norm=norm, n_layers=2, positional="rope").train()
    src, tgt = ids(4, 8, seed=1), ids(4, 8, seed=2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    start = time.perf_counter()
    for _ in range(120):
        logits = (
            model(src, tgt).logits
            if arch == "encoder-decoder"
            else model(src).logits
        )
        loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.01:
            break
    assert loss.item() < 0.05, (
        f"{arch}/{norm} did not memorise 32 tokens: loss {loss.item():.3f}"
    )
    assert (
        time.perf_counter() - start < 60
    )  # generous: a hang guard, not a benchmark


def test_classification_head_learns_and_pools_only_real_tokens():
    model = make("encoder", n_classes=3, pad_id=0).train()
    x = ids(6, 8, seed=3, high=V - 1) + 1  # no pad tokens ...
    x[:3, 5:] = 0  # ... except at the end of the first three rows
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = F.cross_entropy(model.classify(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    model.eval()
    assert model.classify(x).shape == (6, 3)
    x2 = x.clone()
    x2[:3, 5:] = (
        0  # still pad: unchanged; pad ids are hidden keys and not pooled, so
    )
    torch.testing.assert_close(model.classify(x2), model.classify(x))
    explicit = model.classify(
        x, padding_mask=x != 0
    )  # the same as deriving the mask from pad_id
    torch.testing.assert_close(explicit, model.classify(x))
    with pytest.raises(ValueError, match="n_classes"):
        make("encoder").classify(x)


def reverse_accuracy(embedding_scale):
    """Held-out token accuracy of a sinusoidal GPT after 150 AdamW steps on reversing 6 symbols."""
    task = get_task("reverse")
    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=task.vocab_size, d_model=64, n_layers=2, n_heads=2, max_len=16,
                                    positional="sinusoidal", embedding_scale=embedding_scale))  # fmt: skip
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    data = torch.Generator().manual_seed(0)
    for _ in range(150):
        batch = task.sample(64, 6, data)
        logits = model(batch.inputs).logits
        loss = F.cross_entropy(
            logits[batch.target_mask], batch.targets[batch.target_mask]
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    batch = task.sample(512, 6, torch.Generator().manual_seed(123))
    with torch.no_grad():
        right = (
            model.eval()(batch.inputs).logits.argmax(-1) == batch.targets
        )  # (B, T)
    return right[batch.target_mask].float().mean().item()


@pytest.mark.slow
def test_sinusoidal_decoder_learns_to_reverse_with_the_automatic_embedding_scale():
    """A fixed step budget: √C-scaled tokens learn; unscaled tokens (std 0.02) under amplitude-1
    sinusoids stay near chance (1 / 10 symbols) in the same 150 steps."""
    assert reverse_accuracy(None) >= 0.95
    assert reverse_accuracy(1.0) < 0.5


# --- who sees what -----------------------------------------------------------------------------


@pytest.mark.parametrize("positional", ENCODINGS)
def test_decoder_only_is_causal(positional):
    model = make("decoder", positional=positional)
    x, j = ids(2, 9), 4
    x2 = x.clone()
    x2[:, j] = (x2[:, j] + 1) % V
    assert changed_positions(logits_of(model, x), logits_of(model, x2)) == [
        False
    ] * j + [True] * (9 - j)


@pytest.mark.parametrize("positional", ["rope", "t5", "alibi", "learned"])
def test_encoder_sees_both_directions_and_t5_decoder_is_causal(positional):
    enc = make("encoder", positional=positional)
    x, j = ids(2, 9), 4
    x2 = x.clone()
    x2[:, j] = (x2[:, j] + 1) % V
    assert (
        changed_positions(logits_of(enc, x), logits_of(enc, x2)) == [True] * 9
    )

    t5 = make("encoder-decoder", positional=positional)
    src, tgt = ids(2, 6, seed=1), ids(2, 9, seed=2)
    tgt2 = tgt.clone()
    tgt2[:, j] = (tgt2[:, j] + 1) % V
    assert changed_positions(
        logits_of(t5, src, tgt), logits_of(t5, src, tgt2)
    ) == [False] * j + [True] * (9 - j)
    for s in range(
        6
    ):  # any source token, first or last, reaches every target position
        src2 = src.clone()
        src2[:, s] = (src2[:, s] + 1) % V
        assert (
            changed_positions(
                logits_of(t5, src, tgt), logits_of(t5, src2, tgt)
            )
            == [True] * 9
        )


def test_cross_attention_weights_cover_the_source_and_padding_hides_keys():
    t5 = make("encoder-decoder", positional="t5")
    src, tgt = ids(2, 6, seed=1), ids(2, 5, seed=2)
    out = t5(src, tgt, need_weights=True)
    assert len(out.cross_attentions) == 2 and out.cross_attentions[
        0
    ].shape == (2, H, 5, 6)
    assert len(out.attentions) == 2 and len(out.encoder_attentions) == 2
    assert all(
        (w > 0).all() for w in out.cross_attentions
    )  # every target position reads every source token
    keep = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    src2 = src.clone()
    src2[1, 4:] = (src2[1, 4:] + 1) % V
    torch.testing.assert_close(
        t5(src2, tgt, src_padding_mask=keep).logits,
        t5(src, tgt, src_padding_mask=keep).logits,
    )
    w = t5(
        src, tgt, src_padding_mask=keep, need_weights=True
    ).cross_attentions[0]
    assert (w[1, ..., 4:] == 0).all()
    assert (
        t5(src, tgt).attentions is None
        and t5(src, tgt).cross_attentions is None
    )


def test_gpt_attention_weights_are_lower_triangular():
    out = make("decoder", positional="alibi", n_kv_heads=2)(
        ids(2, 6), need_weights=True
    )
    assert [tuple(w.shape) for w in out.attentions] == [(2, H, 6, 6)] * 2
    for w in out.attentions:
        assert torch.equal(w.triu(1), torch.zeros_like(w))
        torch.testing.assert_close(w.sum(-1), torch.ones(2, H, 6))


# --- generation and the KV cache ---------------------------------------------------------------


@pytest.mark.parametrize("positional", ENCODINGS)
def test_cached_logits_equal_the_full_forward(positional):
    model = make("decoder", positional=positional, n_kv_heads=2)
    x = ids(2, 10)
    full = model(x).logits
    caches = model.new_caches()
    parts = [model(x[:, :4], caches=caches).logits] + [
        model(x[:, t : t + 1], caches=caches).logits for t in range(4, 10)
    ]
    torch.testing.assert_close(
        torch.cat(parts, 1), full, atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("arch", ["decoder", "encoder-decoder"])
@pytest.mark.parametrize("positional", ENCODINGS)
def test_generation_with_and_without_cache_gives_the_same_tokens(
    arch, positional
):
    model = make(arch, positional=positional, seed=1)
    prompt, src = ids(3, 3, seed=2), ids(3, 5, seed=3)
    extra = {"src": src} if arch == "encoder-decoder" else {}
    runs = {}
    for mode, kw in {
        "greedy": {"greedy": True},
        "sample": {"temperature": 1.5},
        "top_k": {"top_k": 4},
    }.items():
        for use_cache in (True, False):
            gen = torch.Generator().manual_seed(7)
            runs[mode, use_cache] = generate(
                model,
                prompt,
                12,
                use_cache=use_cache,
                generator=gen,
                **kw,
                **extra,
            )
        assert torch.equal(runs[mode, True], runs[mode, False]), mode
        assert runs[mode, True].shape == (3, 15) and torch.equal(
            runs[mode, True][:, :3], prompt
        )
    assert not torch.equal(
        runs["greedy", True], runs["sample", True]
    )  # sampling really samples


def test_generate_restores_training_mode_and_checks_arguments():
    model = make("decoder", dropout=0.1).train()
    generate(model, ids(1, 2), 3, greedy=True)
    assert model.training
    with pytest.raises(ValueError, match="temperature"):
        generate(model, ids(1, 2), 3, temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        generate(model, ids(1, 2), 3, top_k=V + 1)
    with pytest.raises(ValueError, match="src"):
        generate(make("encoder-decoder"), ids(1, 2), 3)
    with pytest.raises(ValueError, match="DecoderOnly or EncoderDecoder"):
        generate(make("encoder"), ids(1, 2), 3)
    with pytest.raises(
        ValueError, match="cannot extrapolate"
    ):  # the learned table has 32 rows
        generate(
            make("decoder", positional="learned"), ids(1, 30), 5, greedy=True
        )


def test_top_k_and_greedy_sampling():
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0]]).expand(500, -1)
    gen = torch.Generator().manual_seed(0)
    picked = sample_next(logits, top_k=2, generator=gen)
    assert set(picked.flatten().tolist()) == {
        1,
        3,
    }  # only the two largest logits survive
    assert sample_next(logits[:1], greedy=True).item() == 1
    cold = sample_next(logits, temperature=0.05, generator=gen)
    assert (
        cold == 1
    ).float().mean() > 0.99  # low temperature approaches greedy


# --- save / load -------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_save_load_round_trip(tmp_path, arch):
    kw = {"n_classes": 3} if arch == "encoder" else {}
    model = make(arch, positional="t5", norm="post", tie_weights=False, **kw)
    path = tmp_path / "model.pt"
    model.save(path)
    assert [p.name for p in tmp_path.iterdir()] == [
        "model.pt"
    ]  # no temp file left behind
    loaded = load_model(path)
    assert (
        type(loaded) is type(model)
        and loaded.config == model.config
        and not loaded.training
    )
    src, tgt = ids(2, 6), ids(2, 4)
    assert torch.equal(
        logits_of(loaded, src, tgt), logits_of(model, src, tgt)
    )
    fresh = make(
        arch, seed=5, positional="t5", norm="post", tie_weights=False, **kw
    )
    assert not torch.equal(
        logits_of(fresh, src, tgt), logits_of(model, src, tgt)
    )
    fresh.load_weights(path)
    assert torch.equal(logits_of(fresh, src, tgt), logits_of(model, src, tgt))


def test_tied_weights_stay_tied_after_loading(tmp_path):
    model = make("decoder")
    model.save(tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.lm_head.weight is loaded.tok_emb.weight


def test_mismatched_config_names_the_field(tmp_path):
    path = tmp_path / "m.pt"
    make("decoder", n_layers=2).save(path)
    with pytest.raises(
        ValueError, match=r"n_layers: checkpoint 2 vs expected 3"
    ):
        make("decoder", n_layers=3).load_weights(path)
    other = ModelConfig(
        vocab_size=V, d_model=C, n_heads=H, max_len=32, positional="alibi"
    )
    with pytest.raises(
        ValueError, match=r"positional: checkpoint 'rope' vs expected 'alibi'"
    ):
        load_model(path, config=other)


def test_truncated_foreign_and_damaged_files(tmp_path):
    good = tmp_path / "good.pt"
    make("decoder").save(good)
    data = good.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_model(cut)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not an annotated checkpoint"):
        load_model(text)
    for foreign in (
        torch.zeros(3),
        {"model": {}},
        make("decoder").state_dict(),
    ):
        torch.save(foreign, tmp_path / "foreign.pt")
        with pytest.raises(ValueError, match="not an annotated checkpoint"):
            load_model(tmp_path / "foreign.pt")
    checkpoint = torch.load(good, weights_only=True)
    del checkpoint[
        "sha256"
    ]  # edited by hand below: without its checksum it loads unchecked (test_robustness)
    checkpoint["format_version"] = 99
    torch.save(checkpoint, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="format_version 99"):
        load_model(tmp_path / "future.pt")
    checkpoint["format_version"] = 1
    del checkpoint["state_dict"]["tok_emb.weight"]
    torch.save(checkpoint, tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="(?s)do not fit.*tok_emb.weight"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.pt")


# --- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw, message",
    [
        (
            {"arch": "gpt"},
            r"arch 'gpt'.*'decoder', 'encoder', 'encoder-decoder'",
        ),
        (
            {"d_model": 30, "n_heads": 4},
            r"d_model=30 must be divisible by n_heads=4",
        ),
        (
            {"d_model": 12, "n_heads": 4, "positional": "rope"},
            r"rotates pairs of dims but the head dim .* 3 is odd",
        ),
        (
            {"positional": "learned", "max_len": 0},
            r"max_len must be a positive integer",
        ),
        (
            {"positional": "xpos"},
            r"unknown positional encoding 'xpos'.*'alibi'",
        ),
        (
            {"attention": "sparse"},
            r"unknown attention kernel 'sparse'.*'blockwise'",
        ),
        (
            {"norm": "middle"},
            r"unknown norm placement 'middle'.*\['post', 'pre'\]",
        ),
        ({"activation": "tanh"}, r"unknown activation 'tanh'.*'gelu'"),
        (
            {"n_kv_heads": 3},
            r"n_heads=4 must be divisible by n_kv_heads=3",
        ),
        ({"dropout": 1.0}, r"dropout must lie in \[0, 1\)"),
        ({"n_classes": 2}, r"n_classes is for the encoder"),
        (
            {"arch": "encoder", "n_classes": 1},
            r"n_classes must be at least 2",
        ),
        ({"pad_id": V}, rf"pad_id={V} must be a token id"),
        ({"vocab_size": 0}, r"vocab_size must be a positive integer"),
        ({"d_ff": -1}, r"d_ff must be a positive integer or None"),
        (
            {"embedding_scale": 0},
            r"embedding_scale must be a positive finite number",
        ),
        (
            {"embedding_scale": -2.0},
            r"embedding_scale must be a positive finite number",
        ),
        (
            {"embedding_scale": float("nan")},
            r"embedding_scale must be a positive finite number",
        ),
        (
            {"embedding_scale": float("inf")},
            r"embedding_scale must be a positive finite number",
        ),
        (
            {"embedding_scale": True},
            r"embedding_scale must be a positive finite number",
        ),
        (
            {"embedding_scale": "8"},
            r"embedding_scale must be a positive finite number",
        ),
    ],
)
def test_invalid_configs_say_what_to_change(kw, message):
    kw = {"vocab_size": V, **kw}
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kw)


def test_config_round_trips_through_json_and_defaults():
    config = ModelConfig(
        arch="encoder",
        vocab_size=V,
        n_classes=4,
        positional="t5",
        norm="post",
    )
    assert config.d_ff == 4 * config.d_model
    again = ModelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    with pytest.raises(
        ValueError, match=r"unknown ModelConfig field\(s\) \['heads'\]"
    ):
        ModelConfig.from_dict({"vocab_size": V, "heads": 4})
    with pytest.raises(TypeError):
        ModelConfig()  # vocab_size is required
    assert isinstance(build_model(config.to_dict()), EncoderOnly)


def test_bad_inputs():
    model = make("decoder")
    with pytest.raises(ValueError, match="outside"):
        model(torch.tensor([[0, V]]))
    with pytest.raises(ValueError, match="torch.long"):
        model(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="padding_mask must be boolean"):
        make("encoder")(ids(2, 4), padding_mask=torch.ones(2, 4))


# --- embedding scale ---------------------------------------------------------------------------


@pytest.mark.parametrize("positional", sorted(POSITIONAL_ENCODINGS))
def test_embedding_scale_is_sqrt_d_model_only_for_fixed_positions_added_to_the_embeddings(
    positional,
):
    config = ModelConfig(
        vocab_size=V, d_model=64, n_heads=H, positional=positional
    )
    expected = (
        8.0 if positional in ("sinusoidal", "randomized") else 1.0
    )  # √64; learned/qk/score/none: 1
    assert (
        config.embedding_scale is None
        and config.effective_embedding_scale == expected
    )
    chosen = ModelConfig(
        vocab_size=V,
        d_model=64,
        n_heads=H,
        positional=positional,
        embedding_scale=3,
    )
    assert (
        chosen.embedding_scale == 3.0
        and chosen.effective_embedding_scale == 3.0
    )


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("positional, embedding_scale, scale", [
    ("sinusoidal", None, C**0.5), ("randomized", None, C**0.5), ("rope", None, 1.0), ("learned", 2.5, 2.5),
])  # fmt: skip
def test_every_stack_reads_scaled_tokens_and_the_tied_head_the_raw_matrix(
    arch, positional, embedding_scale, scale
):
    model = make(arch, positional=positional, embedding_scale=embedding_scale)
    stacks = [
        getattr(model, name)
        for name in ("encoder", "decoder")
        if hasattr(model, name)
    ]  # in call order
    inputs, outputs = [], []
    for stack in stacks:
        stack.register_forward_pre_hook(
            lambda module, args: inputs.append(args[0])
        )
        stack.register_forward_hook(
            lambda module, args, out: outputs.append(out[0])
        )
    src, tgt = ids(2, 6, seed=1), ids(2, 4, seed=2)
    logits = logits_of(model, src, tgt)
    table = model.tok_emb.weight  # (V, C)
    read = [src] if arch != "encoder-decoder" else [src, tgt]
    assert len(inputs) == len(read)
    for x, tokens in zip(inputs, read):
        torch.testing.assert_close(x, table[tokens] * scale)
    assert model.lm_head.weight is table
    torch.testing.assert_close(
        logits, outputs[-1] @ table.T
    )  # the head reads the unscaled matrix


def test_embedding_scale_round_trips_and_old_configs_without_it_still_load(
    tmp_path,
):
    for value in (None, 2.0):
        config = ModelConfig(
            vocab_size=V,
            d_model=C,
            n_heads=H,
            positional="sinusoidal",
            embedding_scale=value,
        )
        assert (
            ModelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
            == config
        )
    old = ModelConfig(
        vocab_size=V, d_model=C, n_heads=H, positional="sinusoidal"
    ).to_dict()
    del old[
        "embedding_scale"
    ]  # a config file written before the field existed: a new run, scaled automatically
    assert ModelConfig.from_dict(old).effective_embedding_scale == C**0.5
    x = ids(2, 6)
    for value in (None, 2.0):
        model = make(
            "decoder", positional="sinusoidal", embedding_scale=value
        )
        model.save(tmp_path / "m.pt")
        loaded = load_model(tmp_path / "m.pt")
        assert loaded.config.embedding_scale == value
        assert torch.equal(loaded(x).logits, model(x).logits)
    # A checkpoint saved before the field existed holds weights trained unscaled; it loads unscaled.
    for positional, pinned in (("sinusoidal", 1.0), ("rope", None)):
        model = make("decoder", positional=positional, embedding_scale=1.0)
        model.save(tmp_path / "m.pt")
        checkpoint = torch.load(tmp_path / "m.pt", weights_only=True)
        del (
            checkpoint["config"]["embedding_scale"],
            checkpoint["sha256"],
        )  # old files had no checksum either
        torch.save(checkpoint, tmp_path / "old.pt")
        loaded = load_model(tmp_path / "old.pt")
        assert (
            loaded.config.embedding_scale == pinned
            and loaded.config.effective_embedding_scale == 1.0
        )
        assert torch.equal(loaded(x).logits, model(x).logits)
    make("decoder", positional="rope").load_weights(
        tmp_path / "old.pt"
    )  # equal to a config made today


def test_checkpoints_with_a_random_positions_field_load_when_it_is_zero(
    tmp_path,
):
    """Positions are randomized by the encoding alone; a stored config that
    still names random_positions loads at 0 and is refused otherwise."""
    model, x = make("decoder", positional="rope"), ids(2, 6)
    model.save(tmp_path / "m.pt")
    checkpoint = torch.load(tmp_path / "m.pt", weights_only=True)
    del checkpoint["sha256"]
    for value in (0, 32):
        checkpoint["config"]["random_positions"] = value
        torch.save(checkpoint, tmp_path / "old.pt")
        if value:
            with pytest.raises(ValueError, match="positional='randomized'"):
                load_model(tmp_path / "old.pt")
        else:
            loaded = load_model(tmp_path / "old.pt")
            assert torch.equal(loaded(x).logits, model(x).logits)
    assert make("decoder", positional="randomized").position_range == 4 * 32
    assert make("decoder", positional="sinusoidal").position_range == 0


# --- size --------------------------------------------------------------------------------------


def test_parameter_count_matches_the_formula():
    L, F_ = 2, 4 * C
    block = (
        4 * (C * C + C) + 2 * 2 * C + (C * F_ + F_) + (F_ * C + C)
    )  # attention, 2 LayerNorms, FFN
    model = make("decoder", n_layers=L, positional="rope")
    assert (
        count_parameters(model) == V * C + L * block + 2 * C
    )  # tied head: embedding counted once
    untied = make(
        "decoder", n_layers=L, positional="learned", tie_weights=False
    )
    assert count_parameters(untied) == 2 * V * C + 32 * C + L * block + 2 * C
    t5 = make("encoder-decoder", n_layers=L, positional="t5")
    cross = 4 * (C * C + C) + 2 * C
    assert (
        count_parameters(t5)
        == V * C + 2 * (32 * H) + L * block + L * (block + cross) + 2 * 2 * C
    )
    assert isinstance(model, DecoderOnly)
    table = summary(t5)
    assert f"total: {count_parameters(t5):,} parameters" in table
    assert "lm_head" in table and "shared with tok_emb.weight" in table
    assert "decoder.blocks.1" in summary(t5, depth=3)
