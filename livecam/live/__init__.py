"""The live mode's machinery: capture, senders, motion thread, slots, composition, boxes log, stats, pipeline."""
