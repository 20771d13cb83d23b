"""The `hf-seq` command line: each subcommand parses its arguments and calls one library function."""

import sys

USAGE = """usage: hf-seq <command> [options]

commands:
{commands}

Run `hf-seq <command> --help` for a command's options."""


def demo(argv):
    """Train a tiny LSTM LM on the shipped text sample for a few steps and generate from it."""
    import argparse

    parser = argparse.ArgumentParser(prog="hf-seq demo", description=demo.__doc__)
    parser.add_argument("--output_dir", default="runs/demo")
    args = parser.parse_args(argv)
    raise SystemExit("demo: not implemented yet")  # replaced by the training pipeline


# Subcommand name -> function taking the remaining argv. Each function is a thin wrapper around the library.
COMMANDS = {
    "demo": demo,
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    listing = "\n".join(f"  {name:<16}{(fn.__doc__ or '').strip().splitlines()[0]}" for name, fn in COMMANDS.items())
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE.format(commands=listing))
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"hf-seq: unknown command {command!r}\n\n" + USAGE.format(commands=listing), file=sys.stderr)
        return 2
    return COMMANDS[command](rest) or 0


if __name__ == "__main__":
    sys.exit(main())
