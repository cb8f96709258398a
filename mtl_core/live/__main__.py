"""The child process of the local-processes backend: `python -m mtl_core.live HOST:PORT`."""

import os
import sys
from multiprocessing.connection import Client

import torch

from .worker import serve

torch.set_num_threads(int(os.environ.get("MTL_TORCH_THREADS", "1")))
host, port = sys.argv[1].rsplit(":", 1)
serve(Client((host, int(port)), authkey=bytes.fromhex(os.environ["MTL_WORKER_KEY"])))
