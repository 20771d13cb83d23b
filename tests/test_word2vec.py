"""hf_seq.word2vec: the windows, the sampling recipe, training on a planted corpus, queries, export, and
initialising a language model from the vectors. Everything runs on tiny corpora (the shipped review sample at most)."""

import random

import pytest
import torch

import hf_seq
from hf_seq.data import sample_data_path
from hf_seq.models.word2vec import Word2VecModel, register_word2vec
from hf_seq.word2vec import (
    NegativeSampler,
    TokenStream,
    WordVectors,
    build_config,
    context_windows,
    flatten_corpus,
    init_embeddings_from,
    keep_probabilities,
    load_word2vec_format,
    subsample_stream,
    tokenize_corpus,
    train_on_stream,
    train_word2vec,
    train_word2vec_cli,
)
from tokenizer_training import train_tokenizer


register_word2vec()
PAD = 0


def naive_windows(sentences, window, reduced):
    """The contexts a reader would write by hand: for each token, its neighbours within its reduced window."""
    rows, k = [], 0
    for sentence in sentences:
        for i in range(len(sentence)):
            row = []
            for offset in [*range(-window, 0), *range(1, window + 1)]:
                j = i + offset
                row.append(sentence[j] if 0 <= j < len(sentence) and abs(offset) <= reduced[k] else PAD)
            rows.append(row)
            k += 1
    return rows


def stream_of(sentences):
    return TokenStream(
        torch.tensor([t for s in sentences for t in s]), torch.tensor([n for n, s in enumerate(sentences) for _ in s])
    )


@pytest.mark.parametrize("window", [1, 2, 4])
def test_windows_equal_a_naive_reference(window):
    rng = random.Random(window)
    sentences = [[rng.randrange(1, 30) for _ in range(rng.randrange(1, 8))] for _ in range(25)]
    stream = stream_of(sentences)
    reduced = torch.randint(1, window + 1, (len(stream),), generator=torch.Generator().manual_seed(0))
    expected = naive_windows(sentences, window, reduced.tolist())
    # in batches that cut sentences anywhere, as the training loop's batches do
    for batch in (1, 3, len(stream)):
        rows = []
        for start in range(0, len(stream), batch):
            end = min(start + batch, len(stream))
            contexts, real = context_windows(stream, start, end, window, PAD, reduced[start:end])
            assert torch.equal(real, contexts != PAD)
            rows += contexts.tolist()
        assert rows == expected


def test_negatives_follow_the_unigram_distribution_to_the_power_075():
    counts = torch.tensor([0, 0, 1000, 300, 50, 7, 0, 1, 5000])
    sampler = NegativeSampler.from_counts(counts, 0.75)
    draws = sampler.sample((400_000,), torch.Generator().manual_seed(0))
    expected = counts.double() ** 0.75
    expected /= expected.sum()
    observed = torch.bincount(draws, minlength=len(counts)).double() / draws.numel()
    assert observed[counts == 0].sum() == 0  # an unseen token is never a negative
    sigma = (expected * (1 - expected) / draws.numel()).sqrt()
    assert ((observed - expected).abs() <= 5 * sigma + 1e-6).all(), (observed, expected)
    # and not the raw unigram distribution
    assert abs(observed[8] - counts[8] / counts.sum()) > 0.05


def test_subsampling_keeps_tokens_at_gensims_rate():
    counts = torch.tensor([0, 10, 100, 1000, 100_000])
    sample = 1e-3
    threshold = sample * counts.sum().item()
    expected = [1.0] + [min(1.0, ((c / threshold) ** 0.5 + 1) * threshold / c) for c in counts[1:].tolist()]
    torch.testing.assert_close(keep_probabilities(counts, sample), torch.tensor(expected, dtype=torch.float64))
    assert keep_probabilities(counts, 0).eq(1).all()
    # the stream keeps the frequent token at that rate
    stream = TokenStream(torch.full((200_000,), 4), torch.arange(200_000))
    kept = subsample_stream(stream, keep_probabilities(counts, sample), torch.Generator().manual_seed(0))
    assert abs(len(kept) / len(stream) - expected[4]) < 0.01


