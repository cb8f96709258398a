"""Every test process keeps the app's store in a fresh temporary file (the app's default lives beside the app),
and so does every server a test starts, which inherits the environment."""

import os
import tempfile

os.environ.setdefault("MTL_STORE", os.path.join(tempfile.mkdtemp(prefix="mtl-store-"), "store.sqlite"))
