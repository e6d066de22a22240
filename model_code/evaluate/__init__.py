"""Evaluation of a trained model: held-out perplexity, lm-eval tasks derived from held-out documents, generation
samples and serving latency. The promotion gate that compares a challenger with the champion is model_code.gate."""
