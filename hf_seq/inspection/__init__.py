"""Looking inside the models: gradients over time, states and gates, interpretable cells, attention, pooling.

Each part computes numbers first (`gradients`, `stepping`, `states`, `cells`, `pooling`); `figures` draws them;
`cli.inspect_cli` is `hf-seq inspect …`. See docs/looking-inside.md.
"""

from .cli import inspect_cli
from .figures import attention_heatmap, heatmap
from .gradients import gradient_norms, initializer_comparison, recurrent_gradient_norms, transformer_gradient_norms
from .states import states_and_gates, transformer_attentions
from .stepping import GATE_NAMES, LayerTrace, trace_recurrent


__all__ = [
    "GATE_NAMES",
    "LayerTrace",
    "attention_heatmap",
    "gradient_norms",
    "heatmap",
    "initializer_comparison",
    "inspect_cli",
    "recurrent_gradient_norms",
    "states_and_gates",
    "trace_recurrent",
    "transformer_attentions",
    "transformer_gradient_norms",
]
