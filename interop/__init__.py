"""Weights in and out of the Hugging Face ecosystem (GPT-2, BERT, Llama and ModernBERT).

  interop/names.py      the one table of HF tensor names <-> pancake parameter paths, both ways
  interop/hf_config.py  config.json <-> model fields, the tokenizer files, the checks
  interop/hf.py         sharded import, export of parameters to an HF model directory (a library:
                        trainlib/step0.py and evals/runner.py import through it)
  interop/export.py     the export command, `python -m interop.hf export` (an entry point)

Runtime dependencies: safetensors (numpy API) and the project's own libraries; never torch.
"""
