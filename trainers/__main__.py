"""`python -m internvideo2.trainers <stage> [arguments]`: runs the training entry point of one stage.

Stages: `stage1` (unmasked-teacher distillation), `stage2` (video / audio / text alignment; `--model_type clip` for
InternVideo2-CLIP), `stage3` (VideoChat2), `finetune` (classification). Each is also runnable directly, e.g.
`python -m internvideo2.trainers.stage2 --help`.
"""

import importlib
import sys


STAGES = ("stage1", "stage2", "stage3", "finetune")


def main(argv: list[str] | None = None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return None
    if not argv or argv[0] not in STAGES:
        given = repr(argv[0]) if argv else "nothing"
        raise SystemExit(f"usage: python -m internvideo2.trainers {{{','.join(STAGES)}}} [arguments]; got {given}")
    return importlib.import_module(f"{__package__}.{argv[0]}").main(argv[1:])


if __name__ == "__main__":
    main()
