"""Self-supervised pretraining: data, objectives (CROMA, X-STARS, CMID, dual encoder), engine."""
