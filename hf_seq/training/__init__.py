"""Training hf-seq models: pretraining and fine-tuning on `Trainer`, the TBPTT loop on `accelerate`, evaluation.

from hf_seq.training import pretrain, finetune, evaluate_model, evaluate_ensemble, generate_text
"""

from .arguments import DemoArguments, EvaluateArguments, FinetuneArguments, GenerateArguments, PretrainArguments
from .common import TrainingRun, config_for_tokenizer, load_model, load_tokenizer, write_run_info
from .demo import run_demo
from .encoding import encode_for_sequence_classification, encode_for_token_classification
from .evaluate import evaluate_ensemble, evaluate_model, generate_text
from .finetune import finetune
from .metrics import perplexity, sequence_classification_metrics, token_classification_metrics
from .pretrain import pretrain
from .tbptt import evaluate_streams, make_accelerator, train_tbptt


__all__ = [
    "DemoArguments",
    "EvaluateArguments",
    "FinetuneArguments",
    "GenerateArguments",
    "PretrainArguments",
    "TrainingRun",
    "config_for_tokenizer",
    "encode_for_sequence_classification",
    "encode_for_token_classification",
    "evaluate_ensemble",
    "evaluate_model",
    "evaluate_streams",
    "finetune",
    "generate_text",
    "load_model",
    "load_tokenizer",
    "make_accelerator",
    "perplexity",
    "pretrain",
    "run_demo",
    "sequence_classification_metrics",
    "token_classification_metrics",
    "train_tbptt",
    "write_run_info",
]
