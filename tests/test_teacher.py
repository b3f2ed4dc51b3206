"""Teacher fine-tuning: it learns, and a killed run resumes to the very same weights."""
import torch

from sorbet_hw.model.bert import BertConfig, BertEncoder, load_tokenizer
from sorbet_hw.model.glue import Examples, get_task, metrics
from sorbet_hw.model.teacher import SequenceClassifier, TrainConfig, predict, train

TINY = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
TEXTS = ["a great , moving film", "dull and lifeless", "wonderful acting", "a tedious mess",
         "funny and warm", "boring , boring , boring", "a delight", "painfully bad"] * 6
LABELS = [1, 0, 1, 0, 1, 0, 1, 0] * 6


def tiny_model():
    torch.manual_seed(1)
    return SequenceClassifier(BertEncoder(TINY), 2)


def run(tmp_path, name, stop_after=None, model=None, epochs=4):
    cfg = TrainConfig(batch_size=8, epochs=epochs, learning_rate=3e-3, checkpoint_every=5,
                      max_length=12)
    model = model or tiny_model()
    data = Examples(TEXTS, None, torch.tensor(LABELS).numpy())
    summary = train(model, get_task("sst2"), load_tokenizer(max_length=12), data, cfg,
                    tmp_path / name, stop_after=stop_after, progress=False)
    return model, summary, data


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    whole, summary, _ = run(tmp_path, "whole.pt")
    assert summary["step"] == summary["total"] == 24
    _, first, _ = run(tmp_path, "killed.pt", stop_after=7)      # killed after step 7: the
    assert first["step"] == 7                                    # checkpoint holds step 5
    assert torch.load(tmp_path / "killed.pt", weights_only=False)["step"] == 5
    resumed, second, _ = run(tmp_path, "killed.pt")              # a fresh process resumes
    assert second["step"] == 24
    for (k, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k
    assert not list(tmp_path.glob("*.partial"))


def test_tiny_teacher_learns_its_training_set(tmp_path):
    model, summary, data = run(tmp_path, "learn.pt", epochs=15)
    acc = metrics("sst2", predict(model, get_task("sst2"), load_tokenizer(max_length=12), data),
                  data.labels)["accuracy"]
    assert acc == 100.0, summary
