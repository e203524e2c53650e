"""Text datasets: the tokenized document dataset every source ends in, its cache, the sources and the synthetic corpus."""
