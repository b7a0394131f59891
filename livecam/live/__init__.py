"""The live mode's machinery: capture thread, sender pool, pacing, slots, stats and the pipeline."""
