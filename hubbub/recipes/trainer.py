"""The training loop shared by the separator and ASR recipes.

What it promises:

* checkpoints are written atomically (temp file + rename) with the model,
  optimiser, scheduler, data position, RNG states and step; ``resume=True``
  continues from the exact step, so a run killed with SIGKILL and resumed ends
  with the same weights as one that was never interrupted;
* a NaN/Inf loss or gradient skips the step and is logged; ``max_bad_steps`` in
  a row stop the run with a clear message;
* it runs under ``torchrun`` with DistributedDataParallel (gloo on CPU, NCCL on
  GPU): each rank takes every ``world``-th item of an epoch (``batch_size`` is per
  process: a step sees ``batch_size * world`` items); under DDP only rank 0 logs
  below WARNING, and every line carries its ``[rank N]``;
* SIGINT and SIGTERM (Ctrl-C, a cluster's preemption) stop training cleanly on
  every rank: each rank's handler sets a flag, the ranks all-reduce it after every
  step so that all stop after the same step, rank 0 writes the checkpoint and the
  processes exit 0; ``resume=True`` continues from there. The time budget is
  agreed on the same way;
* a metrics CSV, tqdm progress, the best model exported with
  ``save_pretrained`` whenever validation improves, and a wall-clock budget
  (``max_minutes``) or a CPU budget (``max_cpu_minutes``) after which it
  checkpoints and stops cleanly. The CSV's ``cpu_s`` is the process CPU time
  (all threads) of the experiment: on a shared machine wall time is unfair.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import random
import signal
import time
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

import torch
import torch.distributed as dist
from torch import nn

from hubbub.recipes.config import LoopConfig

__all__ = ["LoopConfig", "Task", "Trainer", "atomic_torch_save", "rank_logging", "write_card"]

log = logging.getLogger(__name__)


class Task(Protocol):
    """What a recipe supplies to the loop."""

    def batch(self, epoch: int, indices: list[int], step: int):
        """The batch for these item indices of this epoch (deterministic)."""

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        """Scalar training loss."""

    def validate(self, model: nn.Module) -> dict[str, float]:
        """Validation metrics; must include ``"score"``."""

    def export(self, model: nn.Module, directory: Path, info: dict) -> None:
        """Save ``model`` as a pretrained folder (config + safetensors + card)."""


def atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _rng_state() -> dict:
    py = random.getstate()
    return {"torch": torch.get_rng_state(), "python": [py[0], list(py[1]), py[2]]}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


class Trainer:
    """Runs ``task`` on ``model`` with the settings of ``cfg``."""

    def __init__(self, cfg: LoopConfig, model: nn.Module, task: Task, full_config: dict | None = None) -> None:
        self.cfg = cfg
        self.task = task
        self.exp = Path(cfg.exp_dir)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.is_main = self.rank == 0
        self._own_group = False
        if self.world > 1:
            rank_logging(self.rank)
            if not dist.is_initialized():
                backend = "nccl" if cfg.device.startswith("cuda") else "gloo"
                dist.init_process_group(backend)
                self._own_group = True
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.device = torch.device(cfg.device)
        self.model = model.to(self.device)
        self.ddp = None
        if self.world > 1:
            self.ddp = nn.parallel.DistributedDataParallel(self.model)
        learning = [p for p in self.model.parameters() if p.requires_grad]  # frozen parts stay as they are
        self.opt = torch.optim.AdamW(learning, lr=cfg.lr, weight_decay=cfg.weight_decay)

        def lr_lambda(step: int) -> float:
            return min(1.0, (step + 1) / max(cfg.warmup_steps, 1)) * cfg.lr_decay ** (step / cfg.decay_steps)

        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda)
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best: float | None = None
        self.wall_before = 0.0  # seconds trained in earlier runs of this experiment
        self.cpu_before = 0.0  # CPU seconds of earlier runs (0 for runs from before CPU accounting)
        self._t0 = time.monotonic()
        self._cpu0 = time.process_time()
        self.full_config = full_config or {}
        self._stop = False
        self.exp.mkdir(parents=True, exist_ok=True)
        if self.is_main:  # a run killed mid-write leaves its temporary file behind; the target is intact
            for stale in self.exp.glob(".checkpoint.pt.*.tmp"):
                stale.unlink(missing_ok=True)

    # ---- checkpoints -------------------------------------------------------------
    @property
    def ckpt_path(self) -> Path:
        return self.exp / "checkpoint.pt"

    def save_checkpoint(self) -> None:
        if not self.is_main:
            return
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "best": self.best,
            "wall_s": self.wall(),
            "cpu_s": self.cpu(),
            "rng": _rng_state(),
            "config": self.full_config,
        }
        atomic_torch_save(state, self.ckpt_path)

    def load_checkpoint(self, path: Path | None = None) -> bool:
        path = path or self.ckpt_path
        if not path.is_file():
            return False
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        if self.sched.base_lrs != [self.cfg.lr] * len(self.sched.base_lrs):
            # the checkpoint holds the old rate: an --lr given on resuming wins (warmup and decay follow the
            # config already, the schedule being a function of the step)
            log.info("learning rate %g from the config (the checkpoint had %g)", self.cfg.lr, self.sched.base_lrs[0])
            self.sched.base_lrs = [self.cfg.lr] * len(self.sched.base_lrs)
            factor = self.sched.lr_lambdas[0](self.sched.last_epoch)
            for group in self.opt.param_groups:
                group["initial_lr"], group["lr"] = self.cfg.lr, self.cfg.lr * factor
            self.sched._last_lr = [group["lr"] for group in self.opt.param_groups]
        self.step, self.epoch = state["step"], state["epoch"]
        self.batch_in_epoch, self.best = state["batch_in_epoch"], state["best"]
        self.wall_before = state.get("wall_s", 0.0)
        self.cpu_before = state.get("cpu_s", 0.0)
        _set_rng_state(state["rng"])
        log.info("resumed from %s at step %d (epoch %d, batch %d)", path, self.step, self.epoch, self.batch_in_epoch)
        return True

    def wall(self) -> float:
        """Seconds of training in this experiment, earlier (resumed) runs included."""
        return self.wall_before + time.monotonic() - self._t0

    def cpu(self) -> float:
        """Process CPU seconds (all threads) of this experiment, earlier runs included."""
        return self.cpu_before + time.process_time() - self._cpu0

    # ---- metrics -------------------------------------------------------------------
    def _write_metrics(self, row: dict) -> None:
        if not self.is_main:
            return
        path = self.exp / "metrics.csv"
        rows, fields = [], list(row)
        if path.exists():
            with path.open(newline="") as f:
                reader = csv.DictReader(f)
                old = list(reader.fieldnames or [])
                if old == fields or set(fields) <= set(old):
                    fields, rows = old, None  # the header fits: append
                else:  # a metric was added (a newer recipe resumed an older run): widen the header
                    rows, fields = list(reader), old + [k for k in fields if k not in old]
        if rows is None:
            with path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=fields, restval="").writerow(row)
            return
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, restval="")
            writer.writeheader()
            writer.writerows([*rows, row])
        tmp.replace(path)

    def _validate(self, train_loss: float) -> None:
        if self.is_main:
            self.model.eval()
            with torch.inference_mode():
                metrics = self.task.validate(self.model)
            self.model.train()
            elapsed = self.wall()  # validation included
            score = metrics["score"]
            better = self.best is None or (score > self.best if self.cfg.higher_is_better else score < self.best)
            if better:
                self.best = score
                info = {"step": self.step, "epoch": self.epoch, "wall_minutes": round(elapsed / 60, 2),
                        "cpu_minutes": round(self.cpu() / 60, 2), **metrics}
                self.task.export(self.model, self.exp / "best", info)
            self._write_metrics(
                {
                    "step": self.step,
                    "epoch": self.epoch,
                    "lr": f"{self.sched.get_last_lr()[0]:.3g}",
                    "train_loss": f"{train_loss:.4f}",
                    **{k: f"{v:.4f}" for k, v in metrics.items()},
                    "best": f"{self.best:.4f}",
                    "wall_s": round(elapsed, 1),
                    "cpu_s": round(self.cpu(), 1),
                }
            )
            log.info(
                "step %d validation %s%s",
                self.step,
                " ".join(f"{k}={v:.3f}" for k, v in metrics.items()),
                " (best, exported)" if better else "",
            )
        if self.world > 1:
            dist.barrier()

    def _check_ranks_agree(self) -> None:
        """All ranks must hold the same weights after DDP training."""
        flat = torch.cat([p.detach().double().flatten().cpu() for p in self.model.parameters()])
        mine = torch.stack([flat.sum(), flat.abs().sum(), (flat * torch.arange(len(flat))).sum()])
        gathered = [torch.zeros_like(mine) for _ in range(self.world)]
        dist.all_gather(gathered, mine)
        spread = max(float((g - gathered[0]).abs().max()) for g in gathered)
        if spread > 1e-6 * float(gathered[0].abs().max()):
            raise RuntimeError(f"ranks disagree after training (checksum spread {spread:.3g})")
        log.info("all %d ranks hold identical weights (checksum %.9g)", self.world, float(mine[0]))

    # ---- the loop ------------------------------------------------------------------
    def _indices(self, batch: int) -> list[int]:
        """Item indices of batch ``batch`` of the epoch, for this rank."""
        per_step = self.cfg.batch_size * self.world
        start = batch * per_step + self.rank * self.cfg.batch_size
        return list(range(start, start + self.cfg.batch_size))

    def _handle_signal(self, signum, frame) -> None:
        if not self._stop:  # torchrun forwards the signal it gets: a rank may see it twice
            log.warning("%s: checkpointing and stopping after this step", signal.Signals(signum).name)
        self._stop = True

    def _should_stop(self, elapsed: float) -> str | None:
        """Why training stops after this step (``signal``, ``time budget``), or None; under DDP the ranks
        all-reduce their flags, so that all of them stop after the same step."""
        flags = [float(self._stop), float(self.cfg.max_minutes is not None and elapsed > self.cfg.max_minutes * 60)]
        if self.world > 1:
            agreed = torch.tensor(flags, device=self.device if dist.get_backend() == "nccl" else "cpu")
            dist.all_reduce(agreed, op=dist.ReduceOp.MAX)
            flags = agreed.tolist()
            self._stop = self._stop or bool(flags[0])
        return "signal" if flags[0] else "time budget" if flags[1] else None

    def _catch_signals(self) -> dict:
        """SIGINT and SIGTERM stop training after the current step; returns the handlers they replace."""
        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old[sig] = signal.signal(sig, self._handle_signal)
            except ValueError:  # not in the main thread
                pass
        return old

    def _step(self, model) -> float | None:
        """One optimiser step on the next batch: its loss, or None when the step was skipped for a
        non-finite loss or gradient (``max_bad_steps`` of those in a row stop training)."""
        batch = self.task.batch(self.epoch, self._indices(self.batch_in_epoch), self.step)
        loss = self.task.loss(model, batch)
        self.batch_in_epoch += 1
        self.opt.zero_grad(set_to_none=True)
        problem = None
        if not torch.isfinite(loss):
            problem = ("non-finite loss", "non-finite losses", f" ({loss.item()})")
        else:
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            if not torch.isfinite(norm):
                problem = ("non-finite gradient", "non-finite gradients", "")
        if problem is not None:
            self._bad += 1
            log.warning("step %d: %s%s, step skipped (%d in a row)", self.step, problem[0], problem[2], self._bad)
            self.opt.zero_grad(set_to_none=True)
            if self._bad >= self.cfg.max_bad_steps:
                raise RuntimeError(f"{self._bad} {problem[1]} in a row at step {self.step}: stopping. "
                                   "Lower --lr or check the data; resume from the last checkpoint.")
            return None
        self._bad = 0
        self.opt.step()
        self.sched.step()
        self.step += 1
        return loss.item()

    def fit(self, resume: bool = False) -> dict:
        """Train until ``max_steps``, the time budget, or a signal. Returns a summary."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        if resume and not self.load_checkpoint():
            log.info("no checkpoint in %s: starting from scratch", self.exp)
        old_handlers = self._catch_signals()
        batches_per_epoch = max(1, cfg.epoch_size // (cfg.batch_size * self.world))
        model = self.ddp or self.model
        model.train()
        t0 = self._t0 = time.monotonic()
        cpu0 = self._cpu0 = time.process_time()
        self._bad = 0
        losses: list[float] = []
        bar = tqdm(total=cfg.max_steps, initial=self.step, disable=not self.is_main, desc="train", dynamic_ncols=True)
        reason = "max_steps"
        try:
            while self.step < cfg.max_steps:
                if self.batch_in_epoch >= batches_per_epoch:
                    self.epoch += 1
                    self.batch_in_epoch = 0
                    self.save_checkpoint()
                loss = self._step(model)
                if loss is None:
                    continue
                losses.append(loss)
                bar.update(1)
                if self.step % cfg.log_every == 0:
                    avg = sum(losses[-cfg.log_every :]) / len(losses[-cfg.log_every :])
                    bar.set_postfix(loss=f"{avg:.3f}", lr=f"{self.sched.get_last_lr()[0]:.2e}")
                elapsed = time.monotonic() - t0
                if self.step % cfg.val_every == 0:
                    # a long validation may outlast the grace a preempting scheduler (or torchrun's 30 s before
                    # SIGKILL) gives: checkpoint first, so that a stop during it loses nothing
                    self.save_checkpoint()
                    recent = losses[-cfg.val_every :]
                    self._validate(sum(recent) / len(recent))
                if self.step % cfg.ckpt_every == 0:
                    self.save_checkpoint()
                stop = self._should_stop(elapsed)
                if stop:
                    reason = stop
                    break
                if cfg.max_cpu_minutes is not None and time.process_time() - cpu0 > cfg.max_cpu_minutes * 60:
                    reason = "CPU budget"
                    break
        finally:
            bar.close()
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
        if self.world > 1:
            self._check_ranks_agree()
        if self.step % cfg.val_every and reason != "signal":
            recent = losses[-cfg.val_every :] or [math.nan]
            self._validate(sum(recent) / len(recent))
        self.save_checkpoint()  # after the last validation, so a resumed run knows its best score
        log.info("stopped at step %d (%s)%s", self.step, reason,
                 f"; checkpoint {self.ckpt_path}, continue with --resume" if reason == "signal" else "")
        if self.world > 1:
            dist.barrier()  # no rank leaves before rank 0 has written the checkpoint
            if self._own_group:
                dist.destroy_process_group()
        return {"step": self.step, "best": self.best, "reason": reason, "config": asdict(cfg)}


class _RankFilter(logging.Filter):
    """Under DDP: rank 0 logs everything, the other ranks warnings and errors; each line says its rank."""

    def __init__(self, rank: int) -> None:
        super().__init__()
        self.rank = rank

    def filter(self, record: logging.LogRecord) -> bool:
        if self.rank and record.levelno < logging.WARNING:
            return False
        if not getattr(record, "rank_tagged", False):
            record.msg, record.rank_tagged = f"[rank {self.rank}] {record.msg}", True
        return True


def rank_logging(rank: int) -> None:
    """Put a :class:`_RankFilter` on the root logger's handlers (once)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _RankFilter) for f in handler.filters):
            handler.addFilter(_RankFilter(rank))


def write_card(directory: Path, text: str, exp_dir: str | Path) -> None:
    """Write a model card ``directory/README.md``, followed by ``EXP_DIR/NOTES.md`` when there is one
    (the experimenter's own notes, such as the phases of a run trained over several sessions)."""
    notes = Path(exp_dir) / "NOTES.md"
    if notes.is_file():
        text = text.rstrip("\n") + "\n\n" + notes.read_text()
    (Path(directory) / "README.md").write_text(text)
