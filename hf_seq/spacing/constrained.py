"""Constrained decoding for seq2seq spacing: the decoder may only copy the next source character or add a space.

`SpacingLogitsProcessor` is a transformers `LogitsProcessor`, so it works with `generate()`'s greedy and beam search
alike (`generate(..., logits_processor=LogitsProcessorList([processor]))`). At each step, for each row, it counts
the characters already written (every token but the space and the start token), k, and leaves finite only:
- the source's character k (its id; `<unk>` where the vocabulary lacks it),
- the space token, when at least one character was written, the last token is not a space, and k < source length,
- eos, once every source character was written (and then nothing else).
So the output, spaces removed, is the source; `characters_with_spaces` rebuilds the text from the source's own
characters, which keeps even characters the vocabulary lacks.
"""

import torch
from transformers import LogitsProcessor


class SpacingLogitsProcessor(LogitsProcessor):
    r"""
    Allow only "the next source character" or "a space" at each decoding step (then eos).

    Args:
        source_ids (`list[list[int]]`): the character ids of each source (one list per input row, no padding).
        space_token_id (`int`): the id the decoder writes for a space.
        eos_token_id (`int`): the id that ends a sequence.
        num_beams (`int`, defaults to 1): rows of `input_ids` per source (beam search expands each source).
        prefix_length (`int`, defaults to 1): tokens at the start of the decoder's `input_ids` that are not output
            (the decoder start token).
    """

    def __init__(self, source_ids, space_token_id: int, eos_token_id: int, num_beams: int = 1, prefix_length: int = 1):
        if num_beams < 1:
            raise ValueError(f"num_beams must be a positive integer, got {num_beams!r}")
        self.space_token_id = space_token_id
        self.eos_token_id = eos_token_id
        self.num_beams = num_beams
        self.prefix_length = prefix_length
        longest = max((len(ids) for ids in source_ids), default=0)
        # Each source followed by eos (and eos as padding): position k holds the only character allowed after k.
        self.source_lengths = torch.tensor([len(ids) for ids in source_ids])
        self.next_tokens = torch.full((len(source_ids), longest + 1), eos_token_id, dtype=torch.long)
        for row, ids in enumerate(source_ids):
            if space_token_id in ids:
                raise ValueError(
                    f"source {row} holds the space token id {space_token_id}: give sources without spaces"
                )
            self.next_tokens[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        batch_rows = input_ids.shape[0]
        if batch_rows != len(self.next_tokens) * self.num_beams:
            raise ValueError(
                f"generate() runs {batch_rows} rows but the processor holds {len(self.next_tokens)} sources x "
                f"{self.num_beams} beams: build it with the batch's sources and num_beams"
            )
        device = scores.device
        source_rows = torch.arange(batch_rows, device=device) // self.num_beams
        written = input_ids[:, self.prefix_length :]
        characters_written = (written != self.space_token_id).sum(dim=1)
        lengths = self.source_lengths.to(device)[source_rows]
        position = torch.minimum(characters_written, lengths)
        next_character = self.next_tokens.to(device)[source_rows, position]

        allowed = torch.zeros_like(scores, dtype=torch.bool)
        allowed[torch.arange(batch_rows, device=device), next_character] = True
        if written.shape[1] > 0:
            last_is_space = written[:, -1] == self.space_token_id
        else:
            last_is_space = torch.ones(batch_rows, dtype=torch.bool, device=device)
        may_space = (characters_written > 0) & ~last_is_space & (characters_written < lengths)
        allowed[:, self.space_token_id] |= may_space
        return scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)


def characters_with_spaces(characters: str, output_ids, space_token_id: int, eos_token_id: int) -> str:
    """The text a constrained decoder wrote: `characters` (the source) with a space wherever it wrote the space
    token, read from `output_ids` (without the start token) up to eos."""
    pieces, index = [], 0
    for token in output_ids:
        token = int(token)
        if token == eos_token_id or index >= len(characters):
            break
        if token == space_token_id:
            if index and pieces[-1] != " ":
                pieces.append(" ")
            continue
        pieces.append(characters[index])
        index += 1
    pieces.append(characters[index:])  # a decoder cut short (max_new_tokens) leaves the rest unspaced
    return "".join(pieces).rstrip(" ")
