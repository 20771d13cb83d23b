"""The seq2seq spacing model: a recurrent encoder-decoder with attention reads the characters without spaces and
writes them again with spaces.

Source and target share the character vocabulary of the tagger's tokenizer (one id per character, see
`CharacterIds`); the target spells a space as the word-boundary token `▁` and ends with eos. Training runs
`hf_seq.seq2seq.train_seq2seq` (Seq2SeqTrainer); at inference `restore_spacing` decodes under
`SpacingLogitsProcessor`, so the characters cannot change.
"""

import os
import time

from ..training.common import load_tokenizer, write_run_info
from .data import space_labels
from .restore import space_token_id
from .tagger import CharacterIds


def encode_for_seq2seq(dataset, tokenizer, max_length: int = 128):
    """`input_ids` (the source's characters) and `labels` (the characters with the space token between words, then
    eos) from spacing pairs. Texts are cut to `max_length` characters."""
    character_ids, space_id, eos_id = CharacterIds(tokenizer), space_token_id(tokenizer), tokenizer.eos_token_id
    if eos_id is None:
        raise ValueError("the tokenizer has no eos token: the decoder could not learn where a text ends")

    def encode(batch):
        input_ids, labels = [], []
        for target in batch["target"]:
            characters, gap_labels = space_labels(target)
            characters, gap_labels = characters[:max_length], gap_labels[:max_length]
            if not characters:
                continue
            ids = character_ids(characters)
            label_ids = []
            for token_id, space_after in zip(ids, gap_labels[:-1] + [0]):
                label_ids.append(token_id)
                if space_after:
                    label_ids.append(space_id)
            input_ids.append(ids)
            labels.append(label_ids + [eos_id])
        return {"input_ids": input_ids, "labels": labels}

    return dataset.map(encode, batched=True, remove_columns=dataset.column_names, desc="Encoding characters")


def seq2seq_config_overrides(tokenizer, **overrides) -> dict:
    """A small encoder-decoder for the character vocabulary (`overrides` win: attention, input_feeding, sizes)."""
    arguments = {
        "vocab_size": len(tokenizer),
        "embedding_size": 64,
        "hidden_size": 128,
        "encoder_layers": 1,
        "decoder_layers": 1,
        "attention": "general",
        "input_feeding": True,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "decoder_start_token_id": tokenizer.bos_token_id,
    }
    arguments.update(overrides)
    return arguments


def train_spacing_seq2seq(
    train_dataset,
    *,
    output_dir: str | os.PathLike,
    tokenizer,
    eval_dataset=None,
    config_overrides: dict | None = None,
    max_length: int = 128,
    num_train_epochs: float = 1.0,
    max_steps: int = -1,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    seed: int = 0,
    overwrite: bool = False,
):
    """Train a seq2seq spacing model on spacing pairs and save it with its tokenizer to `output_dir`.

    `tokenizer` is a character tokenizer (object or folder), e.g. a spacing tagger's, so both models read the same
    ids. Evaluation on `eval_dataset` (if given) generates without constraints, as `train_seq2seq` does; score the
    model with `restore_spacing` for the constrained figures.
    """
    from ..seq2seq import train_seq2seq

    output_dir = os.fspath(output_dir)
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not overwrite:
        raise FileExistsError(f"output folder {output_dir} is not empty: choose another, or pass overwrite=True")
    tokenizer = load_tokenizer(tokenizer)
    train_features = encode_for_seq2seq(train_dataset, tokenizer, max_length)
    eval_features = encode_for_seq2seq(eval_dataset, tokenizer, max_length) if eval_dataset is not None else None
    started = time.perf_counter()
    run = train_seq2seq(
        tokenizer=tokenizer,
        output_dir=output_dir,
        train_dataset=train_features,
        eval_dataset=eval_features,
        config_overrides=seq2seq_config_overrides(tokenizer, **(config_overrides or {})),
        max_source_length=max_length,
        max_target_length=2 * max_length + 1,
        num_train_epochs=num_train_epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        use_cpu=True,
    )
    write_spacing_seq2seq_run_info(
        output_dir,
        run.model.config,
        len(train_features),
        {"max_steps": max_steps, "num_train_epochs": num_train_epochs, "batch_size": batch_size},
        {"learning_rate": learning_rate, "max_length": max_length, "seed": seed},
        run.metrics,
        time.perf_counter() - started,
    )
    return run


