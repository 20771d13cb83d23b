import json
import unicodedata
from pathlib import Path

import datasets
import pytest
import torch
from tokenizers import Tokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerFast

import hf_seq
from tokenizer_training import BYTE_TOKENS, SPECIAL_TOKEN_IDS, model_config_kwargs, train_tokenizer


SAMPLE_DATA = Path(hf_seq.__file__).parent / "sample_data"
REVIEWS_TRAIN = SAMPLE_DATA / "reviews_sample_train.txt"
NSMC_TRAIN = SAMPLE_DATA / "nsmc_sample_train.txt"
SMALL_VOCAB = 2500  # the vocab size of the `saved_bpe` fixture (conftest.py)

MIXED_TEXTS = [
    "영화 정말 재밌어요 ㅋㅋㅋ ㅠㅠ",
    "배우들 연기가 너무 좋았다!! 10점 만점에 10점",
    "Marvel 영화 중 best 😀🎬👍 강추",
    "이 영화는   띄어쓰기가\t이상해도 괜찮다\n두 줄",
    "희귀한 글자: 鬱 ꙮ 𝕳𝖊𝖑𝖑𝖔 ❤️ naïve café",
    "  앞뒤 공백은 정규화에서 사라진다  ",
    unicodedata.normalize("NFD", "자모로 분해된 한글도 합쳐진다"),
    "ＡＢＣ 전각 문자는 NFC에서 그대로",
    "띄어 쓴 문장부호 , 그대로 ! 남는다 . I do n't know",
    "경계 표시 문자▁도 공백이 된다",
]


def normalised(text):
    """What the default normalisation (NFC + strip) makes of `text`."""
    return unicodedata.normalize("NFC", text).replace("\u2581", " ").strip()


