"""Speed options leave the arithmetic unchanged (fp32 tolerance); FLOP counts and MFU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from densescale.errors import ConfigError
from densescale.models.encoder import build_model, pad_batch
from densescale.models.flops import forward_flops, measure_matmul_peak, train_flops
from densescale.models.packed import pack, packed_embed, set_dropout, supports_packing
from densescale.train import TrainConfig, train

TINY = {"name": "toy", "layers": 2, "hidden": 32, "heads": 2, "intermediate": 64}


def _cfg(data, out, **kw):
    base = dict(data=str(data), model=TINY, init="scratch", vocab_size=200, steps=8, batch_size=8,
                negatives=8, query_max_len=16, passage_max_len=24, lr=1e-3, eval_every=0,
                eval_split=None, seed=7, out=str(out), num_threads=1, dropout=False,
                packed=False, fused_adamw=False, passage_chunk=4)
    return TrainConfig(**{**base, **kw})


def _weights(folder):
    w = load_file(str(folder / "0_Transformer" / "model.safetensors"))
    w.update({f"proj.{k}": v for k, v in load_file(str(folder / "2_Dense" /
                                                       "model.safetensors")).items()})
    return w


def _assert_close(a, b, rtol=1e-4, atol=1e-5):
    assert a.keys() == b.keys()
    bad = {k: float((a[k] - b[k]).abs().max()) for k in a
           if not torch.allclose(a[k], b[k], rtol=rtol, atol=atol)}
    assert not bad, bad


@pytest.fixture(scope="module")
def tok(toy_dataset, tmp_path_factory):
    """One WordPiece tokenizer for every run (a cached and a fresh one may number tokens
    differently, which would change the initial weights)."""
    from densescale.data import open_dataset
    from densescale.models.tokenizer import corpus_tokenizer

    d = tmp_path_factory.mktemp("tok")
    corpus_tokenizer(open_dataset(str(toy_dataset)).corpus, vocab_size=200).save_pretrained(d)
    return str(d)


@pytest.fixture(scope="module")
def plain(toy_dataset, tmp_path_factory, tok):
    out = tmp_path_factory.mktemp("plain")
    s = train(_cfg(toy_dataset, out, tokenizer=tok), progress=False)
    return out, s


@pytest.mark.parametrize("option", [{"packed": True}, {"fused_adamw": True},
                                    {"packed": True, "fused_adamw": True, "passage_chunk": 0}])
def test_speed_options_equal_the_plain_path(toy_dataset, tmp_path, plain, tok, option):
    out, s0 = plain
    s = train(_cfg(toy_dataset, tmp_path, tokenizer=tok, **option), progress=False)
    init = build_model(TINY, init="scratch", tokenizer=tok, seed=7).state_dict()
    w0, w = _weights(out / "last"), _weights(tmp_path / "last")
    _assert_close(w0, w)
    # the weights did move (the comparison is not between two untrained models)
    assert not torch.allclose(w0["encoder.layer.0.output.dense.weight"],
                              init["encoder.encoder.layer.0.output.dense.weight"], atol=1e-4)
    losses0 = [h["loss"] for h in s0["history"] if h["loss"] is not None]
    losses = [h["loss"] for h in s["history"] if h["loss"] is not None]
    np.testing.assert_allclose(losses, losses0, rtol=1e-5)


def test_compile_equals_the_plain_path(toy_dataset, tmp_path, plain, tok, monkeypatch):
    """The compiled packed step (dynamo graph capture + AOTAutograd, dynamic shapes) gives the
    plain weights. The test uses the aot_eager backend: inductor's C++ code generation takes
    minutes on a busy 2-core machine (bench/train_throughput.py --compile times the real one)."""
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: real(fn, backend="aot_eager", **kw))
    out, _ = plain
    s = train(_cfg(toy_dataset, tmp_path, tokenizer=tok, packed=True, compile=True),
              progress=False)
    _assert_close(_weights(out / "last"), _weights(tmp_path / "last"))
    assert s.compile_s is not None and s.compile_s > 0


def test_packed_forward_and_gradients_match_padded():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(1, 200, rng.integers(2, 40))) for _ in range(23)]
    for pooling, sim in (("mean", "dot"), ("cls", "cos")):
        m = build_model(TINY, init="scratch", seed=1, vocab_size=200, pooling=pooling,
                        similarity=sim)
        m.train()
        set_dropout(m, False)
        assert supports_packing(m.encoder)
        a = m.embed(pad_batch(seqs, 0))
        a.pow(3).sum().backward()
        ga = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
        m.zero_grad()
        b = packed_embed(m, pack(seqs, attn_rows=5))  # 5 attention chunks, last one short
        b.pow(3).sum().backward()
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        for n, p in m.named_parameters():
            if p.grad is not None and "key.bias" not in n:  # key bias: gradient is ~0 (noise)
                scale = float(ga[n].abs().max())
                torch.testing.assert_close(p.grad, ga[n], rtol=1e-4, atol=1e-5 * scale, msg=n)


def test_dropout_off_and_option_checks(toy_dataset, tmp_path):
    m = build_model(TINY, init="scratch", seed=1, vocab_size=200)
    set_dropout(m, False)
    assert all(x.p == 0 for x in m.modules() if isinstance(x, torch.nn.Dropout))
    assert m.encoder.config.hidden_dropout_prob == 0.1  # a saved model keeps its config
    m.encoder.gradient_checkpointing_enable()
    assert not supports_packing(m.encoder)
    with pytest.raises(ConfigError, match="compile"):
        train(_cfg(toy_dataset, tmp_path, compile=True, packed=False), progress=False)


def test_fast_dropout_is_seeded_and_is_the_cpu_default(toy_dataset, tmp_path, tok):
    """The bulk-stream dropout (densescale.models.dropout): the default on CPU, fixed by the seed,
    another stream than torch's; never written into the saved model's config."""
    from densescale.models.dropout import ATTENTION_NAME

    runs = {"default": {}, "on": {"fast_dropout": True}, "torch": {"fast_dropout": False}}
    w = {}
    streams = {"default": "bulk", "on": "bulk", "torch": "torch"}
    for name, option in runs.items():
        s = train(_cfg(toy_dataset, tmp_path / name, tokenizer=tok, dropout=True, **option),
                  progress=False)
        w[name] = _weights(tmp_path / name / "last")
        assert s.dropout_stream == streams[name]
    assert all(torch.equal(w["default"][k], w["on"][k]) for k in w["on"])  # same seed, same masks
    key = "encoder.layer.0.output.dense.weight"
    assert not torch.equal(w["on"][key], w["torch"][key])  # torch's stream drops other elements
    saved = (tmp_path / "on" / "last" / "0_Transformer" / "config.json").read_text()
    assert ATTENTION_NAME not in saved
    with pytest.raises(ConfigError, match="fast_dropout"):
        train(_cfg(toy_dataset, tmp_path / "x", fast_dropout=True, packed=True), progress=False)


def test_pooled_ffn_is_the_default_and_changes_no_bit(toy_dataset, tmp_path, tok,
                                                      monkeypatch):
    """The feed-forward blocks on pooled buffers (densescale.models.pooled): the same weights
    bit for bit with dropout on (both streams; with gradient checkpointing, whose backward
    runs the block again), and the pool is released after training."""
    from densescale.models.pooled import BufferPool, pool

    taken = []
    real = BufferPool.take
    monkeypatch.setattr(BufferPool, "take", lambda self, shape: taken.append(shape) or
                        real(self, shape))
    for stream in ({"fast_dropout": False}, {}, {"grad_checkpointing": True}):
        w = {}
        for name, option in (("default", {}), ("off", {"pooled_ffn": False})):
            out = tmp_path / f"{name}{sorted(stream)}"
            taken.clear()
            train(_cfg(toy_dataset, out, tokenizer=tok, dropout=True, **stream, **option),
                  progress=False)
            w[name] = _weights(out / "last")
            assert pool().nbytes == 0
            assert bool(taken) == (name == "default")  # the default did use the pool
        assert all(torch.equal(w["default"][k], w["off"][k]) for k in w["off"])
    with pytest.raises(ConfigError, match="pooled_ffn"):
        train(_cfg(toy_dataset, tmp_path / "x", pooled_ffn=True, packed=True), progress=False)
    # an encoder without a layer it computes exactly (tanh GELU, another architecture):
    # asked for explicitly, that is an error; by default the run goes on without it
    monkeypatch.setattr("densescale.train.step.install_pooled_ffn", lambda encoder: 0)
    with pytest.raises(ConfigError, match="pooled_ffn: the encoder has no BERT-family"):
        train(_cfg(toy_dataset, tmp_path / "y", pooled_ffn=True), progress=False)
    train(_cfg(toy_dataset, tmp_path / "z", tokenizer=tok, steps=2), progress=False)


def test_flop_formula_and_mfu_in_summary(plain):
    # one layer, H=2, I=4, two sequences of 1 and 3 tokens, no projection, by hand:
    # linears 2 * 4 tokens * (4*4 + 2*2*4) = 256; attention 4 * (1 + 9) * 2 = 80
    assert forward_flops(np.array([1, 3]), 1, 2, 4, proj_dim=0) == 256 + 80
    assert forward_flops(np.array([1, 3]), 1, 2, 4, proj_dim=3) == 256 + 80 + 2 * 2 * 3 * 2
    assert train_flops(np.array([5]), 2, 8, 32) == 3 * forward_flops(np.array([5]), 2, 8, 32)
    _, s = plain
    assert s.model_flops_per_step > 0 and s.peak_flops > 0
    assert 0 < s.mfu < 1 and "fp32" in s.peak_source
    assert s.dropout_stream == "off"
    assert s.model_flops_per_s == pytest.approx(s.mfu * s.peak_flops)
    assert measure_matmul_peak("cpu", torch.float32, n=256, seconds=0.05) > 1e8
