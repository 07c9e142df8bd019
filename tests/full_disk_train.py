"""train.py on a disk that fills up while the checkpoint of step PANCAKE_FULL_AT is written
(tests/test_train_rundir.py): that save leaves `<step>.orbax-checkpoint-tmp` behind and fails
with the error tensorstore gives orbax on a full disk (its text, as seen on a 1.5 MB tmpfs).

    PANCAKE_FULL_AT=9 python tests/full_disk_train.py <train.py's flags>
"""

import os
import runpy
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from trainlib import checkpoint  # noqa: E402  (after the path)

FULL_AT = int(os.environ["PANCAKE_FULL_AT"])
_save = checkpoint.Checkpointer.save


def _save_on_a_full_disk(self, step, *args, **kwargs):
  if step != FULL_AT:
    return _save(self, step, *args, **kwargs)
  partial = self.directory / f"{step}.orbax-checkpoint-tmp"
  (partial / "state").mkdir(parents=True)
  data = partial / "state" / "d" / "33bf44a4"
  raise ValueError(
      f'RESOURCE_EXHAUSTED: Error writing "step/0" in OCDBT database at local file '
      f'"{partial}/state/": Failed writing: "{data}": Failed to write 11061 bytes to file 16: '
      "No space left on device [os_error_code='28']")


checkpoint.Checkpointer.save = _save_on_a_full_disk
sys.argv[0] = os.path.join(REPO, "train.py")
runpy.run_path(sys.argv[0], run_name="__main__")
