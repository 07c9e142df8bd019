"""The interactive attention page in a real headless Chromium, driven by selenium.

Needs Debian's chromium + chromium-driver and the pins in requirements-browser.txt; without them
the tests skip and say what to install. The page is opened from disk (file://), as a researcher
would open it, so it must work with no network at all.
"""
import os
import shutil

import matplotlib.image as mpimg
import numpy as np
import pytest

from evals import attention_view
from tests.attention_synthetic import PAIR_TOKENS, synthetic_attention

webdriver = pytest.importorskip(
    "selenium.webdriver",
    reason="selenium is not installed: .venv/bin/pip install -r requirements-browser.txt")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
  pytest.skip("Chromium or its driver is missing: apt-get install -y chromium chromium-driver",
              allow_module_level=True)

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000"]
MIN_WEIGHT = 0.01  # the page's line threshold


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
  options = webdriver.ChromeOptions()
  options.binary_location = CHROMIUM
  for flag in FLAGS:
    options.add_argument(flag)
  options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
  options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
  os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager look for drivers online
  driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
  yield driver
  driver.quit()


def _open(browser, path):
  browser.get_log("browser")  # drop entries from earlier pages
  browser.get("file://" + os.path.abspath(path))
  WebDriverWait(browser, 20).until(
      lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")


def _errors(browser):
  return [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def _svg_state(browser):
  svg = browser.find_element(By.ID, "head-view")
  return {name: svg.get_attribute(f"data-{name}") for name in ("layer", "head", "line-count",
                                                                "digest")}


def _line_attributes(browser, name):
  """The set of one attribute over all drawn lines (one round trip, not one per line)."""
  return set(browser.execute_script(
      "var name = arguments[0];"
      "return Array.from(document.querySelectorAll('#lines line'))"
      ".map(function (l) { return l.getAttribute(name); });", name))


def _cell_values(browser, column):
  """data-value of every cell of one neuron-view column, as floats."""
  return [float(v) for v in browser.execute_script(
      "return Array.from(document.querySelectorAll('#neuron-table td.' + arguments[0]))"
      ".map(function (td) { return td.getAttribute('data-value'); });", column)]


def _expected_lines(data, layer, heads):
  weights = np.round(data.attention[layer, heads].astype(np.float64), 5)  # as embedded
  return int(np.sum(weights >= MIN_WEIGHT))


def test_console_error_capture_works(browser, tmp_path):
  # Guard for the checks below: a page whose script throws must show up as an error.
  page = tmp_path / "broken.html"
  page.write_text("<!doctype html><link rel=icon href='data:,'><body data-ready='true'>"
                  "<script>undefinedFunction();</script></body>")
  _open(browser, page)
  assert any("undefinedFunction" in e["message"] for e in _errors(browser))


def test_page_switches_layer_head_and_shows_neuron_view(browser, tmp_path):
  data = synthetic_attention(layers=3, heads=4)
  path = attention_view.write_html(data, str(tmp_path / "attention.html"), title="Synthetic pair")
  _open(browser, path)
  assert _errors(browser) == []
  assert browser.title == "Synthetic pair"
  before_png = str(tmp_path / "before.png")
  browser.save_screenshot(before_png)

  # All heads of layer 0: one line per weight above the threshold, in every head's colour.
  state = _svg_state(browser)
  assert (state["layer"], state["head"]) == ("0", "all")
  assert int(state["line-count"]) == _expected_lines(data, 0, slice(None))
  assert _line_attributes(browser, "data-head") == {"0", "1", "2", "3"}
  svg_before = browser.find_element(By.ID, "head-view").get_attribute("innerHTML")

  Select(browser.find_element(By.ID, "layer-select")).select_by_value("2")
  state2 = _svg_state(browser)
  assert state2["layer"] == "2" and state2["digest"] != state["digest"]
  assert browser.find_element(By.ID, "head-view").get_attribute("innerHTML") != svg_before
  assert int(state2["line-count"]) == _expected_lines(data, 2, slice(None))

  Select(browser.find_element(By.ID, "head-select")).select_by_value("1")
  state3 = _svg_state(browser)
  assert state3["head"] == "1" and state3["digest"] != state2["digest"]
  assert int(state3["line-count"]) == _expected_lines(data, 2, 1)
  assert _line_attributes(browser, "data-head") == {"1"}

  # Hovering a query token keeps only its lines.
  left_tokens = browser.find_elements(By.CSS_SELECTOR, "#head-view text.token.left")
  assert [t.text for t in left_tokens] == PAIR_TOKENS
  ActionChains(browser).move_to_element(left_tokens[3]).perform()
  assert _line_attributes(browser, "data-from") == {"3"}
  ActionChains(browser).move_to_element(browser.find_element(By.ID, "title")).perform()
  assert int(_svg_state(browser)["line-count"]) == _expected_lines(data, 2, 1)

  # Clicking query token 9 shows its neuron view: q.k/sqrt(d) and softmax for layer 2, head 1.
  left_tokens[9].click()
  table = browser.find_element(By.ID, "neuron-table")
  assert (table.get_attribute("data-layer"), table.get_attribute("data-head"),
          table.get_attribute("data-query")) == ("2", "1", "9")
  scores, probs = _cell_values(browser, "score"), _cell_values(browser, "prob")
  expected_scores = data.queries[2, 1, 9] @ data.keys[2, 1].T * data.scale
  np.testing.assert_allclose(scores, expected_scores, atol=2e-3)
  np.testing.assert_allclose(probs, data.attention[2, 1, 9], atol=1e-3)
  assert float(table.get_attribute("data-max-gap")) < 1e-3
  # One q row plus, per key, a k vector and a q x k vector of head_dim cells.
  cells = browser.execute_script(
      "return document.querySelectorAll('#neuron-table span.cell').length")
  assert cells == 16 * (1 + 2 * len(PAIR_TOKENS))
  segment_bars = browser.find_elements(By.CSS_SELECTOR, "#head-view rect.segment-bar")
  assert sorted({b.get_attribute("data-segment") for b in segment_bars}) == ["A", "B"]

  assert _errors(browser) == []
  ActionChains(browser).move_to_element(browser.find_element(By.ID, "title")).perform()
  after_png = str(tmp_path / "after.png")
  browser.save_screenshot(after_png)
  before, after = mpimg.imread(before_png), mpimg.imread(after_png)
  assert before.shape == after.shape and before.shape[1] >= 1000
  rgb = np.round(after[..., :3] * 255).astype(np.int64)
  assert len(np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])) > 50  # not blank
  assert np.abs(before - after).max() > 0.1                          # the drawing changed
  keep = os.environ.get("PANCAKE_SCREENSHOT_DIR")  # to look at the page outside the test
  if keep:
    os.makedirs(keep, exist_ok=True)
    shutil.copy(after_png, os.path.join(keep, "attention_page.png"))


def test_causal_page_masks_future_keys_and_page_without_vectors(browser, tmp_path):
  data = synthetic_attention(tokens=list("abcdef"), segments=None, layers=1, heads=2, causal=True)
  _open(browser, attention_view.write_html(data, str(tmp_path / "causal.html")))
  browser.find_elements(By.CSS_SELECTOR, "#head-view text.token.left")[2].click()
  rows = browser.find_elements(By.CSS_SELECTOR, "#neuron-table tr.key-row")
  masked = [r.get_attribute("data-key") for r in rows if "masked" in r.get_attribute("class")]
  assert masked == ["3", "4", "5"]
  probs = _cell_values(browser, "prob")
  np.testing.assert_allclose(probs, data.attention[0, 0, 2], atol=1e-3)
  assert browser.find_elements(By.CSS_SELECTOR, "#head-view rect.segment-bar") == []

  no_vectors = attention_view.AttentionData(data.tokens, data.attention)
  _open(browser, attention_view.write_html(no_vectors, str(tmp_path / "plain.html")))
  assert "not captured" in browser.find_element(By.ID, "neuron-note").text
  assert int(_svg_state(browser)["line-count"]) == _expected_lines(data, 0, slice(None))
  assert _errors(browser) == []
