"""Render the bundled example mixtures from offline text-to-speech voices.

Usage:
    apt-get install flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
    python scripts/make_examples.py --out hubbub/demo

Each example is two TTS voices (flite and festival) reading different sentences,
the second starting a little later so that the speech partly overlaps. Writes
``examples/<name>.flac`` (16 kHz mixtures only, so the folder can be given to
``hubbub separate`` as it is), ``references/<name>.s1.flac`` and ``.s2.flac`` (the
clean voices) and ``examples.json`` with the transcripts; nothing comes from any corpus.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

log = logging.getLogger("make_examples")

SR = 16000
EXAMPLES = [
    ("two-talkers-1", ("flite", "slt"), "PLEASE CALL STELLA AND ASK HER TO BRING THESE THINGS WITH HER FROM THE STORE",
     ("festival", "kal_diphone"), "THE MEETING HAS BEEN MOVED TO THURSDAY AFTERNOON AT THREE O'CLOCK", 0.6),
    ("two-talkers-2", ("flite", "awb"), "WE SHOULD LEAVE EARLY IF WE WANT TO CATCH THE LAST TRAIN HOME TONIGHT",
     ("festival", "cmu_us_slt_arctic_hts"), "I THINK THE GARDEN NEEDS MORE WATER THAN IT GOT LAST SUMMER", 0.3),
    ("two-talkers-3", ("flite", "rms"), "THE WEATHER REPORT SAYS IT WILL RAIN FOR MOST OF THE WEEKEND",
     ("festival", "ked_diphone"), "SHE OPENED THE WINDOW AND LISTENED TO THE BIRDS IN THE TREES", 0.9),
]


def tts(engine: tuple[str, str], text: str, path: Path) -> np.ndarray:
    kind, voice = engine
    if kind == "flite":
        subprocess.run(["flite", "-voice", voice, "-t", text.lower(), "-o", str(path)], check=True)
    else:
        scheme = path.with_suffix(".txt")
        scheme.write_text(text.lower())
        subprocess.run(["text2wave", "-eval", f"(voice_{voice})", str(scheme), "-o", str(path)], check=True,
                       capture_output=True)
    data, sr = sf.read(path, dtype="float32")
    if sr != SR:
        import librosa

        data = librosa.resample(data, orig_sr=sr, target_sr=SR)
    return data.astype(np.float32)


def level(x: np.ndarray, db: float) -> np.ndarray:
    return x * 10 ** ((db - 10 * np.log10(np.mean(x**2) + 1e-12)) / 20)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="hubbub/demo")
    args = parser.parse_args(argv)
    out = Path(args.out)
    (out / "examples").mkdir(parents=True, exist_ok=True)
    (out / "references").mkdir(parents=True, exist_ok=True)
    meta = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, eng1, text1, eng2, text2, delay in EXAMPLES:
            s1 = level(tts(eng1, text1, Path(tmp) / "a.wav"), -25)
            s2 = level(tts(eng2, text2, Path(tmp) / "b.wav"), -26)
            pad = int(delay * SR)
            n = max(len(s1), len(s2) + pad)
            a = np.zeros(n, np.float32)
            b = np.zeros(n, np.float32)
            a[: len(s1)] = s1
            b[pad : pad + len(s2)] = s2
            peak = np.abs(a + b).max()
            if peak > 0.9:
                a, b = a * 0.9 / peak, b * 0.9 / peak
            sf.write(out / "examples" / f"{name}.flac", a + b, SR)
            sf.write(out / "references" / f"{name}.s1.flac", a, SR)
            sf.write(out / "references" / f"{name}.s2.flac", b, SR)
            meta.append({"name": name, "audio": f"examples/{name}.flac", "duration": round(n / SR, 3),
                         "sources": [f"references/{name}.s1.flac", f"references/{name}.s2.flac"],
                         "texts": [text1, text2],
                         "voices": ["/".join(eng1), "/".join(eng2)], "delay": delay})
            log.info("%s: %.1f s", name, n / SR)
    (out / "examples.json").write_text(json.dumps(meta, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
