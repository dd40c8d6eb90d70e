"""`hubbub separate` through main([...])."""

import numpy as np
import soundfile as sf

from conftest import voice
from hubbub.__main__ import main


def _mix(path, sr=16000, seconds=1.5):
    sf.write(path, voice(110, seconds, sr, 1) + voice(230, seconds, sr, 2), sr)
    return path


def test_separate_writes_one_file_per_speaker_at_input_rate(tmp_path, tiny_separator_dir):
    a = _mix(tmp_path / "a.wav")
    b = _mix(tmp_path / "b.flac", sr=8000)
    out = tmp_path / "out"
    assert main(["separate", str(a), str(b), "-o", str(out), "--model", str(tiny_separator_dir), "--quiet"]) == 0
    for stem, sr, n in [("a", 16000, 24000), ("b", 8000, 12000)]:
        for k in (1, 2):
            data, file_sr = sf.read(out / stem / f"spk{k}.wav")
            assert file_sr == sr and data.shape == (n,)
            assert np.isfinite(data).all()
    assert not list(out.glob(".*"))  # no temporary leftovers


def test_skip_existing_and_overwrite(tmp_path, tiny_separator_dir):
    a = _mix(tmp_path / "a.wav")
    out = tmp_path / "out"
    args = ["separate", str(a), "-o", str(out), "--model", str(tiny_separator_dir), "--quiet"]
    assert main(args) == 0
    marker = out / "a" / "spk1.wav"
    marker.write_bytes(b"old")
    assert main(args) == 0
    assert marker.read_bytes() == b"old"  # skipped
    assert main([*args, "--overwrite"]) == 0
    assert sf.read(marker)[0].shape == (24000,)


def test_batch_with_bad_files_goes_on_and_fails_at_the_end(tmp_path, tiny_separator_dir, caplog):
    good1 = _mix(tmp_path / "good1.wav")
    bad = tmp_path / "broken.wav"
    bad.write_text("not audio")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(8000, dtype=np.float32), 8000)
    good2 = _mix(tmp_path / "good2.wav")
    out = tmp_path / "out"
    code = main(["separate", str(good1), str(bad), str(silent), str(tmp_path / "nope.wav"), str(good2),
                 "-o", str(out), "--model", str(tiny_separator_dir)])
    assert code == 1
    assert (out / "good1" / "spk2.wav").is_file() and (out / "good2" / "spk2.wav").is_file()
    assert not (out / "broken").exists()
    for k in (1, 2):  # digital silence is valid audio: its voices are silent, and it is no failure
        data, sr = sf.read(out / "silent" / f"spk{k}.wav")
        assert sr == 8000 and data.shape == (8000,) and not data.any()
    text = caplog.text
    assert f"{bad}: not a readable audio file" in text
    assert f"{silent}: digital silence" in text
    assert "nope.wav: no such file" in text
    assert "separated 3" in text and "failed 2" in text


def test_folders_globs_dedup_and_shards(tmp_path, tiny_separator_dir):
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    for name in ["x.wav", "y.wav", "sub/z.flac"]:
        _mix(d / name, seconds=0.5)
    out = tmp_path / "out"
    model = ["--model", str(tiny_separator_dir), "--quiet"]
    assert main(["separate", str(d), str(d / "*.wav"), str(d / "x.wav"), "-o", str(out), "--shard", "1/2", *model]) == 0
    first = sorted(p.name for p in out.iterdir())
    assert main(["separate", str(d), "-o", str(out), "--shard", "2/2", *model]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["x", "y", "z"]
    assert len(first) == 2


def test_long_input_in_windows_and_local_window(tmp_path, tiny_separator_dir):
    a = _mix(tmp_path / "long.wav", sr=8000, seconds=5.0)
    out = tmp_path / "out"
    code = main(["separate", str(a), "-o", str(out), "--model", str(tiny_separator_dir), "--quiet",
                 "--chunk-seconds", "2", "--overlap-seconds", "0.5", "--window", "local"])
    assert code == 0
    assert sf.read(out / "long" / "spk1.wav")[0].shape == (40000,)


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert "hubbub 0.1.0" in capsys.readouterr().out
    assert main(["--help"]) == 0
    assert "separate" in capsys.readouterr().out
    assert main(["no-such-command"]) == 2


def test_model_may_be_an_experiment_folder_and_a_bad_one_is_one_line(tmp_path, tiny_separator_dir, caplog):
    import logging
    import shutil

    src = tmp_path / "in"
    src.mkdir()
    for k in range(3):
        sf.write(src / f"m{k}.wav", voice(120 + 40 * k, 0.5, 8000, k) + voice(260, 0.5, 8000, 9), 8000)
    exp = tmp_path / "exp"
    shutil.copytree(tiny_separator_dir, exp / "best")
    assert main(["separate", str(src), "-o", str(tmp_path / "out"), "--model", str(exp), "--quiet"]) == 0
    assert len(list((tmp_path / "out").glob("m*/spk*.wav"))) == 6
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        for bad in (tmp_path / "in", tmp_path / "nowhere"):  # a folder without a model; a path that is not there
            assert main(["separate", str(src), "-o", str(tmp_path / "x"), "--model", str(bad), "--quiet"]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"--model {tmp_path / 'in'}: not a model folder (no config.json, nor best/config.json)",
                      f"--model {tmp_path / 'nowhere'}: no such model folder"]
    assert not (tmp_path / "x").exists()
