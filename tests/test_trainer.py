"""Training: exact resume after SIGKILL, NaN handling, configs, DDP."""

import functools
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import TINY_SEPARATOR
from hubbub.models.separator import SeparatorConfig
from hubbub.recipes.config import build_configs, load_yaml
from hubbub.recipes.train_separator import SeparatorTrainConfig, build_parser
from hubbub.recipes.trainer import LoopConfig, Trainer, write_card

ROOT = Path(__file__).resolve().parents[1]


def _args(data, exp, max_steps):
    model = []
    for k in ("enc_channels", "kernel_size", "stride", "d_model", "n_heads", "d_ff", "n_blocks", "chunk_size"):
        model += [f"--model-{k.replace('_', '-')}", str(getattr(TINY_SEPARATOR, k))]
    return [
        "train", "separator", "--data-dir", str(data), "--exp-dir", str(exp), "--batch-size", "2",
        "--epoch-size", "8", "--val-speakers", "2", "--val-mixtures", "2", "--val-seconds", "0.5",
        "--segment-seconds-start", "0.5", "--segment-seconds", "0.5", "--ckpt-every", "1", "--val-every", "4",
        "--warmup-steps", "2", "--max-steps", str(max_steps), "--threads", "1", *model,
    ]


def _run(args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "hubbub", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _weights(exp):
    return torch.load(Path(exp) / "checkpoint.pt", weights_only=True)


@pytest.mark.slow
def test_resume_after_sigkill_reaches_the_same_weights(tmp_path, tiny_librispeech):
    steps = 40  # the kill lands somewhere in 6..39: room for a loaded machine
    straight = _run(_args(tiny_librispeech, tmp_path / "a", steps))
    killed = _run(_args(tiny_librispeech, tmp_path / "b", 10_000))
    ckpt = tmp_path / "b" / "checkpoint.pt"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if ckpt.exists() and torch.load(ckpt, weights_only=True)["step"] >= 6:
            break
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    killed_at = torch.load(ckpt, weights_only=True)["step"]
    assert 6 <= killed_at < steps, killed_at  # checkpoint.pt is whole even if the kill came mid-write
    out, _ = straight.communicate(timeout=300)
    assert straight.returncode == 0, out
    resumed = _run([*_args(tiny_librispeech, tmp_path / "b", steps), "--resume"])
    out_b, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out_b
    assert f"resumed from {ckpt}" in out_b
    assert not list((tmp_path / "b").glob(".*.tmp"))  # a temporary file left by the kill is cleaned up
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a["step"] == b["step"] == steps
    for name in a["model"]:
        torch.testing.assert_close(a["model"][name], b["model"][name], atol=1e-5, rtol=1e-4, msg=name)
    assert (tmp_path / "b" / "best" / "model.safetensors").is_file()
    assert (tmp_path / "b" / "metrics.csv").read_text().startswith("step,epoch,lr")


class _NanTask:
    """A task whose loss is NaN on chosen steps."""

    def __init__(self, bad):
        self.bad = bad
        self.seen = 0

    def batch(self, epoch, indices, step):
        return torch.ones(len(indices), 4)

    def loss(self, model, batch):
        self.seen += 1
        out = model(batch).pow(2).mean()
        return out * float("nan") if self.bad(self.seen) else out

    def validate(self, model):
        return {"score": 0.0}

    def export(self, model, directory, info):
        directory.mkdir(parents=True, exist_ok=True)


def test_nan_loss_skips_the_step(tmp_path, caplog):
    cfg = LoopConfig(exp_dir=str(tmp_path), max_steps=6, val_every=100, ckpt_every=100, warmup_steps=1)
    summary = Trainer(cfg, nn.Linear(4, 4), _NanTask(lambda n: n in (2, 3))).fit()
    assert summary["step"] == 6
    assert "non-finite loss" in caplog.text


def test_repeated_nan_losses_stop_the_run(tmp_path):
    cfg = LoopConfig(exp_dir=str(tmp_path), max_steps=50, max_bad_steps=3, val_every=100, ckpt_every=100)
    with pytest.raises(RuntimeError, match="3 non-finite losses in a row"):
        Trainer(cfg, nn.Linear(4, 4), _NanTask(lambda n: n > 2)).fit()


def test_config_yaml_and_overrides(tmp_path):
    yaml_path = tmp_path / "c.yaml"
    yaml_path.write_text("batch_size: 3\nnoise_dir: null\nmodel:\n  d_model: 32\n  inter_window: 8\n")
    args = build_parser().parse_args(["--config", str(yaml_path), "--lr", "5e-4", "--model-n-src", "3",
                                      "--model-inter-window", "none"])
    cfg, model_cfg = build_configs(args, SeparatorTrainConfig, SeparatorConfig, load_yaml(yaml_path))
    assert cfg.batch_size == 3 and cfg.lr == 5e-4 and cfg.noise_dir is None
    assert model_cfg.d_model == 32 and model_cfg.n_src == 3 and model_cfg.inter_window is None


def test_config_rejects_unknown_keys_and_objects(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("batch_sise: 3\n")
    args = build_parser().parse_args([])
    with pytest.raises(ValueError, match="unknown key"):
        build_configs(args, SeparatorTrainConfig, SeparatorConfig, load_yaml(bad))
    evil = tmp_path / "evil.yaml"
    evil.write_text("lr: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(Exception, match="python/object"):
        load_yaml(evil)


def test_shipped_recipe_configs_parse():
    """Every shipped config builds, and its values arrive (not the defaults)."""
    from hubbub.models.configs import OverlapConfig
    from hubbub.recipes import train_asr, train_overlap

    configs = ROOT / "hubbub" / "recipes" / "configs"
    from hubbub.recipes.train_separator import model_config_class

    recipes = {"separator": (build_parser, SeparatorTrainConfig, SeparatorConfig),
               "asr": (train_asr.build_parser, train_asr.AsrTrainConfig, None),
               "overlap": (train_overlap.build_parser, train_overlap.OverlapTrainConfig, OverlapConfig)}
    seen = set()
    for path in sorted(configs.glob("*.yaml")):
        kind = path.name.split("-")[0]
        parser, train_cls, model_cls = recipes[kind]
        raw = load_yaml(path)
        if kind == "separator":  # another design: its own model config and flags
            architecture = raw.get("architecture", "dualpath")
            model_cls = model_config_class(architecture)
            parser = functools.partial(build_parser, architecture=architecture)
        cfg, model_cfg = build_configs(parser().parse_args([]), train_cls, model_cls, raw)
        assert isinstance(cfg, train_cls)
        assert model_cfg is None if model_cls is None else isinstance(model_cfg, model_cls)
        for key, value in raw.items():
            if isinstance(value, dict):
                for field, v in value.items():
                    assert getattr(model_cfg, field) == v, (path.name, field)
            else:
                got = getattr(cfg, key)
                assert (list(got) if isinstance(got, tuple) else got) == value, (path.name, key)
        seen.add(kind)
    assert seen == {"separator", "asr", "overlap"}


@pytest.mark.skipif(not hasattr(torch.distributed, "is_gloo_available") or not torch.distributed.is_gloo_available(),
                    reason="gloo backend not built")
@pytest.mark.slow
def test_ddp_two_processes_hold_identical_weights(tmp_path, tiny_librispeech):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "hubbub", *_args(tiny_librispeech, tmp_path / "ddp", 4)]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout + proc.stderr
    assert text.count("[rank 0] all 2 ranks hold identical weights") == 1, text
    assert "[rank 1]" not in text  # rank 1 logs warnings and errors only
    assert text.count("training utterances") == 1, text  # the data is described once, not once per rank
    assert torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)["step"] == 4


def _torchrun(args, port):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "hubbub", *args]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.skipif(not hasattr(torch.distributed, "is_gloo_available") or not torch.distributed.is_gloo_available(),
                    reason="gloo backend not built")
