"""Models: architectures, model stacks, adapters, tokenizers, and where pretrained weights are found."""
