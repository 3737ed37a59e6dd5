"""Losses and training-time helpers of the X-STARS and CMID objectives.

``msad``: X-STARS' dense cross-sensor alignment; ``distillation``: DINO-style prototype heads,
centred/sharpened self-distillation and EMA teachers; ``contrastive``: InfoNCE against a queue;
``reconstruction``: focal L1 for masked patches; ``views``: crops/flips/jitter with token
geometry.
"""
