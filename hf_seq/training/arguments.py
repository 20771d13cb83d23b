"""Argument dataclasses of the `hf-seq` training commands, parsed with `HfArgumentParser` next to
`TrainingArguments`, so every Trainer flag works on the command line as users know it.

`overwrite_output_dir` was a TrainingArguments flag until transformers 5 removed it; it lives here now, with the
meaning hf-seq gives it (a non-empty output_dir is emptied first, never written into as it is)."""

from dataclasses import asdict, dataclass, field


def _as_keywords(arguments, **renamed):
    """The fields of an argument dataclass as the keyword arguments of the function it is for; `renamed` maps a
    field to the parameter it fills where their names differ (`--model_name_or_path` is `model=`)."""
    keywords = asdict(arguments)
    for name, parameter in renamed.items():
        keywords[parameter] = keywords.pop(name)
    return keywords


@dataclass
class PretrainArguments:
    train_file: str = field(metadata={"help": "Text file, one document per line."})
    tokenizer: str = field(metadata={"help": "Tokenizer folder (hf-seq train-tokenizer) or Hub id."})
    validation_file: str | None = field(default=None, metadata={"help": "Text file for the validation perplexity."})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Continue from this model folder; default: a fresh model of model_type."}
    )
    model_type: str = field(default="lstm", metadata={"help": "lstm, gru, rnn, or a Transformer's model_type."})
    config_overrides: str | None = field(
        default=None, metadata={"help": "Config fields of a fresh model, e.g. 'hidden_size=512,num_hidden_layers=2'."}
    )
    loop: str = field(
        default="auto",
        metadata={
            "help": "trainer (Trainer on blocks), tbptt (stateful accelerate loop), auto (tbptt for RNNs).",
            "choices": ["auto", "trainer", "tbptt"],
        },
    )
    block_size: int = field(default=128, metadata={"help": "Tokens per example for the trainer loop."})
    bptt: int = field(default=35, metadata={"help": "Window length of the tbptt loop (steps of backpropagation)."})
    streaming: bool = field(default=False, metadata={"help": "Read the corpus lazily (needs --max_steps)."})
    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset id to record in run_info.json."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace what a non-empty output_dir holds (it is emptied first)."}
    )
    allow_tokenizer_mismatch: bool = field(
        default=False, metadata={"help": "Continue a model folder with another tokenizer than it was trained with."}
    )
    init_embeddings_from: str | None = field(
        default=None,
        metadata={
            "help": "A word2vec folder (hf-seq train-word2vec) trained with this tokenizer: its vectors "
            "initialise a fresh model's input embeddings (and a tied LM head)."
        },
    )

    def as_keywords(self):
        """These arguments as `hf_seq.training.pretrain`'s keyword arguments."""
        return _as_keywords(self, model_name_or_path="model")


