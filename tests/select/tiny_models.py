"""Tiny randomly initialised models for the selection tests, saved as transformers directories."""

from __future__ import annotations

from pathlib import Path


def tiny_llama(out: Path) -> Path:
    """A two-layer Llama (hidden 32) with SmolLM2's tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from gristmill.models.causal_lm import hf_dir

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(hf_dir())
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def tiny_bert(out: Path) -> Path:
    """A two-layer BERT encoder (hidden 32) with all-MiniLM-L6-v2's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from gristmill.models.locate import minilm_dir

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(minilm_dir())
    config = BertConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, max_position_embeddings=128)
    BertModel(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out
