"""Suite-wide settings: one torch thread per test process (tiny tensors run far slower with more
threads on a busy 2-core machine, and results do not depend on it)."""

import torch

torch.set_num_threads(1)