def write_spacing_seq2seq_run_info(output_dir, config, num_texts, schedule, settings, metrics, wall_time_seconds):
    """`run_info.json` of a seq2seq spacing run, for its model card."""
    write_run_info(
        output_dir,
        task="text2text-generation",
        datasets=[{"name": "spacing pairs", "details": f"{num_texts} training texts"}],
        metrics=[{"name": "train_loss", "value": metrics["train_loss"], "split": "train"}]
        if "train_loss" in metrics
        else [],
        hyperparameters={
            **{
                key: getattr(config, key)
                for key in ("cell", "attention", "input_feeding", "embedding_size", "hidden_size", "encoder_layers")
            },
            **schedule,
            **settings,
        },
        wall_time_seconds=wall_time_seconds,
    )


def spacing_attention(spacing_model, text: str):
    """Where the decoder looked while it restored `text` under constrained decoding: (source characters, output
    tokens as strings, weights of shape (output length, source length))."""
    import torch
    from transformers import LogitsProcessorList

    from .constrained import SpacingLogitsProcessor
    from .data import remove_spaces

    network, tokenizer = spacing_model.model, spacing_model.tokenizer
    if network.config.attention == "none":
        raise ValueError("this model has no attention (`attention='none'`): there is no map to draw")
    characters = remove_spaces(text)
    if not characters:
        raise ValueError("the text has no characters: give a non-blank text")
    source_ids = CharacterIds(tokenizer)(characters)
    space_id, eos_id = space_token_id(tokenizer), network.config.eos_token_id
    processor = SpacingLogitsProcessor([source_ids], space_id, eos_id)
    input_ids = torch.tensor([source_ids])
    with torch.inference_mode():
        generated = network.generate(
            input_ids,
            max_new_tokens=2 * len(source_ids) + 1,
            do_sample=False,
            logits_processor=LogitsProcessorList([processor]),
        )
        # One teacher-forced pass over the generated tokens gives every step's weights at once.
        outputs = network(
            input_ids=input_ids, decoder_input_ids=generated[:, :-1], output_attentions=True, use_cache=False
        )
    weights = outputs.cross_attentions[0][0, 0]
    output_tokens, index = [], 0
    for token in generated[0, 1:].tolist():
        if token == eos_id:
            output_tokens.append("</s>")
            break
        if token == space_id:
            output_tokens.append("_")
        else:
            output_tokens.append(characters[index])
            index += 1
    return list(characters), output_tokens, weights[: len(output_tokens)].float().numpy()


def save_spacing_attention_map(spacing_model, texts, output_path: str | os.PathLike, title: str | None = None):
    """A PNG of the attention weights (source characters across, output tokens down, _ a space) of a few texts,
    side by side. Returns the path written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    _use_a_hangul_font(plt, font_manager)
    maps = [spacing_attention(spacing_model, text) for text in texts]
    width = sum(max(3.0, 0.3 * len(source) + 1.5) for source, _, _ in maps)
    height = max(3.0, 0.3 * max(len(output) for _, output, _ in maps) + 1.5)
    figure, axes = plt.subplots(1, len(maps), figsize=(width, height), squeeze=False)
    for axis, (source, output, weights) in zip(axes[0], maps):
        image = axis.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        axis.set_xticks(range(len(source)), source)
        axis.set_yticks(range(len(output)), output)
        axis.set_xlabel("source characters")
        axis.set_ylabel("output tokens (_: space)")
    figure.colorbar(image, ax=axes[0].tolist())
    figure.suptitle(title or f"attention ({spacing_model.model.config.attention}), constrained decoding")
    output_path = os.fspath(output_path)
    figure.savefig(output_path, dpi=110)
    plt.close(figure)
    return output_path


HANGUL_FONTS = ("NanumGothic", "NanumGothicCoding", "NanumSquareRound", "Noto Sans CJK KR", "Noto Sans KR", "UnDotum")


def _use_a_hangul_font(plt, font_manager):
    """Draw with a font that has Hangul when the system has one (matplotlib's font list may predate its install)."""
    known = {font.name for font in font_manager.fontManager.ttflist}
    if not known.intersection(HANGUL_FONTS):
        for path in font_manager.findSystemFonts():
            if any(part in os.path.basename(path) for part in ("Nanum", "NotoSansCJK", "NotoSansKR", "UnDotum")):
                font_manager.fontManager.addfont(path)
        known = {font.name for font in font_manager.fontManager.ttflist}
    for name in HANGUL_FONTS:
        if name in known:
            plt.rcParams["font.family"] = name
            return
