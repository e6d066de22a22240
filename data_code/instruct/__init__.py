"""Instruction-tuning data: chat and preference loaders, the offline example generator, the Parquet writer."""

from data_code.instruct.generate import GeneratorConfig, generate_examples
from data_code.instruct.load import load_chat_dataset, load_preference_dataset
from data_code.instruct.write import write_dataset

__all__ = ["GeneratorConfig", "generate_examples", "load_chat_dataset", "load_preference_dataset", "write_dataset"]
