"""Evaluation metrics (SI-SNR(i), SDR(i) via mir_eval, PESQ, STOI) on NumPy arrays and over folders."""
from avss.metrics.align import align_signals
from avss.metrics.compute import MAIN_METRICS, METRIC_KEYS, compute_metrics
from avss.metrics.evaluate import Problem, evaluate_dir
from avss.metrics.perceptual import pesq_score, stoi_score
from avss.metrics.report import format_table, summarize, write_results
from avss.metrics.separation import (
    MetricWarning,
    bss_sdr,
    best_permutation,
    pairwise_si_snr,
    sdr_improvement,
    si_snr,
    si_snr_improvement,
)

__all__ = [
    "MAIN_METRICS", "METRIC_KEYS", "MetricWarning", "Problem", "align_signals", "best_permutation", "bss_sdr",
    "compute_metrics", "evaluate_dir", "format_table", "pairwise_si_snr", "pesq_score", "sdr_improvement",
    "si_snr", "si_snr_improvement", "stoi_score", "summarize", "write_results",
]
