"""Where documents come from before TFDS stores them: CPython's own text, or local text files.

Both produce `(key, text)` pairs that the TFDS builder in `tfds_text.py` writes into a data_dir, so
the embedded corpus and a user's files go through the same machinery as catalog datasets.

Local text format (BERT's create_pretraining_data input format): documents are separated by blank
lines; inside a document each line is a unit of text (ideally one sentence per line).
"""
import ast
import glob
import hashlib
import os
import re
import sys
import sysconfig
from typing import Iterator

from absl import logging

from configs.errors import ConfigError


class CorpusError(ConfigError):
  """The corpus a config points at cannot be used (missing, empty, not UTF-8)."""


# ---------------------------------------------------------------- embedded corpus (CPython's text)

# Standard-library folders left out: tests (fixtures, not prose), vendored or generated code.
_SKIP_DIRS = {"test", "tests", "site-packages", "dist-packages", "__pycache__", "idlelib",
              "lib2to3", "turtledemo", "ensurepip", "_vendor"}


def embedded_source_name() -> str:
  """Names the embedded corpus: it is a pure function of the running Python's version."""
  impl = sys.implementation.name
  v = sys.version_info
  return f"{impl}{v.major}_{v.minor}_{v.micro}"


def _reflow(text: str) -> str:
  """Joins hard-wrapped prose lines of each paragraph into one line; keeps code blocks as lines.

  Docstrings and pydoc topics are wrapped at ~72 columns; unwrapping them lets the sentence
  splitter see whole sentences. Paragraphs with indented or `>>>` lines are code: left as they are.
  """
  out = []
  for para in re.split(r"\n\s*\n", text.strip()):
    lines = [l.rstrip() for l in para.split("\n") if l.strip()]
    if not lines:
      continue
    is_code = any(l.startswith((" ", "\t")) or l.lstrip().startswith(">>>") for l in lines[1:])
    is_code = is_code or lines[0].startswith((" ", "\t"))
    out.append("\n".join(lines) if is_code else " ".join(l.strip() for l in lines))
  return "\n".join(out)


def _module_docstrings(path: str) -> str:
  with open(path, "rb") as f:
    source = f.read()
  try:
    tree = ast.parse(source)
  except (SyntaxError, ValueError):
    return ""
  parts = []
  for node in ast.walk(tree):  # breadth-first: module, then classes/functions in source order
    if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
      doc = ast.get_docstring(node, clean=True)
      if doc and len(doc.split()) >= 4:
        parts.append(_reflow(doc))
  return "\n".join(parts)


def embedded_documents() -> Iterator[tuple[str, str]]:
  """Yields CPython's documentation: each pydoc topic, and each stdlib module's docstrings.

  Reads source files with `ast` (nothing is imported or executed), in sorted order, so the
  result depends only on the Python installation.
  """
  from pydoc_data import topics  # late: start-up time (read only to build the embedded corpus)
  for name in sorted(topics.topics):
    text = _reflow(topics.topics[name])
    if text:
      yield f"topic/{name}", text
  stdlib = sysconfig.get_paths()["stdlib"]
  for root, dirs, files in os.walk(stdlib):
    dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("config-"))
    for name in sorted(files):
      if name.endswith(".py"):
        path = os.path.join(root, name)
        text = _module_docstrings(path)
        if text:
          yield "module/" + os.path.relpath(path, stdlib), text


# ---------------------------------------------------------------- local text files


def resolve_text_files(text_files: str) -> list[str]:
  """Expands data.text_files (comma-separated files or globs) into a sorted list of files."""
  patterns = [p.strip() for p in text_files.split(",") if p.strip()]
  if not patterns:
    raise CorpusError("data.text_files='' names no files; corpus='local_text' needs a "
                      "comma-separated list of text files or globs")
  files = []
  for pattern in patterns:
    matches = sorted(glob.glob(os.path.expanduser(pattern)))
    matches = [m for m in matches if os.path.isfile(m)]
    if not matches:
      raise CorpusError(f"data.text_files: {pattern!r} matches no file (corpus='local_text' "
                        "needs existing plain-text files)")
    files.extend(os.path.abspath(m) for m in matches)
  return sorted(set(files))


def _raw_documents(path: str) -> Iterator[tuple[int, bytes]]:
  """Yields (byte offset, raw bytes) of each blank-line-separated document of a file."""
  offset = 0
  start, lines = 0, []
  with open(path, "rb") as f:
    for line in f:
      if offset == 0 and line.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte-order mark
        offset, line = 3, line[3:]
      if line.strip():
        if not lines:
          start = offset
        lines.append(line)
      elif lines:
        yield start, b"".join(lines)
        lines = []
      offset += len(line)
  if lines:
    yield start, b"".join(lines)


def local_documents(files: list[str], on_decode_error: str) -> Iterator[tuple[str, str]]:
  """Yields (key, text) per document; non-UTF-8 raises (file + byte offset) or is skipped."""
  skipped = 0
  for path in files:
    for start, raw in _raw_documents(path):
      try:
        text = raw.decode("utf-8")
      except UnicodeDecodeError as e:
        if on_decode_error == "skip":
          skipped += 1
          continue
        raise CorpusError(
            f"data.text_files: {path} is not valid UTF-8 at byte offset {start + e.start} "
            f"({e.reason}); fix the file or set data.on_decode_error='skip' to drop such "
            "documents") from None
      text = "\n".join(l.rstrip() for l in text.strip().splitlines())
      yield f"{path}:{start}", text
  if skipped:
    logging.warning("local_text: skipped %d document(s) that are not valid UTF-8", skipped)


def document_hash(text: str) -> int:
  return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def validation_threshold(hashes: list[int], validation_fraction: float, what: str) -> int:
  """Hash cut-off: documents whose hash is <= it form the validation split.

  Ranking by content hash makes the split deterministic, independent of file order, exact in size
  (max(1, round(fraction * n)) documents), and keeps duplicate documents on the same side.
  """
  if not hashes:
    raise CorpusError(f"{what} holds no documents (empty files, or every document skipped); "
                      "the corpus needs at least 2 non-empty documents")
  if len(hashes) < 2:
    raise CorpusError(f"{what} holds only 1 document; the train/validation split needs at "
                      "least 2 (documents are separated by blank lines)")
  n_val = min(len(hashes) - 1, max(1, round(validation_fraction * len(hashes))))
  return sorted(hashes)[n_val - 1]