@pytest.mark.slow
def test_sigterm_under_torchrun_checkpoints_exits_0_and_resumes(tmp_path, tiny_librispeech):
    """SIGTERM to one rank of a 2-process gloo run (a preempted worker): the ranks agree to stop after the
    same step, rank 0 writes the checkpoint, every process exits 0, and --resume goes on from that step."""
    psutil = pytest.importorskip("psutil")
    exp = tmp_path / "ddp"
    args = [*_args(tiny_librispeech, exp, 100_000), "--ckpt-every", "5", "--val-every", "100000"]
    proc = _torchrun(args, 29536)
    ckpt = exp / "checkpoint.pt"
    deadline = time.monotonic() + 240
    while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    workers = [c for c in psutil.Process(proc.pid).children() if c.environ().get("RANK") == "1"]
    assert ckpt.exists() and len(workers) == 1, proc.poll()
    workers[0].send_signal(signal.SIGTERM)  # rank 1 only: rank 0 learns of it through the all-reduce
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out
    assert "[rank 1] SIGTERM: checkpointing and stopping after this step" in out, out
    stopped = int(re.search(r"\[rank 0\] stopped at step (\d+) \(signal\)", out).group(1))
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == stopped >= 1
    resumed = _torchrun([*_args(tiny_librispeech, exp, stopped + 4), "--ckpt-every", "5", "--resume"], 29537)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert f"resumed from {ckpt} at step {stopped}" in out, out
    assert "[rank 0] all 2 ranks hold identical weights" in out
    assert torch.load(ckpt, weights_only=True)["step"] == stopped + 4


