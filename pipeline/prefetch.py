"""Batches built ahead of the training step: in one thread, or in `data.num_workers` processes.

    batches = BatchPrefetcher(pipe, num_workers=config.data.num_workers)
    host_batch = batches.get(step, last=num_steps - 1)   # == pipe.batch(step), bit for bit

Because batch(step) is a pure function of (seed, step), the steps ahead can be built in any
order by any process and the stream stays exactly the serial one (resume included): workers
differ only in how many batches are being built at once. With num_workers=0 one thread builds
batch s+1 while the devices run step s (enough for causal LM, whose rows are slices of the token
stream). MLM+NSP example construction is heavier Python (sentence sampling, masking; 4-5k
sequences/s per core, bench/input_throughput.py), so a pod host feeding a small encoder needs
several processes: each worker opens the same cached corpus, tokenizer and token stream (built
once by the parent) and builds whole batches; `2 * num_workers` steps are kept in flight.

Workers are started with "spawn" (forking a process that runs JAX is unsafe) and import only
pipeline/ (numpy, tokenizers), never JAX.
"""
import concurrent.futures
import multiprocessing

from pipeline.pipeline import make_pipeline

_WORKER_PIPE = None  # set in each worker process by _init_worker


def _init_worker(config, split, objective, process_index, process_count):
  global _WORKER_PIPE  # caches exist: opening them is cheap
  _WORKER_PIPE = make_pipeline(config, split, objective, process_index=process_index,
                               process_count=process_count)


def _worker_batch(step):
  return _WORKER_PIPE.batch(step)


class BatchPrefetcher:
  """`get(step)` returns pipe.batch(step), with the following steps already being built."""

  def __init__(self, pipe, num_workers: int = 0, ahead: int | None = None):
    if num_workers:
      self._pool = concurrent.futures.ProcessPoolExecutor(
          num_workers, mp_context=multiprocessing.get_context("spawn"),
          initializer=_init_worker,
          initargs=(pipe.config, pipe.split, pipe.objective, pipe.process_index,
                    pipe.process_count))
      self._submit = lambda step: self._pool.submit(_worker_batch, step)
    else:
      self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="batch")
      self._submit = lambda step: self._pool.submit(pipe.batch, step)
    self.ahead = ahead if ahead is not None else max(1, 2 * num_workers)
    self._futures = {}  # step -> Future

  def schedule(self, step: int, last: int | None = None) -> None:
    """Starts building steps step..min(step + ahead, last) that are not being built yet."""
    end = step + self.ahead if last is None else min(step + self.ahead, last)
    for s in list(self._futures):
      if s < step or s > end:  # a jump (resume, another caller): drop what will not be used
        self._futures.pop(s).cancel()
    for s in range(step, end + 1):
      if s not in self._futures:
        self._futures[s] = self._submit(s)

  def get(self, step: int, last: int | None = None) -> dict:
    """Batch `step` (waits for it), keeping the following steps up to `last` in flight."""
    self.schedule(step, last)
    return self._futures.pop(step).result()

  def close(self):
    for future in self._futures.values():
      future.cancel()
    self._futures.clear()
    self._pool.shutdown(wait=False, cancel_futures=True)

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
