"""The README and docs/ hold: every link goes somewhere, and every measured figure they quote
from results/ is the figure in its JSON.

A doc quotes a figure by writing it followed at once by a marker naming where it comes from
(the marker is an HTML comment, so it does not show when rendered):

    0.809<!--= results/isoflop_cpu/fits.json [approach2][a] .3f -->
    11.1<!--= results/ablation_cpu/ablation_table.json [bert_mlm_nsp][metrics][heldout/mlm_accuracy]|mean|pct .1f -->

The keys index the JSON (a list by position); `|mean`, `|std` (sample), `|median`, `|pct`
(x 100), `|abs`, `|giga` (/ 1e9) and `|gib` (/ 2^30) apply in order; the format is Python's. The figure must read exactly as
the value formatted.
"""

import json
import os
import re
import statistics

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md"] + sorted(os.path.join("docs", f) for f in os.listdir(os.path.join(REPO, "docs"))
                              if f.endswith(".md"))
MARKER = re.compile(r"(?P<figure>-?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?)"
                    r"<!--= (?P<path>\S+) (?P<keys>(?:\[[^\]]*\])+)(?P<ops>(?:\|\w+)*) "
                    r"(?P<fmt>\S+) -->")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_OPS = {"mean": statistics.mean, "std": statistics.stdev, "median": statistics.median,
        "pct": lambda v: 100 * v, "abs": abs, "giga": lambda v: v / 1e9,
        "gib": lambda v: v / 2**30}


def _read(name):
  with open(os.path.join(REPO, name)) as f:
    return f.read()


def quoted_figures(text):
  """[(figure as written, json path, keys, ops, format)] of every marker in `text`."""
  return [(m["figure"], m["path"], re.findall(r"\[([^\]]*)\]", m["keys"]),
           [op for op in m["ops"].split("|") if op], m["fmt"]) for m in MARKER.finditer(text)]


def value_of(path, keys, ops):
  node = json.loads(_read(path))
  for key in keys:
    node = node[int(key)] if isinstance(node, list) else node[key]
  for op in ops:
    node = _OPS[op](node)
  return node


def _headings(text):
  """GitHub's anchors of the markdown headings in `text`."""
  anchors = set()
  for title in re.findall(r"^#+ (.+)$", text, re.M):
    anchor = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
    anchors.add(anchor)
  return anchors


@pytest.mark.parametrize("doc", DOCS)
def test_every_link_resolves(doc):
  text = _read(doc)
  broken = []
  for target in LINK.findall(text):
    if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
      continue  # no network here: outside links are not checked
    path, _, anchor = target.partition("#")
    where = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
    if not os.path.exists(os.path.join(REPO, where)):
      broken.append(target)
    elif anchor and where.endswith(".md") and anchor not in _headings(_read(where)):
      broken.append(target)
  assert not broken, f"{doc}: links that go nowhere: {broken}"


@pytest.mark.parametrize("doc", DOCS)
def test_every_quoted_figure_is_the_one_in_its_json(doc):
  wrong = []
  for figure, path, keys, ops, fmt in quoted_figures(_read(doc)):
    want = format(value_of(path, keys, ops), fmt)
    if figure != want:
      wrong.append(f"{figure} (marker {path} {keys} {ops}) but the JSON gives {want}")
  assert not wrong, f"{doc}:\n" + "\n".join(wrong)


def test_the_docs_quote_figures_through_markers():
  """The measured figures moved out of the README are quoted with markers (so checked)."""
  counts = {doc: len(quoted_figures(_read(doc))) for doc in DOCS}
  assert counts[os.path.join("docs", "benchmarks.md")] >= 10, counts
  assert counts[os.path.join("docs", "experiments.md")] >= 20, counts


def test_a_wrong_figure_and_a_broken_link_are_caught():
  text = "a = 0.123<!--= results/isoflop_cpu/fits.json [approach2][a] .3f -->"
  (figure, path, keys, ops, fmt), = quoted_figures(text)
  assert format(value_of(path, keys, ops), fmt) != figure
  assert "nowhere.md" in LINK.findall("see [this](nowhere.md)")


def test_the_readme_is_for_users():
  readme = _read("README.md")
  assert len(readme.splitlines()) < 250
  for word in ("load average", "session", "issue 12", "commit "):
    assert word not in readme.lower(), word
  assert not re.search(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}\b", readme), (
      "a commit hash in the README")
  assert not re.search(r"\b\d+ (passed|tests)\b", readme), "a test count in the README"
