"""Generation: the Composer API, generation requests, plans and the sampler."""
