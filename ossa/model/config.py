"""The gpt-oss hyper-parameters, read from either checkpoint layout's `config.json`."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

O200K_HARMONY_VOCAB = 201088


@dataclass(frozen=True)
class Config:
    """Field names and defaults follow `original/config.json` (defaults: gpt-oss-20b)."""

    num_hidden_layers: int = 24
    num_experts: int = 32
    experts_per_token: int = 4
    vocab_size: int = O200K_HARMONY_VOCAB
    hidden_size: int = 2880
    intermediate_size: int = 2880
    swiglu_limit: float = 7.0
    head_dim: int = 64
    num_attention_heads: int = 64
    num_key_value_heads: int = 8
    sliding_window: int = 128
    initial_context_length: int = 4096
    rope_theta: float = 150000.0
    rope_scaling_factor: float = 32.0
    rope_ntk_alpha: float = 1.0
    rope_ntk_beta: float = 32.0

    def __post_init__(self) -> None:
        if self.hidden_size % 32 or self.intermediate_size % 32:
            raise ValueError(
                "hidden_size and intermediate_size must be multiples of 32 (MXFP4 blocks)"
            )
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if self.experts_per_token > self.num_experts:
            raise ValueError("experts_per_token exceeds num_experts")

    @property
    def context_length(self) -> int:
        """YaRN extends the original context by the scaling factor (131072 for gpt-oss)."""
        return int(self.initial_context_length * self.rope_scaling_factor)

    def is_sliding(self, layer: int) -> bool:
        """Even layers use the sliding window, odd layers attend to everything."""
        return layer % 2 == 0

    @classmethod
    def from_original(cls, data: dict[str, Any]) -> Config:
        """From `original/config.json`; unknown keys are an error, as in the reference."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown keys in original config.json: {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_transformers(cls, data: dict[str, Any]) -> Config:
        """From the transformers `config.json` (`GptOssConfig` names)."""
        rope = data.get("rope_scaling") or data.get("rope_parameters") or {}
        try:
            return cls(
                num_hidden_layers=data["num_hidden_layers"],
                num_experts=data["num_local_experts"],
                experts_per_token=data.get("num_experts_per_tok", data.get("experts_per_token", 4)),
                vocab_size=data["vocab_size"],
                hidden_size=data["hidden_size"],
                intermediate_size=data["intermediate_size"],
                swiglu_limit=data.get("swiglu_limit", 7.0),
                head_dim=data["head_dim"],
                num_attention_heads=data["num_attention_heads"],
                num_key_value_heads=data["num_key_value_heads"],
                sliding_window=data["sliding_window"],
                initial_context_length=rope.get(
                    "original_max_position_embeddings", data.get("initial_context_length", 4096)
                ),
                rope_theta=rope.get("rope_theta", data.get("rope_theta", 150000.0)),
                rope_scaling_factor=rope.get("factor", 32.0),
                rope_ntk_alpha=rope.get("beta_slow", 1.0),
                rope_ntk_beta=rope.get("beta_fast", 32.0),
            )
        except KeyError as e:
            raise ValueError(f"transformers config.json lacks {e.args[0]!r}") from None

    def to_original(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_transformers(self) -> dict[str, Any]:
        return {
            "architectures": ["GptOssForCausalLM"],
            "model_type": "gpt_oss",
            "attention_bias": True,
            "attention_dropout": 0.0,
            "eos_token_id": 200002,
            "pad_token_id": 199999,
            "experts_per_token": self.experts_per_token,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "hidden_size": self.hidden_size,
            "initial_context_length": self.initial_context_length,
            "initializer_range": 0.02,
            "intermediate_size": self.intermediate_size,
            "layer_types": [
                "sliding_attention" if self.is_sliding(i) else "full_attention"
                for i in range(self.num_hidden_layers)
            ],
            "max_position_embeddings": self.context_length,
            "num_attention_heads": self.num_attention_heads,
            "num_experts_per_tok": self.experts_per_token,
            "num_hidden_layers": self.num_hidden_layers,
            "num_key_value_heads": self.num_key_value_heads,
            "num_local_experts": self.num_experts,
            "output_router_logits": False,
            "rms_norm_eps": 1e-05,
            "rope_scaling": {
                "beta_fast": self.rope_ntk_beta,
                "beta_slow": self.rope_ntk_alpha,
                "factor": self.rope_scaling_factor,
                "original_max_position_embeddings": self.initial_context_length,
                "rope_type": "yarn",
                "truncate": False,
            },
            "rope_theta": self.rope_theta,
            "router_aux_loss_coef": 0.9,
            "sliding_window": self.sliding_window,
            "swiglu_limit": self.swiglu_limit,
            "tie_word_embeddings": False,
            "use_cache": True,
            "vocab_size": self.vocab_size,
            "quantization_config": {
                "quant_method": "mxfp4",
                "modules_to_not_convert": [
                    "model.layers.*.self_attn",
                    "model.layers.*.mlp.router",
                    "model.embed_tokens",
                    "lm_head",
                ],
            },
        }

    def parameter_counts(self) -> dict[str, int]:
        """Parameters by kind: `mxfp4` (expert weights) and `bf16` (everything else)."""
        h, i, e = self.hidden_size, self.intermediate_size, self.num_experts
        q = self.num_attention_heads * self.head_dim
        kv = self.num_key_value_heads * self.head_dim
        attn = h + (q + 2 * kv) * (h + 1) + self.num_attention_heads + (q + 1) * h
        mlp_dense = h + e * (h + 1) + e * (2 * i + h)
        experts = e * 3 * i * h
        dense = self.num_hidden_layers * (attn + mlp_dense) + 2 * self.vocab_size * h + h
        return {"mxfp4": self.num_hidden_layers * experts, "bf16": dense}

    def stored_bytes(self) -> dict[str, int]:
        """Bytes of the checkpoint's tensors by dtype (as in `Checkpoint.nbytes`), from the
        config alone: MXFP4 experts are 17 bytes per 32 weights, the rest bf16."""
        counts = self.parameter_counts()
        return {"bfloat16": 2 * counts["bf16"], "uint8": counts["mxfp4"] * 17 // 32}

    def expert_bytes(self) -> int:
        """Packed bytes of one expert's mlp1 + mlp2 (16 data bytes + 1 scale byte per 32)."""
        return 3 * self.intermediate_size * self.hidden_size * 17 // 32


PRESETS: dict[str, Config] = {
    # vocab stays o200k_harmony so the tokenizer and agent work end to end through it
    "tiny": Config(
        num_hidden_layers=2,
        num_experts=8,
        hidden_size=64,
        intermediate_size=64,
        head_dim=16,
        num_attention_heads=4,
        num_key_value_heads=2,
    ),
    "small": Config(
        num_hidden_layers=4,
        num_experts=16,
        hidden_size=512,
        intermediate_size=512,
        num_attention_heads=8,
        num_key_value_heads=2,
    ),
    "medium": Config(
        num_hidden_layers=8,
        num_experts=32,
        hidden_size=1024,
        intermediate_size=1024,
        num_attention_heads=16,
        num_key_value_heads=4,
    ),
    "gpt-oss-20b": Config(),
    "gpt-oss-120b": Config(num_hidden_layers=36, num_experts=128),
}


def preset(name: str) -> Config:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


def yarn_inv_freq(cfg: Config) -> tuple[list[float], float]:
    """YaRN NTK-by-parts inverse frequencies (half-split rotary) and the concentration factor."""
    d_half = cfg.head_dim // 2
    freq = [cfg.rope_theta ** (2 * i / cfg.head_dim) for i in range(d_half)]
    if cfg.rope_scaling_factor <= 1.0:
        return [1 / f for f in freq], 1.0
    concentration = 0.1 * math.log(cfg.rope_scaling_factor) + 1.0
    ln_theta = math.log(cfg.rope_theta)
    low = (
        d_half * math.log(cfg.initial_context_length / (cfg.rope_ntk_beta * 2 * math.pi)) / ln_theta
    )
    high = (
        d_half
        * math.log(cfg.initial_context_length / (cfg.rope_ntk_alpha * 2 * math.pi))
        / ln_theta
    )
    if not 0 < low < high < d_half - 1:
        raise ValueError(f"YaRN correction range ({low:.3f}, {high:.3f}) invalid for head_dim")
    inv = []
    for i, f in enumerate(freq):
        mask = 1 - min(max((i - low) / (high - low), 0.0), 1.0)
        inv.append((1 / (cfg.rope_scaling_factor * f)) * (1 - mask) + (1 / f) * mask)
    return inv, concentration
