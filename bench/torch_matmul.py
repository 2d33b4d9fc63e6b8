"""PyTorch's fp32 matmul on the same card, the reference beside bench/gpu_matmul.ts.

TF32 is off, so this is plain fp32 FMA throughput (cuBLAS SGEMM), the same arithmetic as our
WGSL kernels. Times are CUDA-event medians of 3 runs of 20 back-to-back products, after warm-up.
    python3 bench/torch_matmul.py [sizes...]
"""
import json
import sys

import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
sizes = [int(s) for s in sys.argv[1:]] or [1024, 2048, 4096]
dev = torch.device("cuda")
rows = []
for n in sizes:
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    times = []
    for _ in range(3):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(20):
            a @ b
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 20)
    ms = sorted(times)[1]
    rows.append({"n": n, "ms": round(ms, 4), "tflops": round(2 * n**3 / ms / 1e9, 2)})
    print(f"torch fp32 (TF32 off) matmul {n}^3 {ms:9.3f} ms {2 * n**3 / ms / 1e9:8.2f} TFLOPS")
print(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}))
