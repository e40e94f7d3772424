#!/usr/bin/env python3
"""int8 against float32 on the same weights, teacher-forced: how often the int8 model's top-1
token equals float32's (docs/benchmarks.md, "Peers"; bench/peers/run runs both engines).

    /usr/bin/python3 nllb_fidelity.py --engine vox --float32 MODEL_DIR --int8 MODEL_DIR
    .venv-reference/bin/python nllb_fidelity.py --engine ctranslate2 --ct2-model CT2_DIR \\
        --checkpoint HF_DIR

For each of the TEXTS (English into Spanish), the float32 model decodes --tokens tokens greedily
(fixed length: </s> excluded); then at every position of that sequence both precisions predict the next token
from the same prefix, and the top-1 tokens are compared. vox: decode_step of the exported model.ts
(both precisions in one process, LibTorch 1.13 with vox's operators). CTranslate2: the prefixes of
a text as one translate_batch with target_prefix (greedy; the token after each prefix is read),
for its float32 and int8 compute types. Prints one JSON object: positions, agreements, rate.
"""
import argparse
import json
import os
import sys

TEXTS = [
    "The weather is nice today, so we are going to the park with the children.",
    "Where is the nearest train station?",
    "I would like a cup of coffee with milk, please.",
    "The meeting has been moved to Thursday afternoon.",
    "She has been learning to play the piano for three years.",
    "Please turn off the lights when you leave the room.",
    "How much does a ticket to the museum cost?",
    "The doctor said that I should rest for a few days.",
    "We need to buy bread, eggs and some fresh vegetables.",
    "My brother works as an engineer in a large company.",
]
SOURCE, TARGET = "eng_Latn", "spa_Latn"


def vox(args):
    import torch
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
    import nllb_reference as ref
    torch.set_num_threads(args.threads)
    fp32, int8 = ref.TorchScriptModel(args.float32), ref.TorchScriptModel(args.int8)
    codes = [lang["code"] for lang in fp32.manifest["languages"]]
    tok = ref.Tokenizer(os.path.join(args.float32, "sentencepiece.bpe.model"), codes)

    def top1(model, src, forced=None):
        """The argmax after [2, tgt] + forced[:i] for each i; without forced, greedy (each argmax
        is fed back). </s> is excluded, as CTranslate2's min_decoding_length excludes it."""
        ids = torch.tensor([src])
        mask = torch.ones_like(ids)
        cross = model.cross_kv(model.encode(ids, mask))
        kv = model.empty_cache(1)
        token, tops = ref.DECODER_START, []
        for t in range(args.tokens + 1):
            logits, kv = model.decode_step(torch.tensor([[token]]), torch.tensor([[2 + t]]), kv,
                                           torch.ones(1, t + 1, dtype=torch.long), cross, mask)
            if t == 0:
                token = tok.lang_id(TARGET)
                continue
            row = logits[0].clone()
            row[ref.EOS] = float("-inf")
            tops.append(int(torch.argmax(row)))
            token = tops[-1] if forced is None else forced[t - 1]
        return tops

    positions = agree = 0
    for text in TEXTS:
        src = tok.encode(text, SOURCE)
        forced = top1(fp32, src)
        a, b = top1(fp32, src, forced), top1(int8, src, forced)
        assert a == forced, "float32 teacher-forced along its own greedy output must reproduce it"
        positions += len(a)
        agree += sum(x == y for x, y in zip(a, b))
    return positions, agree


def ctranslate2(args):
    import ctranslate2 as ct2
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint, src_lang=SOURCE)
    engines = {c: ct2.Translator(args.ct2_model, device="cpu", compute_type=c, inter_threads=1,
                                 intra_threads=args.threads) for c in ("float32", "int8")}

    def next_tokens(engine, source, forced):
        """The token after each prefix forced[:i], i = 0..len(forced)-1, in one batch."""
        prefixes = [[TARGET] + forced[:i] for i in range(len(forced))]
        # As in the fixed-length float32 run, </s> cannot end a hypothesis before its length.
        results = engine.translate_batch([source] * len(prefixes), target_prefix=prefixes, beam_size=1,
                                         min_decoding_length=len(forced) + 1,
                                         max_decoding_length=len(forced) + 1,
                                         max_batch_size=len(prefixes))
        return [r.hypotheses[0][len(prefix)] for r, prefix in zip(results, prefixes)]

    positions = agree = 0
    for text in TEXTS:
        source = tokenizer.convert_ids_to_tokens(tokenizer(text).input_ids)
        r = engines["float32"].translate_batch(
            [source], target_prefix=[[TARGET]], beam_size=1, min_decoding_length=args.tokens + 1,
            max_decoding_length=args.tokens + 1)
        forced = r[0].hypotheses[0][1:]
        a = next_tokens(engines["float32"], source, forced)
        b = next_tokens(engines["int8"], source, forced)
        assert a == forced, "float32 with its own prefix must reproduce its greedy output"
        positions += len(a)
        agree += sum(x == y for x, y in zip(a, b))
    return positions, agree


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", choices=["vox", "ctranslate2"], required=True)
    p.add_argument("--float32", help="vox float32 export")
    p.add_argument("--int8", help="vox int8-weights export")
    p.add_argument("--ct2-model")
    p.add_argument("--checkpoint")
    p.add_argument("--tokens", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    positions, agree = vox(args) if args.engine == "vox" else ctranslate2(args)
    print(json.dumps({"engine": args.engine, "texts": len(TEXTS), "tokens": args.tokens,
                      "positions": positions, "agree": agree, "rate": agree / positions}))


if __name__ == "__main__":
    main()
