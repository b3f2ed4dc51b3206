"""Parameter sets the tests exercise: each block's default plus at least three others."""
import numpy as np

_rng = np.random.default_rng(2024)

CONFIGS = {
    "ptsoftmax": {
        "default": {},
        "nearest-wide": dict(row_length=64, score_width=16, frac_bits=4, out_frac_bits=12,
                             rounding="nearest"),
        "one-element": dict(row_length=1, score_width=4, frac_bits=0, out_frac_bits=1),
        "max-widths": dict(row_length=5, score_width=32, frac_bits=8, out_frac_bits=24),
    },
    "bspn": {
        "default": {},
        "narrow-affine": dict(channels=6, groups=3, in_width=6, norm_frac_bits=0, out_width=4,
                              gamma_shift=_rng.integers(-3, 4, 6), beta=_rng.integers(-8, 8, 6)),
        "one-group": dict(channels=48, groups=1, in_width=16, norm_frac_bits=8, out_width=16,
                          gamma_shift=_rng.integers(-8, 9, 48), beta=_rng.integers(-300, 300, 48)),
        "max-widths": dict(channels=4, groups=2, in_width=32, norm_frac_bits=16, out_width=32,
                           gamma_shift=[8, -8, 0, 3], beta=[-(1 << 31), (1 << 31) - 1, 0, 5]),
    },
    "if_layer": {
        "default": {},
        "ternary-lanes": dict(inputs=12, outputs=6, lanes=2, inputs_per_cycle=3, seed=5,
                              weight_kind="ternary", threshold_shift=2,
                              bias=[5, -3, 0, 40, -40, 7]),
        "serial-short": dict(inputs=5, outputs=3, steps=7, act_bits=2, lanes=1,
                             inputs_per_cycle=1, threshold_shift=1, seed=7),
        "wide-bias": dict(inputs=64, outputs=8, inputs_per_cycle=16, lanes=4, threshold_shift=3,
                          seed=9, bias=_rng.integers(-200, 200, 8)),
    },
    "rate_encoder": {
        "default": {},
        "one-channel-long": dict(width=1, steps=20, level_bits=4),
        "wide-binary": dict(width=48, steps=1, level_bits=1),
        "two-bit": dict(width=5, steps=3, level_bits=2),
    },
    "spike_counter": {
        "default": {},
        "one-channel-long": dict(width=1, steps=20, level_bits=4),
        "wide-binary": dict(width=48, steps=1, level_bits=1),
        "short-counters": dict(width=5, steps=9, level_bits=2),
    },
    "spiking_attention": {
        "default": {},
        "one-head-nearest": dict(heads=1, tokens=5, head_dim=4, rounding="nearest", score_left_shift=1,
                                 context_shift=6),
        "two-bit-short": dict(heads=3, tokens=2, head_dim=2, act_bits=2, steps=3, score_frac_bits=0,
                              out_frac_bits=4, context_shift=2),
        "one-token": dict(heads=2, tokens=1, head_dim=3, steps=20),
    },
    # Baselines: the integer model's own layer (fair), then conventional 8-bit arithmetic.
    "bwn_layer": {
        "default": {},
        "skip-ternary": dict(inputs=12, outputs=6, lanes=2, inputs_per_cycle=3, seed=5,
                             weight_kind="ternary", threshold_shift=2, skip_zeros=True,
                             bias=[5, -3, 0, 40, -40, 7]),
        "unsigned-serial": dict(inputs=5, outputs=3, act_bits=2, lanes=1, inputs_per_cycle=1,
                                threshold_shift=1, signed_inputs=False, seed=7),
        "skip-wide-bias": dict(inputs=64, outputs=8, inputs_per_cycle=16, lanes=4, threshold_shift=3,
                               skip_zeros=True, seed=9, bias=_rng.integers(-200, 200, 8)),
    },
    "softmax": {
        "default": {},
        "wide": dict(row_length=64, score_width=16, frac_bits=4, out_frac_bits=12),
        "one-element": dict(row_length=1, score_width=4, frac_bits=0, out_frac_bits=1),
        "coarse-table": dict(row_length=7, score_width=10, frac_bits=1, out_frac_bits=10, exp_bits=4),
    },
    "layernorm": {
        "default": {},
        "narrow-affine": dict(channels=6, in_width=6, norm_frac_bits=2, out_width=6,
                              gamma=_rng.integers(-128, 128, 6), beta=_rng.integers(-32, 32, 6)),
        "wide": dict(channels=48, in_width=16, norm_frac_bits=8, out_width=16, gamma_width=12,
                     gamma_frac_bits=8, gamma=_rng.integers(-2048, 2048, 48),
                     beta=_rng.integers(-3000, 3000, 48)),
        "two-channels": dict(channels=2, in_width=4, norm_frac_bits=0, out_width=4),
    },
    "mac_layer": {
        "default": {},
        "lanes": dict(inputs=12, outputs=6, lanes=2, inputs_per_cycle=3, shift=6, seed=5,
                      bias=[500, -300, 0, 4000, -4000, 70]),
        "serial-narrow": dict(inputs=5, outputs=3, lanes=1, inputs_per_cycle=1, act_width=4,
                              weight_width=3, out_width=6, shift=2, seed=7),
        "wide-out": dict(inputs=16, outputs=8, lanes=4, inputs_per_cycle=4, out_width=20, seed=9,
                         bias=_rng.integers(-20000, 20000, 8)),
    },
}

# Verilator's C++ compile of the fully parallel MAC layer (512 8x8 multipliers) takes over ten
# minutes on two cores; that configuration runs on Icarus only.
VERILATOR_EXCLUDED = {("mac_layer", "default")}
# The layer's small converters and its attention: two configurations on Verilator (a C++ build
# each, which dominates their time), all four on Icarus.
VERILATOR_EXCLUDED |= {("rate_encoder", "two-bit"), ("rate_encoder", "one-channel-long"),
                       ("spike_counter", "short-counters"), ("spike_counter", "one-channel-long"),
                       ("spiking_attention", "one-token"), ("spiking_attention", "two-bit-short")}

RANDOM_VECTORS = {"default": 3_000}       # every other configuration: 1,000
# Blocks whose vector is a whole sentence (thousands of cycles): fewer vectors.
SENTENCE_VECTORS = {"spiking_attention": {"default": 40}}       # other configurations: 15


def vector_count(block: str, name: str) -> int:
    if block in SENTENCE_VECTORS:
        return SENTENCE_VECTORS[block].get(name, 15)
    return RANDOM_VECTORS.get(name, 1000)
