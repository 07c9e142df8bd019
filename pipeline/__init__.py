"""Input pipeline: TFDS corpora, tokenizers, BERT/RoBERTa/GPT example builders, batch(step).

Public API (see docs/ARCHITECTURE.md "pipeline/"):
  get_tokenizer(config, objective) -> Tokenizer
  make_pipeline(config, split, objective, *, process_index=0, process_count=1) -> Pipeline
  validate(config, objective, process_count=1)  (raises configs.errors.ConfigError)
`objective` is an objectives.base.Objective (its example builder, layout and tokens): the
pipeline sits below objectives and never looks one up; objectives.make_pipeline and
objectives.get_tokenizer pass config.objective.name's.
"""
from configs.errors import ConfigError
from pipeline.pipeline import Pipeline, get_tokenizer, make_pipeline, resolved_cache_dir
from pipeline.sources import CorpusError
from pipeline.tokenization import Tokenizer
from pipeline.validation import validate

__all__ = ["ConfigError", "CorpusError", "Pipeline", "Tokenizer", "get_tokenizer", "make_pipeline",
           "resolved_cache_dir", "validate"]
