"""Benchmark evaluation of InternVideo2 models.

    python -m internvideo2.eval TASK --model MODEL_DIR --annotations FILE --media-root DIR [options]
    python -m internvideo2.eval TASK --help

Tasks: zero-shot-classification, classification, retrieval, multiple-choice, linear-probe, audio-classification,
audio-retrieval, export-features, chat-multiple-choice, chat-open-ended. Results go to --output-dir (default eval_results/TASK): results.json, results.md
(the table, also printed) and plots. Runs on CPU or GPU; for several GPUs (or CPU processes) launch it with
`accelerate launch -m internvideo2.eval ...` or `torchrun --nproc_per_node N -m internvideo2.eval ...`.
"""

import argparse
import sys

from .tasks import TASKS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m internvideo2.eval",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="task", required=True, metavar="TASK")
    for task in TASKS.values():
        command = commands.add_parser(
            task.name, help=task.help, description=task.description or task.help,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        task.add_arguments(command)
        command.set_defaults(run=task.run)
    return parser


def run_task(argv: list[str] | None = None) -> dict:
    """Parse `argv` and run the task; errors propagate (ValueError / TypeError / FileNotFoundError)."""
    args = build_parser().parse_args(argv)
    return args.run(args)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: bad input ends the run with a one-line `error:` message and exit status 2."""
    try:
        run_task(argv)
    except (ValueError, TypeError, FileNotFoundError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
