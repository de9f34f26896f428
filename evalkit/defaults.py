"""Defaults shared by the CLI, the evaluation settings and the engine: each number set once, here.

No imports: every layer (commands, evaluate, runtime) can read it.
"""

MAX_NEW_TOKENS = 96  # tokens generated per answer (eval, compare, the engine's generate)
BATCH_SIZE = 16  # prompts per generation / scoring batch
TRAIN_SAMPLE = 100  # training examples scored (MIA members, loss gap)
EXTRACTION_N = 32  # training prompts used for the extraction test
MAX_LENGTH = 512  # max tokens of a scored conversation
