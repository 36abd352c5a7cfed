import sys
from pathlib import Path

# The oracles and fake-data helpers live beside the tests; make them importable as plain modules.
sys.path.insert(0, str(Path(__file__).parent))