def test_autotokenizer_loads_saved_folder_with_same_behaviour(saved_bpe):
    tokenizer, output_dir = saved_bpe
    assert {"tokenizer.json", "tokenizer_config.json"} <= {path.name for path in output_dir.iterdir()}
    assert not list(output_dir.parent.glob(".*tmp-*")), "the staging folder must be gone"

    loaded = AutoTokenizer.from_pretrained(output_dir)

    assert isinstance(loaded, PreTrainedTokenizerFast)
    assert len(loaded) == len(tokenizer) == SMALL_VOCAB
    assert loaded(MIXED_TEXTS)["input_ids"] == tokenizer(MIXED_TEXTS)["input_ids"]
    # tokenizer.json alone (post-processor included) gives the same ids, for users of the `tokenizers` library.
    raw = Tokenizer.from_file(str(output_dir / "tokenizer.json"))
    assert [encoding.ids for encoding in raw.encode_batch(MIXED_TEXTS)] == loaded(MIXED_TEXTS)["input_ids"]
    config = json.loads((output_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert (config["pad_token"], config["unk_token"], config["bos_token"], config["eos_token"]) == (
        "<pad>",
        "<unk>",
        "<s>",
        "</s>",
    )


@pytest.mark.parametrize("text", MIXED_TEXTS)
def test_decode_gives_back_normalised_text_without_unk(saved_bpe, text):
    tokenizer, output_dir = saved_bpe
    loaded = AutoTokenizer.from_pretrained(output_dir)
    input_ids = loaded(text)["input_ids"]

    assert loaded.unk_token_id not in input_ids  # byte fallback covers characters never seen in training
    assert loaded.decode(input_ids, skip_special_tokens=True) == normalised(text)


def test_every_held_out_review_decodes_back(saved_bpe, valid_reviews):
    tokenizer, _ = saved_bpe
    encoded = tokenizer(valid_reviews)["input_ids"]
    decoded = tokenizer.batch_decode(encoded, skip_special_tokens=True)

    assert decoded == [normalised(review) for review in valid_reviews]
    assert not any(tokenizer.unk_token_id in ids for ids in encoded)


def test_tokens_never_cross_a_word_boundary(saved_bpe):
    tokenizer, _ = saved_bpe
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("정말 재밌는 영화였다 강추합니다")["input_ids"])

    # Only the first piece of each word carries the "▁" marker, so words are recoverable from the tokens.
    words_from_tokens = "".join(tokens[1:]).split("▁")[1:]
    assert words_from_tokens == ["정말", "재밌는", "영화였다", "강추합니다"]
    assert all("▁" not in token[1:] for token in tokens)


def test_special_token_ids_are_fixed_and_bos_is_added(saved_bpe):
    tokenizer, _ = saved_bpe
    assert {
        "pad_token_id": tokenizer.pad_token_id,
        "unk_token_id": tokenizer.unk_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    } == SPECIAL_TOKEN_IDS
    assert tokenizer.convert_tokens_to_ids(BYTE_TOKENS) == list(range(4, 4 + 256))

    input_ids = tokenizer("영화 최고")["input_ids"]
    assert input_ids[0] == tokenizer.bos_token_id
    assert tokenizer.eos_token_id not in input_ids
    # Byte tokens are vocabulary, not special tokens: a literal "<0x41>" is spelled out, not matched.
    assert tokenizer.convert_tokens_to_ids("<0x41>") not in tokenizer("<0x41>")["input_ids"]


def test_cls_and_mask_tokens_follow_eos_and_ids_are_stable_across_corpora(tmp_path):
    lines = REVIEWS_TRAIN.read_text(encoding="utf-8").splitlines()
    first = train_tokenizer(texts=lines[:1000], vocab_size=2000, cls_token="<cls>", mask_token="<mask>")
    second = train_tokenizer(texts=lines[3000:4000], vocab_size=2000, cls_token="<cls>", mask_token="<mask>")

    for tokenizer in (first, second):
        assert tokenizer.convert_tokens_to_ids(["<pad>", "<unk>", "<s>", "</s>", "<cls>", "<mask>"]) == list(range(6))
        assert (tokenizer.cls_token_id, tokenizer.mask_token_id) == (4, 5)
        assert tokenizer.convert_tokens_to_ids("<0x00>") == 6
    assert first.get_vocab() != second.get_vocab()  # different corpora, same special ids


def test_model_config_built_from_tokenizer_agrees(saved_bpe):
    tokenizer, output_dir = saved_bpe
    loaded = AutoTokenizer.from_pretrained(output_dir)
    kwargs = model_config_kwargs(loaded)
    config = hf_seq.LSTMConfig(**kwargs, embedding_size=16, hidden_size=16, num_hidden_layers=1)

    assert kwargs == {"vocab_size": SMALL_VOCAB, "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3}
    assert (config.vocab_size, config.pad_token_id, config.bos_token_id, config.eos_token_id) == (
        len(loaded),
        loaded.pad_token_id,
        loaded.bos_token_id,
        loaded.eos_token_id,
    )
    torch.manual_seed(0)
    model = hf_seq.LSTMForCausalLM(config).eval()
    batch = loaded(MIXED_TEXTS[:3], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (3, batch["input_ids"].shape[1], len(loaded))


def test_truncation_and_padding_for_classification_batches(tmp_path):
    output_dir = tmp_path / "left"
    train_tokenizer(
        files=[REVIEWS_TRAIN], vocab_size=2000, output_dir=output_dir, padding_side="left", model_max_length=12
    )
    loaded = AutoTokenizer.from_pretrained(output_dir)
    texts = ["짧다", "이 리뷰는 아주 길어서 최대 길이에서 잘려야 하는 리뷰입니다 정말로 아주 깁니다"]

    batch = loaded(texts, truncation=True, padding=True)

    assert loaded.padding_side == "left" and loaded.model_max_length == 12
    assert [len(ids) for ids in batch["input_ids"]] == [12, 12]
    assert batch["input_ids"][0][0] == loaded.pad_token_id and batch["attention_mask"][0][0] == 0
    assert batch["input_ids"][1][0] == loaded.bos_token_id  # truncation cuts text, never the bos
    assert loaded(texts, truncation=True, max_length=5)["input_ids"][1][0] == loaded.bos_token_id


def test_add_eos_token_appends_eos_that_survives_truncation():
    lines = REVIEWS_TRAIN.read_text(encoding="utf-8").splitlines()[:2000]
    tokenizer = train_tokenizer(texts=lines, vocab_size=2000, add_bos_token=False, add_eos_token=True)

    input_ids = tokenizer("영화가 정말 재밌고 배우들 연기도 좋았다", truncation=True, max_length=4)["input_ids"]
    assert len(input_ids) == 4
    assert input_ids[-1] == tokenizer.eos_token_id and tokenizer.bos_token_id not in input_ids


def test_dataset_column_file_and_iterator_train_the_same_tokenizer(tmp_path):
    documents = [line.split("\t")[1] for line in NSMC_TRAIN.read_text(encoding="utf-8").splitlines()[1:]]
    lines_file = tmp_path / "documents.txt"
    lines_file.write_text("\n".join(documents) + "\n", encoding="utf-8")
    settings = {"vocab_size": SMALL_VOCAB, "min_frequency": 2}

    from_file = train_tokenizer(files=[lines_file], **settings)
    from_dataset = train_tokenizer(
        dataset=datasets.Dataset.from_dict({"document": documents, "label": [0] * len(documents)}),
        text_column="document",
        **settings,
    )
    from_tsv_column = train_tokenizer(files=[NSMC_TRAIN], text_column="document", **settings)
    from_generator = train_tokenizer(texts=(document for document in documents), **settings)

    expected = from_file.backend_tokenizer.to_str()
    assert from_dataset.backend_tokenizer.to_str() == expected
    assert from_tsv_column.backend_tokenizer.to_str() == expected
    assert from_generator.backend_tokenizer.to_str() == expected


def test_char_level_vocabulary_is_single_characters():
    lines = REVIEWS_TRAIN.read_text(encoding="utf-8").splitlines()
    tokenizer = train_tokenizer(texts=lines, algorithm="char", vocab_size=1000)

    learned = [token for token, token_id in tokenizer.get_vocab().items() if token_id >= 4 + 256]
    assert len(tokenizer) == 1000
    assert learned and all(len(token) == 1 for token in learned)
    text = "희귀한 글자 鬱 이모지 😀 도 복원"
    assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text


@pytest.mark.parametrize(
    ("algorithm", "settings"),
    [("char", {"vocab_size": 4 + 256 + 9}), ("bpe", {"vocab_size": 400, "limit_alphabet": 9})],
)
def test_the_alphabet_keeps_equally_frequent_characters_in_code_point_order(tmp_path, algorithm, settings):
    # 28 characters seen once each and the word-boundary marker: only 9 fit, so 8 of the ties are kept.
    text = "하파타카차자아사바마라다나가 PONMLKJIHGFEDCBA"
    corpus_file = tmp_path / "corpus.txt"
    corpus_file.write_text(text + "\n", encoding="utf-8")
    expected = ["▁", *"ABCDEFGH"]
    for corpus in ({"texts": [text]}, {"texts": iter([text])}, {"files": [corpus_file]}):
        tokenizer = train_tokenizer(algorithm=algorithm, min_frequency=0, **corpus, **settings)
        characters = sorted(token for token in tokenizer.get_vocab() if len(token) == 1)
        assert characters == sorted(expected), corpus


def test_word_level_keeps_whole_words_and_maps_unseen_words_to_unk():
    lines = REVIEWS_TRAIN.read_text(encoding="utf-8").splitlines()
    tokenizer = train_tokenizer(texts=lines, algorithm="word", vocab_size=3000)

    assert len(tokenizer) == 3000
    assert tokenizer.convert_ids_to_tokens(tokenizer("영화 정말")["input_ids"]) == ["<s>", "▁영화", "▁정말"]
    assert tokenizer("영화 뷁뷁뷁")["input_ids"][-1] == tokenizer.unk_token_id
