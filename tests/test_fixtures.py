def test_tiny_llama_generates(tiny_llama_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Tell me about gene TP53"}], add_generation_prompt=True, tokenize=False
    )
    enc = tok(prompt, return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == enc["input_ids"].shape[1] + 5
    assert tok.decode(enc["input_ids"][0]) == prompt
