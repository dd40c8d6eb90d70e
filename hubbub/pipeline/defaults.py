"""The pipeline's defaults, in one torch-free place: the CLI's ``--help``, the evaluation, the recipes and
:class:`~hubbub.pipeline.config.PipelineConfig` import them from here."""

__all__ = ["DEFAULT_ASR", "DEFAULT_CHUNK_SECONDS", "DEFAULT_OVERLAP_DETECTOR", "DEFAULT_OVERLAP_SECONDS",
           "DEFAULT_SEPARATOR", "PEAK"]

#: the embedded separator (:mod:`hubbub.models.separator`, 8 kHz, 2 voices)
DEFAULT_SEPARATOR = "separator-8k"
#: Whisper base + the time-frequency block adapted to separated voices
DEFAULT_ASR = "whisper-base-separated"
#: the embedded overlapped-speech detector (:mod:`hubbub.models.overlap`)
DEFAULT_OVERLAP_DETECTOR = "overlap-8k"
#: recordings longer than this (seconds) are separated in windows of this length ...
DEFAULT_CHUNK_SECONDS = 30.0
#: ... that overlap by this much
DEFAULT_OVERLAP_SECONDS = 2.0
#: the loudest sample a separated voice may have; louder voices are scaled down together
PEAK = 0.99
