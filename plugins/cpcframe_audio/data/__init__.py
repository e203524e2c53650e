"""Audio datasets: the cached utterance dataset every source ends in, LibriSpeech, Hugging Face audio and the synthetic corpus."""
