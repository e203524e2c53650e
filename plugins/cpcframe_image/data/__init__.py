"""Image datasets: folders, torchvision readers, Hugging Face images and the synthetic shapes."""