def test_subsampling_rates_equal_gensims():
    gensim = pytest.importorskip("gensim")
    sentences = [["a"] * 50 + ["b"] * 5 + ["c"]] * 40
    model = gensim.models.Word2Vec(sample=1e-2, min_count=1, vector_size=4, workers=1)
    model.build_vocab(sentences)
    words = ["a", "b", "c"]
    gensim_rates = torch.tensor(
        [model.wv.get_vecattr(w, "sample_int") / (2**32 - 1) for w in words], dtype=torch.float64
    )
    counts = torch.tensor([model.wv.get_vecattr(w, "count") for w in words])
    torch.testing.assert_close(keep_probabilities(counts, 1e-2), gensim_rates, atol=1e-8, rtol=0)


def planted_corpus(seed=0, sentences=1500):
    """Four words whose contexts are drawn from attribute pools: man (male, person), woman (female, person),
    king (male, royal), queen (female, royal); film and movie share one pool. So film ~ movie, and
    man : king :: woman : queen."""
    rng = random.Random(seed)
    pools = {name: [f"{name}{i}" for i in range(6)] for name in ("male", "female", "person", "royal", "cinema")}
    words = {
        "man": ("male", "person"),
        "woman": ("female", "person"),
        "king": ("male", "royal"),
        "queen": ("female", "royal"),
        "film": ("cinema", "cinema"),
        "movie": ("cinema", "cinema"),
    }
    lines = []
    for _ in range(sentences):
        word = rng.choice(list(words))
        context = [rng.choice(pools[rng.choice(words[word])]) for _ in range(4)]
        lines.append(" ".join(context[:2] + [word] + context[2:]))
    return lines


@pytest.fixture(scope="module")
def planted():
    lines = planted_corpus()
    tokenizer = train_tokenizer(texts=lines, algorithm="word", vocab_size=200, min_frequency=1)
    result = train_word2vec(
        tokenizer,
        texts=lines,
        architecture="skipgram",
        embedding_size=16,
        window=2,
        subsample=0,
        epochs=5,
        learning_rate=0.05,
        batch_size=256,
        seed=0,
        workers=1,
    )
    return tokenizer, result


def test_most_similar_and_analogy_on_a_planted_corpus(planted):
    tokenizer, result = planted
    vectors = WordVectors.from_model(result.model, tokenizer)
    assert vectors.most_similar("film", 1)[0][0] == "▁movie"
    assert vectors.analogy("man", "king", "woman", 1)[0][0] == "▁queen"
    assert vectors.analogy("man", "woman", "king", 1)[0][0] == "▁queen"
    neighbours = [token for token, _ in vectors.most_similar("man", 50)]
    assert "▁man" not in neighbours and "<pad>" not in neighbours  # itself and unseen tokens are never returned
    with pytest.raises(KeyError, match="not a token"):
        vectors.most_similar("dragon")


def test_cbow_learns_the_planted_synonyms_too():
    lines = planted_corpus(seed=1, sentences=800)
    tokenizer = train_tokenizer(texts=lines, algorithm="word", vocab_size=200, min_frequency=1)
    result = train_word2vec(
        tokenizer,
        texts=lines,
        architecture="cbow",
        embedding_size=16,
        window=2,
        subsample=0,
        epochs=10,
        learning_rate=0.05,
        batch_size=64,
        seed=0,
        workers=1,
    )
    vectors = WordVectors.from_model(result.model, tokenizer)
    assert vectors.most_similar("film", 1)[0][0] == "▁movie"
    assert vectors.similarity("film", "movie") > vectors.similarity("film", "king")


def test_cbow_training_is_reproducible_and_ignores_the_pad_vector(planted):
    tokenizer, result = planted
    stream = flatten_corpus(tokenize_corpus(tokenizer, texts=planted_corpus()), tokenizer.all_special_ids)
    runs = []
    for pad_value in (0.0, 1000.0):
        torch.manual_seed(0)
        model = Word2VecModel(build_config(tokenizer, architecture="cbow", embedding_size=16, window=2, subsample=0))
        with torch.no_grad():
            model.embed_tokens.weight[PAD] = pad_value  # would leak into every edge context if it were read
        train_on_stream(model, stream, epochs=1, batch_size=256, seed=0, workers=1)
        runs.append(model.embed_tokens.weight.detach().clone())
    assert torch.equal(runs[0], runs[1])


