"""The child process of the local-processes backend: `python -m mtl_core.live HOST:PORT THREADS` (the backend
parsed MTL_TORCH_THREADS; the key to connect with is in MTL_WORKER_KEY)."""

import os
import sys
from multiprocessing.connection import Client

import torch

from .worker import serve

NICENESS = 5   # training yields the CPU to the page process, which draws every student's charts (README, Speed)

address, threads = sys.argv[1], sys.argv[2]
os.nice(NICENESS)
torch.set_num_threads(int(threads))
host, port = address.rsplit(":", 1)
serve(Client((host, int(port)), authkey=bytes.fromhex(os.environ["MTL_WORKER_KEY"])))
