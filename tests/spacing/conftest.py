"""A tiny spacing tagger trained once for the spacing tests (seconds, CPU, seeded)."""

import pytest


SPACED_TEXTS = [
    "아버지가 방에 들어가신다",
    "이 영화 정말 재밌어요",
    "배우들 연기가 좋다",
    "스토리는 별로 였지만 음악이 좋았다",
    "다시 보고 싶은 영화",
    "시간 가는 줄 몰랐다",
    "이 영화 최고 ㅋㅋ",
    "정말 지루한 영화",
]


@pytest.fixture(scope="session")
def tiny_tagger(tmp_path_factory):
    """The folder of a BiGRU tagger that has learned `SPACED_TEXTS`."""
    import torch

    from hf_seq.spacing import spacing_pairs, train_spacing_tagger

    torch.set_num_threads(1)
    output_dir = tmp_path_factory.mktemp("spacing") / "tagger"
    pairs = spacing_pairs(SPACED_TEXTS * 8)
    train_spacing_tagger(
        pairs,
        eval_dataset=spacing_pairs(SPACED_TEXTS),
        output_dir=output_dir,
        vocab_size=300,
        config_overrides={"embedding_size": 16, "hidden_size": 32, "embedding_dropout": 0.0, "output_dropout": 0.0},
        num_train_epochs=12,
        batch_size=8,
        learning_rate=1e-2,
        logging_steps=1000,
        seed=0,
    )
    return output_dir
