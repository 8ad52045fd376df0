"""Training the small GAN that ships with latentdirs (networks, training loop)."""