class _Evil:
    """Pickles into a shell command: must never run when a checkpoint is loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_resume_refuses_a_checkpoint_that_carries_code(tmp_path):
    import pickle

    marker = tmp_path / "pwned"
    torch.save({"model": _Evil(marker)}, tmp_path / "checkpoint.pt")
    trainer = Trainer(LoopConfig(exp_dir=str(tmp_path)), nn.Linear(4, 4), _NanTask(lambda n: False))
    with pytest.raises(pickle.UnpicklingError):
        trainer.load_checkpoint()
    assert not marker.exists()


def test_stale_temporary_checkpoint_is_removed(tmp_path):
    stale = tmp_path / ".checkpoint.pt.4242.tmp"
    stale.write_bytes(b"half a checkpoint")
    Trainer(LoopConfig(exp_dir=str(tmp_path)), nn.Linear(4, 4), _NanTask(lambda n: False))
    assert not stale.exists()


def test_metrics_csv_widens_when_a_resumed_run_adds_a_metric(tmp_path):
    from types import SimpleNamespace

    fake = SimpleNamespace(is_main=True, exp=tmp_path)
    Trainer._write_metrics(fake, {"step": 1, "score": 0.5})
    Trainer._write_metrics(fake, {"step": 2, "score": 0.4})
    Trainer._write_metrics(fake, {"step": 3, "score": 0.3, "wer_ctc": 0.2})
    Trainer._write_metrics(fake, {"step": 4, "score": 0.2, "wer_ctc": 0.1})
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines == ["step,score,wer_ctc", "1,0.5,", "2,0.4,", "3,0.3,0.2", "4,0.2,0.1"]
    assert not list(tmp_path.glob("*.tmp"))


def test_model_card_carries_the_experiment_notes(tmp_path):
    (tmp_path / "best").mkdir()
    write_card(tmp_path / "best", "# card\n", tmp_path)
    assert (tmp_path / "best" / "README.md").read_text() == "# card\n"
    (tmp_path / "NOTES.md").write_text("## history\nphase 1\n")
    write_card(tmp_path / "best", "# card\n", tmp_path)
    assert (tmp_path / "best" / "README.md").read_text() == "# card\n\n## history\nphase 1\n"


def test_resume_takes_a_new_learning_rate(tmp_path, caplog):
    caplog.set_level("INFO")
    base = dict(exp_dir=str(tmp_path), val_every=100, ckpt_every=4, warmup_steps=2, decay_steps=10, lr_decay=0.5)
    Trainer(LoopConfig(**base, max_steps=4, lr=1e-3), nn.Linear(4, 4), _NanTask(lambda n: False)).fit()
    trainer = Trainer(LoopConfig(**base, max_steps=6, lr=4e-3), nn.Linear(4, 4), _NanTask(lambda n: False))
    assert trainer.load_checkpoint() and trainer.step == 4
    assert "learning rate 0.004 from the config (the checkpoint had 0.001)" in caplog.text
    assert trainer.opt.param_groups[0]["lr"] == pytest.approx(4e-3 * 0.5 ** (4 / 10), rel=1e-6)
    trainer.fit(resume=False)  # the schedule goes on from there at the new rate
    assert trainer.step == 6 and trainer.sched.get_last_lr()[0] == pytest.approx(4e-3 * 0.5 ** (6 / 10), rel=1e-6)


def test_the_last_checkpoint_knows_the_last_validation(tmp_path):
    """A run that stops between validations validates once more; its final checkpoint
    must hold that score, or a resumed run would overwrite ``best/`` with a worse model."""

    class Scores(_NanTask):
        def __init__(self):
            super().__init__(lambda n: False)
            self.scores = iter([0.5, 0.9, 0.7])

        def validate(self, model):
            return {"score": next(self.scores)}

    cfg = LoopConfig(exp_dir=str(tmp_path), max_steps=6, val_every=4, ckpt_every=100, warmup_steps=1,
                     higher_is_better=True)
    assert Trainer(cfg, nn.Linear(4, 4), task := Scores()).fit()["best"] == 0.9  # step 4: 0.5, the end: 0.9
    resumed = Trainer(LoopConfig(**{**cfg.__dict__, "max_steps": 8}), nn.Linear(4, 4), task)
    assert resumed.load_checkpoint() and resumed.step == 6 and resumed.best == 0.9
    resumed.fit()  # step 8 scores 0.7: not better, so best/ is not replaced
    assert resumed.best == 0.9


def test_single_talker_share_trains_and_reports_the_lone_voice_leak(tmp_path, tiny_librispeech):
    from hubbub.__main__ import main

    exp = tmp_path / "exp"
    assert main(_args(tiny_librispeech, exp, 4) + ["--single-speaker-prob", "0.5"]) == 0
    header, *rows = (exp / "metrics.csv").read_text().splitlines()
    assert "lone_leak_db" in header.split(",")
    value = float(rows[-1].split(",")[header.split(",").index("lone_leak_db")])
    assert -200 < value <= -3.0  # the quieter output holds at most half of the voice
    assert "one talker alone with p=0.5" in (exp / "best" / "README.md").read_text()
