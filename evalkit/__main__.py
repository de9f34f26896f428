import sys

from .cli import main

if __name__ == "__main__":  # vLLM starts its workers with multiprocessing's spawn, which re-imports this module
    sys.exit(main())
