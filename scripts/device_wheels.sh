#!/usr/bin/env bash
# Wheels that a bare GPU machine (Python 3.12 with torch, torchaudio, sentencepiece, safetensors, scipy,
# tqdm, pyyaml already there, no package index) needs to import and train hubbub: about 6.5 MB.
#
# Usage (here, with PyPI):
#     bash scripts/device_wheels.sh .whl          # .whl/ is git-ignored; carry it with the run
# then on the machine, before any hubbub command:
#     python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \
#         export PYTHONPATH=/tmp/site:$PWD
#     python3 -m hubbub train separator --config hubbub/recipes/configs/separator-default.yaml --resume \
#         --data-dir .carry/train-clean-100-8k --device cuda --batch-size 16 --max-minutes 8
# The working tree travels too (about 28 MB tracked), so keep .carry + .whl under about 34 MB:
#     python scripts/make_carry.py --max-minutes-per-speaker 1.5
set -euo pipefail
out=${1:-.whl}
mkdir -p "$out"
pip_download() {
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform any -d "$out" "$@"
}
for spec in soundfile==0.14.0 cffi pycparser speechbrain==1.1.2 hyperpyyaml ruamel.yaml ruamel.yaml.clib \
        jiwer==4.0.0 rapidfuzz num2words==0.5.14; do
    pip_download "$spec"
done
# pure-Python packages published only as source: build their wheels here
python3 -m pip wheel -q --no-deps -w "$out" docopt fast_bss_eval==0.1.4
ls "$out"
