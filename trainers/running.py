"""The end of every training command: train (resuming if asked), save, evaluate, push, and leave the process group."""

import torch
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint


def resolve_checkpoint(training_args: TrainingArguments) -> str | bool | None:
    """`--resume_from_checkpoint last` names the newest checkpoint of `output_dir` (an error if there is none)."""
    checkpoint = training_args.resume_from_checkpoint
    if checkpoint == "last":
        checkpoint = get_last_checkpoint(training_args.output_dir)
        if checkpoint is None:
            raise FileNotFoundError(f"--resume_from_checkpoint last: no checkpoint in {training_args.output_dir}")
    return checkpoint


def train_and_evaluate(trainer: Trainer, training_args: TrainingArguments, model_card: bool = True) -> dict:
    """Train when the trainer has a train set (then save the model, trainer state and a model card), evaluate when it
    has an eval set, push with `--push_to_hub`; returns the train and eval metrics."""
    metrics = {}
    if trainer.train_dataset is not None:
        result = trainer.train(resume_from_checkpoint=resolve_checkpoint(training_args))
        trainer.save_model()
        trainer.save_state()
        if model_card:
            trainer.create_model_card()
        trainer.log_metrics("train", result.metrics)
        trainer.save_metrics("train", result.metrics)
        metrics.update(result.metrics)
    if trainer.eval_dataset is not None:
        results = trainer.evaluate()
        trainer.log_metrics("eval", results)
        trainer.save_metrics("eval", results)
        metrics.update(results)
    if training_args.push_to_hub:
        trainer.push_to_hub()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # leave together and stop the communication threads before the interpreter exits
        trainer.accelerator.wait_for_everyone()
        torch.distributed.destroy_process_group()
    return metrics