def test_word2vec_text_export_round_trips(planted, tmp_path):
    tokenizer, result = planted
    vectors = WordVectors.from_model(result.model, tokenizer)
    path = tmp_path / "vectors.txt"
    assert vectors.save_word2vec_format(path) == len(tokenizer)
    tokens, matrix = load_word2vec_format(path)
    assert tokens == tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    assert torch.equal(matrix, result.model.embed_tokens.weight.detach())
    seen_path = tmp_path / "seen.txt"
    assert vectors.save_word2vec_format(seen_path, only_seen=True) == int((result.model.token_counts > 0).sum())


def test_gensim_reads_the_export(planted, tmp_path):
    gensim = pytest.importorskip("gensim")
    tokenizer, result = planted
    vectors = WordVectors.from_model(result.model, tokenizer)
    vectors.save_word2vec_format(tmp_path / "vectors.txt")
    keyed = gensim.models.KeyedVectors.load_word2vec_format(str(tmp_path / "vectors.txt"))
    assert torch.equal(torch.from_numpy(keyed.vectors), result.model.embed_tokens.weight.detach())
    assert list(keyed.index_to_key) == tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    # The seen tokens only (no all-zero pad row, whose norm gensim would divide by) answer gensim's queries as ours.
    vectors.save_word2vec_format(tmp_path / "seen.txt", only_seen=True)
    keyed = gensim.models.KeyedVectors.load_word2vec_format(str(tmp_path / "seen.txt"))
    assert [token for token, _ in keyed.most_similar("▁film", topn=3)] == [
        token for token, _ in vectors.most_similar("film", 3)
    ]


@pytest.fixture(scope="module")
def sample_word2vec(tmp_path_factory):
    """Word vectors trained on the shipped review sample with a word-level tokenizer, saved to a folder."""
    folder = tmp_path_factory.mktemp("w2v")
    texts = open(sample_data_path("reviews_sample_train.txt"), encoding="utf-8").read().splitlines()
    tokenizer = train_tokenizer(texts=texts, algorithm="word", vocab_size=3000, min_frequency=3)
    tokenizer.save_pretrained(folder / "tokenizer")
    train_word2vec_cli(
        [
            "--train_file",
            sample_data_path("reviews_sample_train.txt"),
            "--tokenizer",
            str(folder / "tokenizer"),
            "--output_dir",
            str(folder / "vectors"),
            "--embedding_size",
            "16",
            "--epochs",
            "1",
            "--workers",
            "1",
            "--export_text",
            str(folder / "vectors.txt"),
        ]
    )
    return folder, tokenizer


def test_the_cli_adapter_saves_a_loadable_folder_and_export(sample_word2vec):
    folder, tokenizer = sample_word2vec
    vectors = WordVectors.from_pretrained(folder / "vectors")
    assert vectors.vectors.shape == (len(tokenizer), 16)
    assert (folder / "vectors" / "word2vec_training.json").is_file()
    tokens, matrix = load_word2vec_format(folder / "vectors.txt")
    assert torch.equal(matrix, vectors.vectors)
    assert len(vectors.most_similar("영화", 5)) == 5


def test_init_embeddings_from_copies_the_seen_rows_into_a_tied_lm(sample_word2vec):
    folder, tokenizer = sample_word2vec
    torch.manual_seed(0)
    model = hf_seq.LSTMForCausalLM(
        hf_seq.LSTMConfig(
            vocab_size=len(tokenizer), embedding_size=16, hidden_size=16, num_hidden_layers=1, tie_word_embeddings=True
        )
    )
    before = model.get_input_embeddings().weight.detach().clone()
    copied = init_embeddings_from(model, folder / "vectors", folder / "tokenizer")
    word2vec = Word2VecModel.from_pretrained(folder / "vectors")
    seen = word2vec.token_counts > 0
    assert copied == int(seen.sum()) > 100
    after = model.get_input_embeddings().weight.detach()
    assert torch.equal(after[seen], word2vec.embed_tokens.weight[seen].detach())
    assert torch.equal(after[~seen], before[~seen])  # specials and unseen tokens keep the model's initialisation
    assert torch.equal(model.get_output_embeddings().weight.detach(), after)  # the tied LM head follows


