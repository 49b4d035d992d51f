"""Range coding of latents (torch-free). Not implemented yet: see the codec issue."""
