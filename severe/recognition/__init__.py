"""Action recognition experiments (domain, samples, granularity, linear/kNN probes, arrow of time)."""
