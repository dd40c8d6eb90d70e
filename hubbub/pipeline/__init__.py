"""Audio front-end, separate-then-transcribe, long recordings, output writers.

``from hubbub.pipeline import Pipeline`` is the entry point; the submodules are
importable on their own (``hubbub.pipeline.audio`` needs no model code).
"""

__all__ = ["Pipeline", "PipelineConfig", "Result"]


def __getattr__(name: str):
    if name == "Pipeline":
        from hubbub.pipeline.pipeline import Pipeline

        return Pipeline
    if name == "PipelineConfig":
        from hubbub.pipeline.config import PipelineConfig

        return PipelineConfig
    if name == "Result":
        from hubbub.pipeline.result import Result

        return Result
    raise AttributeError(name)