def test_init_embeddings_from_refuses_another_tokenizer_or_size(sample_word2vec, tmp_path):
    folder, tokenizer = sample_word2vec
    other = train_tokenizer(texts=planted_corpus(), algorithm="word", vocab_size=200, min_frequency=1)
    lm = hf_seq.LSTMForCausalLM(
        hf_seq.LSTMConfig(vocab_size=len(other), embedding_size=16, hidden_size=16, num_hidden_layers=1)
    )
    with pytest.raises(ValueError, match="another tokenizer"):
        init_embeddings_from(lm, folder / "vectors", other)
    wrong_size = hf_seq.LSTMForCausalLM(
        hf_seq.LSTMConfig(vocab_size=len(tokenizer), embedding_size=8, hidden_size=16, num_hidden_layers=1)
    )
    with pytest.raises(ValueError, match="embedding_size is 8"):
        init_embeddings_from(wrong_size, folder / "vectors", folder / "tokenizer")


def test_two_workers_train_the_same_shared_vectors():
    lines = planted_corpus(seed=2, sentences=1500)
    tokenizer = train_tokenizer(texts=lines, algorithm="word", vocab_size=200, min_frequency=1)
    result = train_word2vec(
        tokenizer,
        texts=lines,
        architecture="skipgram",
        embedding_size=16,
        window=2,
        subsample=0,
        epochs=5,
        learning_rate=0.05,
        batch_size=128,
        seed=0,
        workers=2,
    )
    # Lock-free threads (as gensim's workers) interleave their updates differently on every run: only the
    # planted pair's closeness is stable, not its exact rank among near ties.
    neighbours = [token for token, _ in WordVectors.from_model(result.model, tokenizer).most_similar("film", 3)]
    assert "▁movie" in neighbours
    with pytest.raises(ValueError, match="one worker"):
        train_on_stream(result.model, TokenStream(torch.tensor([4, 5]), torch.tensor([0, 0])), workers=2, compile=True)


def test_pretrain_starts_a_fresh_lm_from_the_word_vectors_and_refuses_to_overwrite_trained_ones(
    sample_word2vec, tmp_path
):
    import json

    from hf_seq.models.word2vec import Word2VecModel
    from hf_seq.training import pretrain
    from tests.training.helpers import tiny_lstm_config, training_arguments

    folder, tokenizer = sample_word2vec
    train_file = sample_data_path("reviews_sample_valid.txt")
    args = training_arguments(tmp_path / "lm", max_steps=1, learning_rate=0.0)  # lr 0: the vectors stay as copied
    pretrain(
        args,
        train_file,
        str(folder / "tokenizer"),
        model=tiny_lstm_config(tokenizer),
        loop="tbptt",
        init_embeddings_from=str(folder / "vectors"),
    )
    record = json.loads((tmp_path / "lm" / "run_info.json").read_text())["init_embeddings_from"]
    assert record["rows_copied"] > 0
    lm = hf_seq.LSTMForCausalLM.from_pretrained(tmp_path / "lm")
    word2vec = Word2VecModel.from_pretrained(folder / "vectors")
    seen = (word2vec.token_counts > 0).nonzero().flatten()  # the rows init_embeddings_from copies
    assert len(seen) == record["rows_copied"]
    torch.testing.assert_close(lm.get_input_embeddings().weight[seen], word2vec.embed_tokens.weight[seen])
    with pytest.raises(ValueError, match="fresh model"):
        pretrain(
            training_arguments(tmp_path / "again"),
            train_file,
            str(folder / "tokenizer"),
            model=str(tmp_path / "lm"),
            init_embeddings_from=str(folder / "vectors"),
        )
    assert not (tmp_path / "again").exists()
