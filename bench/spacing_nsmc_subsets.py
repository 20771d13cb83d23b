"""The NSMC reviews of reviews_lm's train and valid files, for spacing runs that match the test set's kind of review.

reviews_lm's `test.txt` is made of NSMC test reviews (ratings 1-4 and 9-10), while its `train.txt` and `valid.txt`
are drawn from the whole crawl (all ratings) and hold NSMC's train reviews among others. This writes, to
`--output_dir`, the lines of each that are NSMC train documents:

- `train_nsmc.txt`: the train lines that are NSMC train documents, leaving out any text also in valid or test;
- `valid_nsmc.txt`: the valid lines that are NSMC train documents (to select on; test stays for the figures).

    python bench/spacing_nsmc_subsets.py --data_dir ../shared/data --output_dir runs/data

Existing output files are never replaced. Neither subset reads the blind inputs.
"""

import argparse
import os

from hf_seq.data.nsmc import load_nsmc_files


OUTPUT_NAMES = ("train_nsmc.txt", "valid_nsmc.txt")


def nsmc_subsets(train_lines, valid_lines, test_lines, nsmc_documents):
    """(train lines, valid lines) that are NSMC documents, in file order; a train line also in valid or test is
    left out, so nothing selected or scored on is trained on."""
    nsmc_documents = set(nsmc_documents)
    held_out = set(valid_lines) | set(test_lines)
    train_subset = [line for line in train_lines if line in nsmc_documents and line not in held_out and line.strip()]
    valid_subset = [line for line in valid_lines if line in nsmc_documents and line.strip()]
    return train_subset, valid_subset


def read_lines(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read().splitlines()


def write_lines(path, lines):
    """Write a new file (`x` mode: an existing one is an error, never replaced)."""
    with open(path, "x", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True, help="the folder holding nsmc/ and reviews_lm/")
    parser.add_argument("--output_dir", required=True, help="where train_nsmc.txt and valid_nsmc.txt are written")
    args = parser.parse_args(argv)
    reviews_lm = os.path.join(args.data_dir, "reviews_lm")
    nsmc_train = os.path.join(args.data_dir, "nsmc", "ratings_train.txt")
    for path in [nsmc_train] + [os.path.join(reviews_lm, f"{split}.txt") for split in ("train", "valid", "test")]:
        if not os.path.isfile(path):
            parser.error(f"{path} not found: --data_dir must hold nsmc/ratings_train.txt and reviews_lm/")
    outputs = [os.path.join(args.output_dir, name) for name in OUTPUT_NAMES]
    for path in outputs:
        if os.path.exists(path):
            parser.error(f"{path} exists: choose another --output_dir or remove it")
    documents = load_nsmc_files({"train": nsmc_train})["train"]["document"]
    train_subset, valid_subset = nsmc_subsets(
        *(read_lines(os.path.join(reviews_lm, f"{split}.txt")) for split in ("train", "valid", "test")), documents
    )
    os.makedirs(args.output_dir, exist_ok=True)
    for path, lines in zip(outputs, (train_subset, valid_subset)):
        write_lines(path, lines)
        print(f"{path}: {len(lines)} lines")


if __name__ == "__main__":
    main()
