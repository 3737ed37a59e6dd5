"""Processing provider and algorithms of Terraprobe."""
