"""The names of the files a job writes in its folder (no heavy imports: the report reads them)."""

__all__ = ["FAILED_RESULTS_FILE", "MODEL_FILE", "RESULTS_FILE", "SAMPLES_FILE"]

RESULTS_FILE = "results.json"
SAMPLES_FILE = "samples.npz"
MODEL_FILE = "model.pt"
# A re-run's failure beside a finished results.json, which it never replaces.
FAILED_RESULTS_FILE = "results.failed.json"