@dataclass
class FinetuneArguments:
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Pretrained LM folder (body reused, new head) or classifier folder."}
    )
    tokenizer: str | None = field(default=None, metadata={"help": "Tokenizer folder; default: the model folder."})
    data: str | None = field(
        default=None,
        metadata={
            "help": "Folder with ratings_train.txt/ratings_test.txt, or a Hub id; default: shipped NSMC sample."
        },
    )
    task: str = field(
        default="sequence-classification",
        metadata={"choices": ["sequence-classification", "token-classification"]},
    )
    text_column: str | None = field(default=None, metadata={"help": "Default: document (or tokens)."})
    label_column: str | None = field(default=None, metadata={"help": "Default: label (or tags)."})
    eval_split: str = field(default="test", metadata={"help": "Split evaluated after training."})
    max_length: int = field(default=128, metadata={"help": "Truncate documents to this many tokens."})
    model_type: str | None = field(default=None, metadata={"help": "Without a model: train a fresh one of this type."})
    config_overrides: str | None = field(default=None, metadata={"help": "Config fields of a fresh model."})
    dataset_name: str | None = field(default=None, metadata={"help": "Hub dataset id for run_info.json (e9t/nsmc)."})
    subword_dropout: float = field(default=0.0, metadata={"help": "BPE-dropout rate on the training documents."})
    layerwise_lr_decay: float = field(
        default=1.0, metadata={"help": "Each layer's learning rate is this times the one above it (ULMFiT: 0.38)."}
    )
    gradual_unfreezing: float = field(
        default=0.0, metadata={"help": "Epochs between unfreezing successive layer groups, head first (ULMFiT: 1)."}
    )
    weight_averaging: float = field(
        default=0.0, metadata={"help": "Keep the mean of the weights over the last this many epochs (SWA)."}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace what a non-empty output_dir holds (it is emptied first)."}
    )
    allow_tokenizer_mismatch: bool = field(
        default=False, metadata={"help": "Fine-tune a model folder with another tokenizer than it was trained with."}
    )
    init_embeddings_from: str | None = field(
        default=None,
        metadata={
            "help": "A word2vec folder (hf-seq train-word2vec) trained with this tokenizer: its vectors "
            "initialise a fresh model's input embeddings (and a tied LM head)."
        },
    )

    def as_keywords(self):
        """These arguments as `hf_seq.training.finetune`'s keyword arguments."""
        return _as_keywords(self, model_name_or_path="model", data="dataset")


@dataclass
class EvaluateArguments:
    model: list[str] = field(
        metadata={
            "help": "Saved model folder. Several sequence classifiers are evaluated as "
            "one ensemble (class probabilities averaged, as ULMFiT's forward + backward)."
        }
    )
    test_file: str = field(metadata={"help": "NSMC-format TSV (classifier) or text file (language model)."})
    max_length: int = field(default=128, metadata={"help": "Truncate documents to this many tokens."})
    block_size: int = field(default=128, metadata={"help": "Block length for a non-stateful LM evaluation."})
    bptt: int = field(default=35, metadata={"help": "Window length for a stateful (recurrent) LM evaluation."})
    stateful: bool | None = field(
        default=None, metadata={"help": "Carry the recurrent state across windows (default: yes for RNN/LSTM/GRU)."}
    )
    subword_samples: int = field(
        default=0,
        metadata={
            "help": "Classifiers: also average each document's class probabilities over this many BPE-dropout "
            "segmentations of it (test-time augmentation)."
        },
    )
    subword_dropout: float = field(default=0.1, metadata={"help": "BPE-dropout rate of those segmentations."})


@dataclass
class GenerateArguments:
    model: str = field(metadata={"help": "Saved causal LM or seq2seq model folder."})
    prompt: list[str] = field(
        default_factory=lambda: [""],
        metadata={"help": "Prompts, or a seq2seq model's sources (default: one empty prompt)."},
    )
    max_new_tokens: int = field(default=40)
    num_return_sequences: int = field(default=1)
    do_sample: bool = field(default=True)
    top_k: int = field(default=50)
    top_p: float = field(default=0.95)
    temperature: float = field(default=1.0)
    seed: int = field(default=0)

    def as_keywords(self):
        """These arguments as `hf_seq.training.generate_text`'s keyword arguments."""
        return _as_keywords(self, model="model_dir", prompt="prompts")


@dataclass
class DemoArguments:
    output_dir: str = field(default="runs/demo", metadata={"help": "Where the tokenizer, LM and classifier go."})
    vocab_size: int = field(default=4000)
    lm_epochs: float = field(default=5.0, metadata={"help": "Epochs of LM pretraining on the text sample."})
    classifier_epochs: float = field(default=3.0, metadata={"help": "Epochs of fine-tuning on the NSMC sample."})
    hidden_size: int = field(default=256)
    embedding_size: int = field(default=128)
    seed: int = field(default=42)
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing demo folder."})
    num_threads: int = field(default=1, metadata={"help": "torch CPU threads (1 is fastest for these tiny models)."})
