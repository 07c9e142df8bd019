"""Weights in and out of the Hugging Face ecosystem (GPT-2 and BERT checkpoints).

  interop/names.py   the one table of HF tensor names <-> pancake parameter paths, both ways
  interop/hf.py      config.json <-> model fields, sharded import, export (`python -m interop.hf`)

Runtime dependencies: safetensors (numpy API) and the project's own libraries; never torch.
"""
