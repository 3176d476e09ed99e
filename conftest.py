"""pytest's first import, before any test module: the repository root on sys.path, so `pytest tests/...` finds
mmr1.py, vas.py and data.py without `python -m`, and the Hugging Face hub offline, so no test waits on the network.
huggingface_hub reads HF_HUB_OFFLINE once, when it is imported, which is why it is set here and not in a test."""
import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
if "PYTEST_XDIST_WORKER" in os.environ:  # `pytest -n 2`: two test processes on 2 cores, one thread each; two
    os.environ["OMP_NUM_THREADS"] = "1"  # threads each would contend for the cores and run several times slower
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
