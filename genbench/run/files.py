"""The names of the files a job writes in its folder (no heavy imports: the report reads them)."""

__all__ = ["MODEL_FILE", "RESULTS_FILE", "SAMPLES_FILE"]

RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.npz"
MODEL_FILE = "model.pt"
