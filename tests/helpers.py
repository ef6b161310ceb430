"""Builders the tests share: tiny random models with an in-process tokenizer, records, worker launchers.

Imported as ``from helpers import ...`` (pytest puts ``tests/`` on the path); fixtures stay in ``conftest.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The tests folder (helpers, fixtures and servers live here; test modules in folders that mirror the package).
TESTS = Path(__file__).resolve().parent
#: The checkout's root.
REPO = TESTS.parent
# The real data folder: $BIOPROFILE_SHARED_DATA, else ../shared/data beside the checkout.
SHARED_DATA = Path(os.environ.get("BIOPROFILE_SHARED_DATA") or REPO.parent / "shared" / "data").expanduser()

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def build_tiny_tokenizer():
    """A byte-level BPE tokenizer with no merges (every byte is a token) and ChatML special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    specials = ["<pad>", "<|im_start|>", "<|im_end|>"]
    vocab = {tok: i for i, tok in enumerate(specials + sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(specials)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_llama(tokenizer, seed: int = 0, hidden_size: int = 32, num_layers: int = 2):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,  # byte-level tokens: a chat prompt with a system message is ~600
        # a wider init than the default 0.02, whose random model greedily repeats one token forever
        initializer_range=0.2,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval()


def build_tiny_bert(tokenizer, seed: int = 0, hidden_size: int = 32):
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
    )
    return BertModel(config).eval()


# Four chat records with very different response lengths, for multi-process training tests: one step covers them
# all, in any order, on any rank, so sample-count scaling errors show.
VARIED_LENGTH_RECORDS = [
    {"instruction": "gene A?", "response": "kinase."},
    {
        "instruction": "gene B?",
        "response": "a transcription factor that binds DNA at many promoters and enhancers.",
    },
    {"instruction": "tell me about gene C", "response": "ion pump"},
    {"instruction": "D?", "response": "a secreted ligand of the TGF-beta family, involved in bone growth."},
]


def free_port() -> int:
    """A free TCP port on localhost for a torch.distributed rendezvous."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_env() -> dict[str, str]:
    """Environment for spawned training workers: offline, one thread, and no process-group or accelerate
    variables left behind by in-process trainers of other tests."""
    import os

    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ACCELERATE_")
        and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    return {**inherited, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def run_workers(script: Path, args: list[str], nproc: int) -> None:
    """Run a worker script as one plain process (``nproc == 1``) or ``nproc`` torchrun ranks; fail with its stderr."""
    import subprocess
    import sys

    command = [sys.executable]
    if nproc > 1:
        command += [
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(nproc),
            "--master_port",
            str(free_port()),
        ]
    result = subprocess.run(
        [*command, str(script), *args],
        check=False,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
